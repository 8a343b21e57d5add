package tokenizer

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// decoder turns tokens back into text, a step at a time: each decoder maps
// the list of token strings to a new list; the final list is concatenated.
type decoder interface {
	decodeChain(tokens []string) ([]string, error)
}

func parseDecoder(raw json.RawMessage, path string) (decoder, error) {
	typ, err := componentType(raw, path)
	if err != nil || typ == "" {
		return nil, err
	}
	switch typ {
	case "Sequence":
		list, err := parseSequence(raw, path, "decoders", parseDecoder)
		return sequenceDecoder(list), err
	case "ByteLevel":
		return byteLevelDecoder{}, nil
	case "ByteFallback":
		return byteFallbackDecoder{}, nil
	case "Fuse":
		return fuseDecoder{}, nil
	case "Strip":
		var c struct {
			Content string `json:"content"`
			Start   int    `json:"start"`
			Stop    int    `json:"stop"`
		}
		if err := decodeFields(raw, &c, path); err != nil {
			return nil, err
		}
		if utf8.RuneCountInString(c.Content) != 1 {
			return nil, fmt.Errorf("%s.content: want one character, got %q", path, c.Content)
		}
		r, _ := utf8.DecodeRuneInString(c.Content)
		return stripDecoder{content: r, start: c.Start, stop: c.Stop}, nil
	case "Replace":
		p, content, err := parseReplace(raw, path)
		if err != nil {
			return nil, err
		}
		return replaceDecoder{pattern: p, content: content}, nil
	case "Metaspace":
		c := struct {
			Replacement    string  `json:"replacement"`
			PrependScheme  *string `json:"prepend_scheme"`
			AddPrefixSpace *bool   `json:"add_prefix_space"`
		}{Replacement: "▁"}
		if err := decodeFields(raw, &c, path); err != nil {
			return nil, err
		}
		m, err := newMetaspace(c.Replacement, c.PrependScheme, c.AddPrefixSpace, path)
		if err != nil {
			return nil, err
		}
		return metaspaceDecoder{m}, nil
	case "WordPiece":
		c := struct {
			Prefix  string `json:"prefix"`
			Cleanup bool   `json:"cleanup"`
		}{Prefix: "##", Cleanup: true}
		if err := decodeFields(raw, &c, path); err != nil {
			return nil, err
		}
		return wordPieceDecoder{prefix: c.Prefix, cleanup: c.Cleanup}, nil
	case "BPEDecoder":
		c := struct {
			Suffix string `json:"suffix"`
		}{Suffix: "</w>"}
		if err := decodeFields(raw, &c, path); err != nil {
			return nil, err
		}
		return bpeSuffixDecoder{suffix: c.Suffix}, nil
	case "CTC":
		c := struct {
			PadToken           string `json:"pad_token"`
			WordDelimiterToken string `json:"word_delimiter_token"`
			Cleanup            bool   `json:"cleanup"`
		}{PadToken: "<pad>", WordDelimiterToken: "|", Cleanup: true}
		if err := decodeFields(raw, &c, path); err != nil {
			return nil, err
		}
		return ctcDecoder{pad: c.PadToken, delimiter: c.WordDelimiterToken, cleanup: c.Cleanup}, nil
	}
	return nil, unsupported(path, typ, "BPEDecoder, ByteFallback, ByteLevel, CTC, Fuse, Metaspace, Replace, Sequence, Strip, WordPiece")
}

type sequenceDecoder []decoder

func (s sequenceDecoder) decodeChain(tokens []string) ([]string, error) {
	var err error
	for _, d := range s {
		if tokens, err = d.decodeChain(tokens); err != nil {
			return nil, err
		}
	}
	return tokens, nil
}

// byteLevelDecoder maps byte-level characters back to bytes. A token with a
// character outside the byte-level alphabet (an added token, say) is taken
// as its UTF-8 bytes. Invalid UTF-8 becomes U+FFFD as in Rust's
// String::from_utf8_lossy.
type byteLevelDecoder struct{}

