// Package jsonfile reads JSON keeping the order of object keys and the text of
// numbers, and writes values byte for byte as Python's
// json.dumps(v, indent=2, sort_keys=True) does: the format of PEFT's
// adapter_config.json.
package jsonfile

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"reflect"
	"sort"
	"strconv"
	"strings"

	lethejson "github.com/lethe-ml/lethe/internal/pyjson"
)

// Object is a JSON object that remembers the order of its keys.
type Object struct {
	keys   []string
	values map[string]any
}

// NewObject returns an empty object.
func NewObject() *Object { return &Object{values: map[string]any{}} }

// Keys returns the keys in the order they were read or first set.
func (o *Object) Keys() []string { return append([]string(nil), o.keys...) }

// Len is the number of keys.
func (o *Object) Len() int { return len(o.keys) }

// Get returns the value of key.
func (o *Object) Get(key string) (any, bool) {
	v, ok := o.values[key]
	return v, ok
}

// Set sets key, appending it when new.
func (o *Object) Set(key string, v any) {
	if _, ok := o.values[key]; !ok {
		o.keys = append(o.keys, key)
	}
	o.values[key] = v
}

// Delete removes key.
func (o *Object) Delete(key string) {
	if _, ok := o.values[key]; !ok {
		return
	}
	delete(o.values, key)
	for i, k := range o.keys {
		if k == key {
			o.keys = append(o.keys[:i], o.keys[i+1:]...)
			break
		}
	}
}

// Clone returns a deep copy.
func (o *Object) Clone() *Object {
	c := NewObject()
	for _, k := range o.keys {
		c.Set(k, cloneValue(o.values[k]))
	}
	return c
}

func cloneValue(v any) any {
	switch x := v.(type) {
	case *Object:
		return x.Clone()
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = cloneValue(e)
		}
		return out
	}
	return v
}

// Decode parses one JSON value: objects become *Object, arrays []any,
// numbers json.Number (their text as written), and strings, booleans and
// null string, bool and nil. Duplicate keys and trailing data are errors.
func Decode(data []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	v, err := decodeValue(dec)
	if err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("trailing data after the JSON value")
	}
	return v, nil
}

func decodeValue(dec *json.Decoder) (any, error) {
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	switch t := tok.(type) {
	case json.Delim:
		switch t {
		case '{':
			o := NewObject()
			for dec.More() {
				kt, err := dec.Token()
				if err != nil {
					return nil, err
				}
				key := kt.(string)
				if _, dup := o.values[key]; dup {
					return nil, fmt.Errorf("duplicate key %q", key)
				}
				v, err := decodeValue(dec)
				if err != nil {
					return nil, fmt.Errorf("%q: %w", key, err)
				}
				o.Set(key, v)
			}
			_, err := dec.Token() // '}'
			return o, err
		case '[':
			out := []any{}
			for dec.More() {
				v, err := decodeValue(dec)
				if err != nil {
					return nil, err
				}
				out = append(out, v)
			}
			_, err := dec.Token() // ']'
			return out, err
		}
		return nil, fmt.Errorf("unexpected %v", t)
	}
	return tok, nil
}

// Encode renders v as Python's json.dumps(v, indent=2, sort_keys=True)
// (ensure_ascii on, no trailing newline). v may hold nil, bool, string,
// json.Number, integers, float64 (written as Python's repr writes floats),
// []any or other slices, *Object and map[string]any.
func Encode(v any) ([]byte, error) {
	var b strings.Builder
	if err := encode(&b, v, 0); err != nil {
		return nil, err
	}
	return []byte(b.String()), nil
}

func encode(b *strings.Builder, v any, depth int) error {
	switch x := v.(type) {
	case nil:
		b.WriteString("null")
	case bool:
		if x {
			b.WriteString("true")
		} else {
			b.WriteString("false")
		}
	case string:
		lethejson.WriteString(b, x, true)
	case json.Number:
		b.WriteString(string(x))
	case int:
		b.WriteString(strconv.Itoa(x))
	case int64:
		b.WriteString(strconv.FormatInt(x, 10))
	case float64:
		b.WriteString(FloatRepr(x))
	case float32:
		b.WriteString(FloatRepr(float64(x)))
	case *Object:
		keys := x.Keys()
		sort.Strings(keys) // Python sorts str keys by code point, as Go sorts UTF-8 bytes
		return encodeObject(b, keys, func(k string) any { return x.values[k] }, depth)
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		return encodeObject(b, keys, func(k string) any { return x[k] }, depth)
	case []any:
		return encodeArray(b, len(x), func(i int) any { return x[i] }, depth)
	default:
		rv := reflect.ValueOf(v)
		if rv.Kind() == reflect.Slice {
			return encodeArray(b, rv.Len(), func(i int) any { return rv.Index(i).Interface() }, depth)
		}
		return fmt.Errorf("jsonfile: cannot encode %T", v)
	}
	return nil
}

