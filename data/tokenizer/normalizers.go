package tokenizer

import (
	"encoding/json"
	"fmt"
	"strings"
	"unicode"

	"golang.org/x/text/unicode/norm"
)

// normalizer rewrites a piece of text before it is split into words, keeping
// the alignment with the input.
type normalizer interface {
	normalize(n *normString) error
}

// parseNormalizer builds a normalizer from its tokenizer.json description.
// path names the JSON location for error messages. A null normalizer is nil.
func parseNormalizer(raw json.RawMessage, path string) (normalizer, error) {
	typ, err := componentType(raw, path)
	if err != nil || typ == "" {
		return nil, err
	}
	switch typ {
	case "Sequence":
		list, err := parseSequence(raw, path, "normalizers", parseNormalizer)
		return sequenceNormalizer(list), err
	case "NFC":
		return unicodeNormalizer{norm.NFC}, nil
	case "NFD":
		return unicodeNormalizer{norm.NFD}, nil
	case "NFKC":
		return unicodeNormalizer{norm.NFKC}, nil
	case "NFKD":
		return unicodeNormalizer{norm.NFKD}, nil
	case "Lowercase":
		return lowercaseNormalizer{}, nil
	case "StripAccents":
		return stripAccentsNormalizer{}, nil
	case "Strip":
		c := struct {
			Left  bool `json:"strip_left"`
			Right bool `json:"strip_right"`
		}{true, true}
		if err := decodeFields(raw, &c, path); err != nil {
			return nil, err
		}
		return stripNormalizer{left: c.Left, right: c.Right}, nil
	case "Prepend":
		var c struct {
			Prepend string `json:"prepend"`
		}
		if err := decodeFields(raw, &c, path); err != nil {
			return nil, err
		}
		return prependNormalizer{c.Prepend}, nil
	case "Replace":
		p, content, err := parseReplace(raw, path)
		if err != nil {
			return nil, err
		}
		return replaceNormalizer{pattern: p, content: content}, nil
	case "BertNormalizer":
		c := struct {
			CleanText          bool  `json:"clean_text"`
			HandleChineseChars bool  `json:"handle_chinese_chars"`
			StripAccents       *bool `json:"strip_accents"`
			Lowercase          bool  `json:"lowercase"`
		}{CleanText: true, HandleChineseChars: true, Lowercase: true}
		if err := decodeFields(raw, &c, path); err != nil {
			return nil, err
		}
		strip := c.Lowercase
		if c.StripAccents != nil {
			strip = *c.StripAccents
		}
		return bertNormalizer{cleanText: c.CleanText, chineseChars: c.HandleChineseChars, stripAccents: strip, lowercase: c.Lowercase}, nil
	case "Nmt":
		return nmtNormalizer{}, nil
	case "ByteLevel":
		return byteLevelNormalizer{}, nil
	}
	return nil, unsupported(path, typ, "BertNormalizer, ByteLevel, Lowercase, NFC, NFD, NFKC, NFKD, Nmt, Prepend, Replace, Sequence, Strip, StripAccents")
}

type sequenceNormalizer []normalizer

func (s sequenceNormalizer) normalize(n *normString) error {
	for _, x := range s {
		if err := x.normalize(n); err != nil {
			return err
		}
	}
	return nil
}

// unicodeNormalizer applies a Unicode normalization form, with Hugging
// Face's alignments (see unicodenorm.go).
type unicodeNormalizer struct{ form norm.Form }

func (u unicodeNormalizer) normalize(n *normString) error {
	if u.form.IsNormalString(n.s) {
		return nil
	}
	n.transform(normalizeEdits(n.s, u.form), 0)
	return nil
}

// toLowerFull lowercases r as Rust's char::to_lowercase does (the full
// Unicode mapping: U+0130 becomes two characters).
func toLowerFull(r rune, dst []rune) []rune {
	if r == 'İ' {
		return append(dst, 'i', '\u0307')
	}
	return append(dst, unicode.ToLower(r))
}