func (byteLevelDecoder) decodeChain(tokens []string) ([]string, error) {
	var buf []byte
	for _, t := range tokens {
		start := len(buf)
		ok := true
		for _, r := range t {
			b, in := runeToByte[r]
			if !in {
				ok = false
				break
			}
			buf = append(buf, b)
		}
		if !ok {
			buf = append(buf[:start], t...)
		}
	}
	return []string{lossyUTF8(buf)}, nil
}

// lossyUTF8 converts b to a string, replacing each maximal ill-formed
// subsequence by U+FFFD, as Rust's String::from_utf8_lossy does (Go's
// conversions replace every invalid byte instead).
func lossyUTF8(b []byte) string {
	if utf8.Valid(b) {
		return string(b)
	}
	var sb strings.Builder
	sb.Grow(len(b) + 8)
	for i := 0; i < len(b); {
		if b[i] < utf8.RuneSelf {
			sb.WriteByte(b[i])
			i++
			continue
		}
		r, size := utf8.DecodeRune(b[i:])
		if r != utf8.RuneError || size > 1 {
			sb.Write(b[i : i+size])
			i += size
			continue
		}
		sb.WriteRune(utf8.RuneError)
		i += maximalSubpart(b[i:])
	}
	return sb.String()
}

// maximalSubpart returns the length of the longest prefix of b (which starts
// an invalid sequence) that could begin a valid UTF-8 sequence, at least 1.
func maximalSubpart(b []byte) int {
	c := b[0]
	var need int
	lo, hi := byte(0x80), byte(0xBF)
	switch {
	case 0xC2 <= c && c <= 0xDF:
		need = 1
	case c == 0xE0:
		need, lo = 2, 0xA0
	case 0xE1 <= c && c <= 0xEC, c == 0xEE, c == 0xEF:
		need = 2
	case c == 0xED:
		need, hi = 2, 0x9F
	case c == 0xF0:
		need, lo = 3, 0x90
	case 0xF1 <= c && c <= 0xF3:
		need = 3
	case c == 0xF4:
		need, hi = 3, 0x8F
	default:
		return 1
	}
	n := 1
	for k := 0; k < need && n < len(b); k++ {
		x := b[n]
		if k == 0 && (x < lo || x > hi) || k > 0 && (x < 0x80 || x > 0xBF) {
			break
		}
		n++
	}
	return n
}

// byteFallbackDecoder turns runs of "<0xXX>" tokens back into characters;
// a run that is not valid UTF-8 gives one U+FFFD per byte.
type byteFallbackDecoder struct{}

func (byteFallbackDecoder) decodeChain(tokens []string) ([]string, error) {
	out := make([]string, 0, len(tokens))
	var pending []byte
	flush := func() {
		if len(pending) == 0 {
			return
		}
		if utf8.Valid(pending) {
			out = append(out, string(pending))
		} else {
			for range pending {
				out = append(out, "\uFFFD")
			}
		}
		pending = pending[:0]
	}
	for _, t := range tokens {
		if len(t) == 6 && strings.HasPrefix(t, "<0x") && t[5] == '>' {
			if v, err := strconv.ParseUint(t[3:5], 16, 8); err == nil {
				pending = append(pending, byte(v))
				continue
			}
		}
		flush()
		out = append(out, t)
	}
	flush()
	return out, nil
}

type fuseDecoder struct{}

func (fuseDecoder) decodeChain(tokens []string) ([]string, error) {
	return []string{strings.Join(tokens, "")}, nil
}

// stripDecoder removes up to start leading and stop trailing occurrences of
// content from every token.
type stripDecoder struct {
	content     rune
	start, stop int
}

func (s stripDecoder) decodeChain(tokens []string) ([]string, error) {
	out := make([]string, len(tokens))
	for i, t := range tokens {
		rs := []rune(t)
		a := 0
		for a < len(rs) && a < s.start && rs[a] == s.content {
			a++
		}
		b := len(rs)
		for k := 0; k < s.stop && b > a && rs[b-1] == s.content; k++ {
			b--
		}
		out[i] = string(rs[a:b])
	}
	return out, nil
}

