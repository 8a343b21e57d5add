package safetensors

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/lethe-ml/lethe/internal/pyjson"
)

// MaxHeaderSize is the largest JSON header the Rust crate accepts (and this
// package reads or writes): 100,000,000 bytes.
const MaxHeaderSize = 100_000_000

// metadataKey is the reserved header key that holds the string metadata.
const metadataKey = "__metadata__"

// header is a parsed and validated header.
type header struct {
	metadata map[string]string // nil when the header has no __metadata__ (or null)
	tensors  []TensorInfo      // sorted by offset; Offset is relative to the data buffer
	index    map[string]int    // name -> position in tensors
}

// parseHeader parses the JSON header b and validates it against a data
// buffer of dataLen bytes, with the rules of the Rust crate
// (Metadata::validate) plus a few it leaves to serde or skips:
//   - b is UTF-8 JSON: one object, optionally followed by JSON whitespace
//     (writers pad with spaces to a multiple of 8);
//   - "__metadata__" is null or an object of string values;
//   - every other key is a tensor: an object with "dtype" (a known name),
//     "shape" (non-negative integers) and "data_offsets" ([begin, end],
//     non-negative integers); other fields are ignored as serde ignores them;
//   - no key, tensor name or field appears twice (serde would keep the last);
//   - sorted by offsets, the tensors tile [0, dataLen) exactly: no gap, no
//     overlap, nothing left over;
//   - end-begin equals the shape's element count times the dtype's size.
//
// Errors name the tensor and field, not the file: callers add the path.
func parseHeader(b []byte, dataLen int64) (*header, error) {
	if !utf8.Valid(b) {
		return nil, fmt.Errorf("%w: header is not valid UTF-8", ErrFormat)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	tok, err := dec.Token()
	if err != nil {
		return nil, jsonErr(err, "header")
	}
	if tok != json.Delim('{') {
		return nil, fmt.Errorf("%w: header is not a JSON object (starts with %s)", ErrFormat, describe(tok))
	}
	h := &header{index: map[string]int{}}
	seenMeta := false
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, jsonErr(err, "header")
		}
		name := tok.(string) // object keys are always strings
		if name == metadataKey {
			if seenMeta {
				return nil, fmt.Errorf("%w: key %q appears twice", ErrFormat, metadataKey)
			}
			seenMeta = true
			if h.metadata, err = parseMetadata(dec); err != nil {
				return nil, err
			}
			continue
		}
		if _, dup := h.index[name]; dup {
			return nil, fmt.Errorf("%w: tensor %q appears twice in the header", ErrFormat, name)
		}
		info, err := parseTensorInfo(dec, name)
		if err != nil {
			return nil, err
		}
		h.index[name] = len(h.tensors)
		h.tensors = append(h.tensors, info)
	}
	if _, err := dec.Token(); err != nil { // the closing '}'
		return nil, jsonErr(err, "header")
	}
	rest := b[dec.InputOffset():]
	if i := bytes.IndexFunc(rest, func(r rune) bool { return !isJSONSpace(r) }); i >= 0 {
		return nil, fmt.Errorf("%w: header has %q after the JSON object, want only padding spaces", ErrFormat, clip(rest[i:]))
	}
	if err := h.validate(dataLen); err != nil {
		return nil, err
	}
	return h, nil
}

// validate checks that the tensors tile the data buffer and sorts them by
// offset (as the Rust crate does before validating).
func (h *header) validate(dataLen int64) error {
	slices.SortFunc(h.tensors, func(a, b TensorInfo) int {
		if a.Offset != b.Offset {
			return cmpInt64(a.Offset, b.Offset)
		}
		return cmpInt64(a.Size, b.Size)
	})
	var next int64
	prev := ""
	for i, t := range h.tensors {
		h.index[t.Name] = i
		end := t.Offset + t.Size
		switch {
		case end > dataLen:
			return fmt.Errorf("%w: tensor %q: data_offsets [%d, %d] run past the end of the %d-byte data buffer (truncated file?)",
				ErrFormat, t.Name, t.Offset, end, dataLen)
		case t.Offset < next:
			return fmt.Errorf("%w: tensor %q: data_offsets [%d, %d] overlap tensor %q, which ends at %d",
				ErrFormat, t.Name, t.Offset, end, prev, next)
		case t.Offset > next && prev == "":
			return fmt.Errorf("%w: tensor %q: data_offsets [%d, %d] leave a gap: the first tensor must start at 0",
				ErrFormat, t.Name, t.Offset, end)
		case t.Offset > next:
			return fmt.Errorf("%w: tensor %q: data_offsets [%d, %d] leave a %d-byte gap after tensor %q, which ends at %d",
				ErrFormat, t.Name, t.Offset, end, t.Offset-next, prev, next)
		}
		next, prev = end, t.Name
	}
	if next != dataLen {
		if prev == "" {
			return fmt.Errorf("%w: the header has no tensors but the data buffer has %d bytes", ErrFormat, dataLen)
		}
		return fmt.Errorf("%w: tensors cover %d of the %d bytes of the data buffer: %d bytes after tensor %q are not in any tensor",
			ErrFormat, next, dataLen, dataLen-next, prev)
	}
	return nil
}