type lowercaseNormalizer struct{}

func (lowercaseNormalizer) normalize(n *normString) error {
	if isASCIILower(n.s) {
		return nil
	}
	n.mapRunes(toLowerFull)
	return nil
}

// isASCIILower reports whether s is ASCII without uppercase letters, so
// that lowercasing leaves it unchanged.
func isASCIILower(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x80 || ('A' <= c && c <= 'Z') {
			return false
		}
	}
	return true
}

// dropNonspacingMarks removes nonspacing combining marks (category Mn),
// which is what BertNormalizer's accent stripping removes; spacing (Mc) and
// enclosing (Me) marks stay.
func dropNonspacingMarks(r rune, dst []rune) []rune {
	if unicode.Is(unicode.Mn, r) {
		return dst
	}
	return append(dst, r)
}

// dropMarks removes every combining mark (category M: Mn, Mc and Me), which
// is what the StripAccents normalizer removes.
func dropMarks(r rune, dst []rune) []rune {
	if unicode.Is(unicode.M, r) {
		return dst
	}
	return append(dst, r)
}

// stripAccentsNormalizer removes combining marks. It is meant to follow an
// NFD or NFKD normalizer, which splits accented letters into a base letter
// and marks.
type stripAccentsNormalizer struct{}

func (stripAccentsNormalizer) normalize(n *normString) error {
	n.mapRunes(dropMarks)
	return nil
}

type stripNormalizer struct{ left, right bool }

func (s stripNormalizer) normalize(n *normString) error {
	n.trim(s.left, s.right, unicode.IsSpace)
	return nil
}

type prependNormalizer struct{ prefix string }

func (p prependNormalizer) normalize(n *normString) error {
	n.prepend(p.prefix)
	return nil
}

type replaceNormalizer struct {
	pattern pattern
	content string
}

func (r replaceNormalizer) normalize(n *normString) error {
	matches, err := r.pattern.findAll(n.s, nil)
	if err != nil {
		return err
	}
	// Empty matches replace nothing. (Hugging Face inserts the content
	// there, inconsistently, and panics on some inputs; no real tokenizer
	// has such a pattern.)
	n.replaceRanges(nonEmpty(matches), r.content)
	return nil
}

// bertNormalizer is BERT's text cleaning: control characters removed,
// whitespace mapped to spaces, CJK ideographs surrounded by spaces, accents
// stripped, lowercase.
type bertNormalizer struct {
	cleanText, chineseChars, stripAccents, lowercase bool
}

func (b bertNormalizer) normalize(n *normString) error {
	if b.cleanText {
		n.mapRunes(func(r rune, dst []rune) []rune {
			switch {
			case r == 0 || r == 0xFFFD || isBertControl(r):
				return dst
			case isBertWhitespace(r):
				return append(dst, ' ')
			}
			return append(dst, r)
		})
	}
	if b.chineseChars {
		n.mapRunes(func(r rune, dst []rune) []rune {
			if isChineseChar(r) {
				return append(dst, ' ', r, ' ')
			}
			return append(dst, r)
		})
	}
	if b.stripAccents {
		if err := (unicodeNormalizer{norm.NFD}).normalize(n); err != nil {
			return err
		}
		n.mapRunes(dropNonspacingMarks)
	}
	if b.lowercase {
		n.mapRunes(toLowerFull)
	}
	return nil
}

func isBertWhitespace(r rune) bool {
	return r == '\t' || r == '\n' || r == '\r' || unicode.IsSpace(r)
}

// isBertControl reports whether BertNormalizer's clean_text removes r:
// control, format and private-use characters (Cc, Cf, Co), but not tab,
// newline or carriage return. Unassigned code points (Cn) stay, as they do
// in Hugging Face tokenizers.
func isBertControl(r rune) bool {
	if r == '\t' || r == '\n' || r == '\r' {
		return false
	}
	return unicode.In(r, unicode.Cc, unicode.Cf, unicode.Co, unicode.Cs)
}