type replaceDecoder struct {
	pattern pattern
	content string
}

func (r replaceDecoder) decodeChain(tokens []string) ([]string, error) {
	out := make([]string, len(tokens))
	for i, t := range tokens {
		matches, err := r.pattern.findAll(t, nil)
		if err != nil {
			return nil, err
		}
		if len(matches) == 0 || t == "" {
			// Hugging Face leaves an empty token alone (its pattern search
			// reports no match there).
			out[i] = t
			continue
		}
		var sb strings.Builder
		prev := 0
		for _, m := range matches {
			// Empty matches insert the content too.
			sb.WriteString(t[prev:m.start])
			sb.WriteString(r.content)
			prev = m.end
		}
		sb.WriteString(t[prev:])
		out[i] = sb.String()
	}
	return out, nil
}

// metaspaceDecoder turns "▁" back into spaces; in the first token, when a
// "▁" was prepended, they are dropped instead.
type metaspaceDecoder struct{ m metaspace }

func (d metaspaceDecoder) decodeChain(tokens []string) ([]string, error) {
	out := make([]string, len(tokens))
	for i, t := range tokens {
		var sb strings.Builder
		for _, r := range t {
			if r == d.m.replacement {
				if i == 0 && d.m.prepend != prependNever {
					continue
				}
				r = ' '
			}
			sb.WriteRune(r)
		}
		out[i] = sb.String()
	}
	return out, nil
}

// wordPieceDecoder joins WordPiece tokens: continuation pieces lose their
// prefix, other tokens get a space before them.
type wordPieceDecoder struct {
	prefix  string
	cleanup bool
}

func (w wordPieceDecoder) decodeChain(tokens []string) ([]string, error) {
	out := make([]string, len(tokens))
	for i, t := range tokens {
		if i != 0 {
			if strings.HasPrefix(t, w.prefix) {
				t = strings.Replace(t, w.prefix, "", 1)
			} else {
				t = " " + t
			}
		}
		if w.cleanup {
			t = cleanupSpaces(t)
		}
		out[i] = t
	}
	return out, nil
}

// cleanupSpaces removes the spaces BERT-style decoding leaves before
// punctuation and in English contractions.
func cleanupSpaces(s string) string {
	for _, r := range [][2]string{
		{" .", "."}, {" ?", "?"}, {" !", "!"}, {" ,", ","}, {" ' ", "'"}, {" n't", "n't"},
		{" 'm", "'m"}, {" do not", " don't"}, {" 's", "'s"}, {" 've", "'ve"}, {" 're", "'re"},
	} {
		s = strings.ReplaceAll(s, r[0], r[1])
	}
	return s
}

// bpeSuffixDecoder is for BPE models with an end-of-word suffix ("</w>").
type bpeSuffixDecoder struct{ suffix string }

func (b bpeSuffixDecoder) decodeChain(tokens []string) ([]string, error) {
	out := make([]string, len(tokens))
	for i, t := range tokens {
		repl := " "
		if i == len(tokens)-1 {
			repl = ""
		}
		out[i] = strings.ReplaceAll(t, b.suffix, repl)
	}
	return out, nil
}

// ctcDecoder is for CTC speech vocabularies: repeated tokens collapse, pad
// tokens vanish, the word delimiter becomes a space.
type ctcDecoder struct {
	pad, delimiter string
	cleanup        bool
}

func (c ctcDecoder) decodeChain(tokens []string) ([]string, error) {
	var out []string
	for i, t := range tokens {
		if i > 0 && tokens[i-1] == t {
			continue
		}
		t = strings.ReplaceAll(t, c.pad, "")
		if c.cleanup {
			t = strings.ReplaceAll(cleanupSpaces(t), c.delimiter, " ")
		}
		if t != "" {
			out = append(out, t)
		}
	}
	return out, nil
}