// parseMetadata reads the value of "__metadata__": null or {str: str}.
func parseMetadata(dec *json.Decoder) (map[string]string, error) {
	const where = "key \"__metadata__\""
	tok, err := dec.Token()
	if err != nil {
		return nil, jsonErr(err, where)
	}
	if tok == nil {
		return nil, nil
	}
	if tok != json.Delim('{') {
		return nil, fmt.Errorf("%w: %s is %s, want an object of strings", ErrFormat, where, describe(tok))
	}
	md := map[string]string{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, jsonErr(err, where)
		}
		k := tok.(string)
		if tok, err = dec.Token(); err != nil {
			return nil, jsonErr(err, where)
		}
		v, ok := tok.(string)
		if !ok {
			return nil, fmt.Errorf("%w: %s: value of %q is %s, want a string", ErrFormat, where, k, describe(tok))
		}
		if _, dup := md[k]; dup {
			return nil, fmt.Errorf("%w: %s: %q appears twice", ErrFormat, where, k)
		}
		md[k] = v
	}
	if _, err := dec.Token(); err != nil {
		return nil, jsonErr(err, where)
	}
	return md, nil
}

// parseTensorInfo reads one tensor's {"dtype", "shape", "data_offsets"}.
// The returned Offset is relative to the data buffer.
func parseTensorInfo(dec *json.Decoder, name string) (TensorInfo, error) {
	info := TensorInfo{Name: name}
	where := fmt.Sprintf("tensor %q", name)
	fail := func(format string, args ...any) (TensorInfo, error) {
		return TensorInfo{}, fmt.Errorf("%w: %s: "+format, append([]any{ErrFormat, where}, args...)...)
	}
	tok, err := dec.Token()
	if err != nil {
		return TensorInfo{}, jsonErr(err, where)
	}
	if tok != json.Delim('{') {
		return fail("entry is %s, want an object with dtype, shape and data_offsets", describe(tok))
	}
	var haveDType, haveShape, haveOffsets bool
	var offsets []int64
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return TensorInfo{}, jsonErr(err, where)
		}
		field := tok.(string)
		var seen *bool
		switch field {
		case "dtype":
			seen = &haveDType
		case "shape":
			seen = &haveShape
		case "data_offsets":
			seen = &haveOffsets
		}
		if seen != nil {
			if *seen {
				return fail("field %q appears twice", field)
			}
			*seen = true
		}
		switch field {
		case "dtype":
			tok, err := dec.Token()
			if err != nil {
				return TensorInfo{}, jsonErr(err, where)
			}
			s, ok := tok.(string)
			if !ok {
				return fail("field \"dtype\" is %s, want a string such as \"F32\"", describe(tok))
			}
			if info.DType, err = ParseDType(s); err != nil {
				return fail("field \"dtype\": %v", err)
			}
		case "shape":
			dims, err := parseInts(dec, where, field)
			if err != nil {
				return TensorInfo{}, err
			}
			info.Shape = make([]int, len(dims))
			for i, d := range dims {
				if int64(int(d)) != d {
					return fail("field \"shape\": dimension %d is %d, too large for this platform", i, d)
				}
				info.Shape[i] = int(d)
			}
		case "data_offsets":
			if offsets, err = parseInts(dec, where, field); err != nil {
				return TensorInfo{}, err
			}
			if len(offsets) != 2 {
				return fail("field \"data_offsets\" has %d numbers, want [begin, end]", len(offsets))
			}
		default:
			if err := skipValue(dec); err != nil {
				return TensorInfo{}, jsonErr(err, where)
			}
		}
	}
	if _, err := dec.Token(); err != nil {
		return TensorInfo{}, jsonErr(err, where)
	}
	for _, f := range []struct {
		name string
		ok   bool
	}{{"dtype", haveDType}, {"shape", haveShape}, {"data_offsets", haveOffsets}} {
		if !f.ok {
			return fail("field %q is missing", f.name)
		}
	}
	if offsets[1] < offsets[0] {
		return fail("data_offsets [%d, %d] end before they begin", offsets[0], offsets[1])
	}
	want, err := byteSize(info.DType, info.Shape)
	if err != nil {
		return fail("field \"shape\": %v", err)
	}
	info.Offset, info.Size = offsets[0], offsets[1]-offsets[0]
	if info.Size != want {
		return fail("shape %v of %v needs %d bytes but data_offsets [%d, %d] span %d",
			info.Shape, info.DType, want, offsets[0], offsets[1], info.Size)
	}
	return info, nil
}