func isChineseChar(r rune) bool {
	switch {
	case 0x4E00 <= r && r <= 0x9FFF,
		0x3400 <= r && r <= 0x4DBF,
		0x20000 <= r && r <= 0x2A6DF,
		0x2A700 <= r && r <= 0x2B73F,
		0x2B740 <= r && r <= 0x2B81F,
		0x2B920 <= r && r <= 0x2CEAF,
		0xF900 <= r && r <= 0xFAFF,
		0x2F800 <= r && r <= 0x2FA1F:
		return true
	}
	return false
}

// nmtNormalizer is the text cleaning of SentencePiece's NMT rules: some
// control characters are removed and unusual spaces become spaces.
type nmtNormalizer struct{}

func (nmtNormalizer) normalize(n *normString) error {
	n.mapRunes(func(r rune, dst []rune) []rune {
		switch {
		case 0x0001 <= r && r <= 0x0008, r == 0x000B, 0x000E <= r && r <= 0x001F, r == 0x007F, r == 0x008F, r == 0x009F:
			return dst
		case r == 0x0009, r == 0x000A, r == 0x000C, r == 0x000D, r == 0x1680, 0x200B <= r && r <= 0x200F,
			r == 0x2028, r == 0x2029, r == 0x2581, r == 0xFEFF, r == 0xFFFD:
			return append(dst, ' ')
		}
		return append(dst, r)
	})
	return nil
}

// byteLevelNormalizer maps every byte to its printable byte-level character.
type byteLevelNormalizer struct{}

func (byteLevelNormalizer) normalize(n *normString) error {
	byteLevelTransform(n)
	return nil
}

// unsupported is the error for a component type lethe does not implement.
func unsupported(path, typ, known string) error {
	return fmt.Errorf("%s: unsupported type %q (lethe supports %s)", path, typ, known)
}

// componentType reads the "type" field of a component. It returns "" for a
// JSON null.
func componentType(raw json.RawMessage, path string) (string, error) {
	if len(raw) == 0 || strings.TrimSpace(string(raw)) == "null" {
		return "", nil
	}
	var head struct {
		Type *string `json:"type"`
	}
	if err := json.Unmarshal(raw, &head); err != nil {
		return "", fmt.Errorf("%s: %w", path, err)
	}
	if head.Type == nil {
		return "", fmt.Errorf("%s: missing field \"type\"", path)
	}
	return *head.Type, nil
}

// parseReplace reads the fields of a Replace normalizer or decoder:
// {"pattern": {"String"|"Regex": ...}, "content": ...}.
func parseReplace(raw json.RawMessage, path string) (pattern, string, error) {
	var c struct {
		Pattern json.RawMessage `json:"pattern"`
		Content string          `json:"content"`
	}
	if err := decodeFields(raw, &c, path); err != nil {
		return nil, "", err
	}
	p, err := parsePattern(c.Pattern, path+".pattern")
	return p, c.Content, err
}

// parseSequence parses the list field of a Sequence component with parse,
// naming each element's path (path.field[i]) and leaving out null ones.
func parseSequence[T any](raw json.RawMessage, path, field string, parse func(json.RawMessage, string) (T, error)) ([]T, error) {
	var c map[string]json.RawMessage
	if err := decodeFields(raw, &c, path); err != nil {
		return nil, err
	}
	var items []json.RawMessage
	if v, ok := c[field]; ok {
		if err := json.Unmarshal(v, &items); err != nil {
			return nil, fmt.Errorf("%s.%s: %w", path, field, err)
		}
	}
	var out []T
	for i, r := range items {
		x, err := parse(r, fmt.Sprintf("%s.%s[%d]", path, field, i))
		if err != nil {
			return nil, err
		}
		if any(x) != nil {
			out = append(out, x)
		}
	}
	return out, nil
}

// decodeFields decodes a component's fields into v, naming the JSON path
// on errors.
func decodeFields(raw json.RawMessage, v any, path string) error {
	if err := json.Unmarshal(raw, v); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}