func newline(b *strings.Builder, depth int) {
	b.WriteByte('\n')
	for range depth {
		b.WriteString("  ")
	}
}

func encodeObject(b *strings.Builder, keys []string, get func(string) any, depth int) error {
	if len(keys) == 0 {
		b.WriteString("{}")
		return nil
	}
	b.WriteByte('{')
	for i, k := range keys {
		if i > 0 {
			b.WriteByte(',')
		}
		newline(b, depth+1)
		lethejson.WriteString(b, k, true)
		b.WriteString(": ")
		if err := encode(b, get(k), depth+1); err != nil {
			return err
		}
	}
	newline(b, depth)
	b.WriteByte('}')
	return nil
}

func encodeArray(b *strings.Builder, n int, get func(int) any, depth int) error {
	if n == 0 {
		b.WriteString("[]")
		return nil
	}
	b.WriteByte('[')
	for i := 0; i < n; i++ {
		if i > 0 {
			b.WriteByte(',')
		}
		newline(b, depth+1)
		if err := encode(b, get(i), depth+1); err != nil {
			return err
		}
	}
	newline(b, depth)
	b.WriteByte(']')
	return nil
}

// FloatRepr formats f as Python's repr(float) (and json.dumps) does: the
// shortest digits that round-trip, in positional notation when the decimal
// exponent is in [-4, 16), with ".0" on integral values, else scientific
// ("1e-05", "1.5e+20"); Infinity, -Infinity and NaN as json.dumps writes
// them.
func FloatRepr(f float64) string {
	switch {
	case math.IsNaN(f):
		return "NaN"
	case math.IsInf(f, 1):
		return "Infinity"
	case math.IsInf(f, -1):
		return "-Infinity"
	case f == 0:
		if math.Signbit(f) {
			return "-0.0"
		}
		return "0.0"
	}
	e := strconv.FormatFloat(f, 'e', -1, 64) // d.ddde±XX
	exp, _ := strconv.Atoi(e[strings.IndexByte(e, 'e')+1:])
	if exp >= -4 && exp < 16 {
		s := strconv.FormatFloat(f, 'f', -1, 64)
		if !strings.ContainsAny(s, ".") {
			s += ".0"
		}
		return s
	}
	return e
}

// Equal reports whether two decoded or constructed values are the same
// JSON value: numbers compare by value (8 equals 8.0), objects by their
// key/value sets.
func Equal(a, b any) bool {
	if an, ok := number(a); ok {
		bn, ok := number(b)
		return ok && an == bn
	}
	switch x := a.(type) {
	case nil:
		return b == nil
	case bool:
		y, ok := b.(bool)
		return ok && x == y
	case string:
		y, ok := b.(string)
		return ok && x == y
	case *Object:
		y, ok := b.(*Object)
		if !ok || x.Len() != y.Len() {
			return false
		}
		for _, k := range x.keys {
			yv, ok := y.values[k]
			if !ok || !Equal(x.values[k], yv) {
				return false
			}
		}
		return true
	}
	as, aok := slice(a)
	bs, bok := slice(b)
	if !aok || !bok || len(as) != len(bs) {
		return false
	}
	for i := range as {
		if !Equal(as[i], bs[i]) {
			return false
		}
	}
	return true
}

func number(v any) (float64, bool) {
	switch x := v.(type) {
	case json.Number:
		f, err := x.Float64()
		return f, err == nil
	case int:
		return float64(x), true
	case int64:
		return float64(x), true
	case float64:
		return x, true
	case float32:
		return float64(x), true
	}
	return 0, false
}

func slice(v any) ([]any, bool) {
	if x, ok := v.([]any); ok {
		return x, true
	}
	rv := reflect.ValueOf(v)
	if !rv.IsValid() || rv.Kind() != reflect.Slice {
		return nil, false
	}
	out := make([]any, rv.Len())
	for i := range out {
		out[i] = rv.Index(i).Interface()
	}
	return out, true
}