// parseInts reads a JSON array of non-negative integers that fit in int64.
func parseInts(dec *json.Decoder, where, field string) ([]int64, error) {
	tok, err := dec.Token()
	if err != nil {
		return nil, jsonErr(err, where)
	}
	if tok != json.Delim('[') {
		return nil, fmt.Errorf("%w: %s: field %q is %s, want an array of integers", ErrFormat, where, field, describe(tok))
	}
	out := []int64{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, jsonErr(err, where)
		}
		num, ok := tok.(json.Number)
		if !ok {
			return nil, fmt.Errorf("%w: %s: field %q: element %d is %s, want an integer", ErrFormat, where, field, len(out), describe(tok))
		}
		s := num.String()
		if strings.HasPrefix(s, "-") {
			return nil, fmt.Errorf("%w: %s: field %q: element %d is %s, want >= 0", ErrFormat, where, field, len(out), s)
		}
		v, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			if errors.Is(err, strconv.ErrRange) {
				return nil, fmt.Errorf("%w: %s: field %q: element %d is %s, too large", ErrFormat, where, field, len(out), s)
			}
			return nil, fmt.Errorf("%w: %s: field %q: element %d is %s, want an integer", ErrFormat, where, field, len(out), s)
		}
		out = append(out, v)
	}
	if _, err := dec.Token(); err != nil {
		return nil, jsonErr(err, where)
	}
	return out, nil
}

// skipValue consumes one JSON value of any kind.
func skipValue(dec *json.Decoder) error {
	depth := 0
	for {
		tok, err := dec.Token()
		if err != nil {
			return err
		}
		switch tok {
		case json.Delim('{'), json.Delim('['):
			depth++
		case json.Delim('}'), json.Delim(']'):
			depth--
		}
		if depth == 0 {
			return nil
		}
	}
}

// jsonErr turns a decoder error into a format error naming where it happened.
func jsonErr(err error, where string) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("%w: %s: JSON ends early", ErrFormat, where)
	}
	return fmt.Errorf("%w: %s: invalid JSON: %v", ErrFormat, where, err)
}

// describe names a JSON token for error messages.
func describe(tok json.Token) string {
	switch v := tok.(type) {
	case nil:
		return "null"
	case json.Delim:
		switch v {
		case '{':
			return "an object"
		case '[':
			return "an array"
		}
		return fmt.Sprintf("%q", string(v))
	case string:
		return fmt.Sprintf("the string %q", clip([]byte(v)))
	case json.Number:
		return "the number " + v.String()
	case bool:
		return fmt.Sprintf("%v", v)
	}
	return fmt.Sprintf("%v", tok)
}

// clip shortens b for an error message.
func clip(b []byte) string {
	if len(b) > 40 {
		return string(b[:40]) + "..."
	}
	return string(b)
}

// isJSONSpace reports whether r is JSON insignificant whitespace.
func isJSONSpace(r rune) bool { return r == ' ' || r == '\t' || r == '\n' || r == '\r' }

func cmpInt64(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// headerEntry is what the encoder needs of one tensor.
type headerEntry struct {
	name  string
	dtype DType
	shape []int
	size  int64
}

// writeOrder sorts entries as the Rust crate's prepare() does before
// serialising: by dtype descending in the enum order, then by name
// ascending (byte-wise, as Rust compares Strings).
func writeOrder(entries []headerEntry) {
	slices.SortFunc(entries, func(a, b headerEntry) int {
		if a.dtype != b.dtype {
			return int(b.dtype) - int(a.dtype)
		}
		return strings.Compare(a.name, b.name)
	})
}

// encodeHeader serialises entries, in the given order with contiguous
// offsets, as serde_json does in the Rust crate: no whitespace,
// "__metadata__" first when metadata is non-nil (keys sorted here; Rust
// iterates a HashMap), each tensor as {"dtype","shape","data_offsets"}, then
// spaces up to a multiple of 8 bytes.
func encodeHeader(entries []headerEntry, metadata map[string]string) ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	first := true
	if metadata != nil {
		pyjson.WriteString(&b, metadataKey, false)
		b.WriteString(":{")
		keys := make([]string, 0, len(metadata))
		for k := range metadata {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for i, k := range keys {
			if i > 0 {
				b.WriteByte(',')
			}
			pyjson.WriteString(&b, k, false)
			b.WriteByte(':')
			pyjson.WriteString(&b, metadata[k], false)
		}
		b.WriteByte('}')
		first = false
	}
	var off int64
	var num []byte
	for _, e := range entries {
		if !first {
			b.WriteByte(',')
		}
		first = false
		pyjson.WriteString(&b, e.name, false)
		b.WriteString(`:{"dtype":"`)
		b.WriteString(e.dtype.String())
		b.WriteString(`","shape":[`)
		for i, s := range e.shape {
			if i > 0 {
				b.WriteByte(',')
			}
			num = strconv.AppendInt(num[:0], int64(s), 10)
			b.Write(num)
		}
		b.WriteString(`],"data_offsets":[`)
		num = strconv.AppendInt(num[:0], off, 10)
		b.Write(num)
		b.WriteByte(',')
		off += e.size
		num = strconv.AppendInt(num[:0], off, 10)
		b.Write(num)
		b.WriteString("]}")
	}
	b.WriteByte('}')
	for b.Len()%8 != 0 {
		b.WriteByte(' ')
	}
	if b.Len() > MaxHeaderSize {
		return nil, fmt.Errorf("header is %d bytes, more than the format's limit of %d", b.Len(), MaxHeaderSize)
	}
	return b.Bytes(), nil
}
