package tokenizer

import (
	"encoding/json"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// preTokenizer splits a normalized piece of text into words, which the model
// then tokenizes one by one. It may also rewrite the words (ByteLevel maps
// bytes to characters, Metaspace spaces to "▁").
type preTokenizer interface {
	// split appends the non-empty words of n to dst.
	split(n normString, dst []normString) ([]normString, error)
}

func parsePreTokenizer(raw json.RawMessage, path string) (preTokenizer, error) {
	typ, err := componentType(raw, path)
	if err != nil || typ == "" {
		return nil, err
	}
	switch typ {
	case "Sequence":
		list, err := parseSequence(raw, path, "pretokenizers", parsePreTokenizer)
		return sequencePreTokenizer(list), err
	case "ByteLevel":
		c := struct {
			AddPrefixSpace bool `json:"add_prefix_space"`
			UseRegex       bool `json:"use_regex"`
		}{AddPrefixSpace: true, UseRegex: true}
		if err := decodeFields(raw, &c, path); err != nil {
			return nil, err
		}
		return byteLevelPreTokenizer{addPrefixSpace: c.AddPrefixSpace, useRegex: c.UseRegex}, nil
	case "Split":
		var c struct {
			Pattern  json.RawMessage `json:"pattern"`
			Behavior SplitBehavior   `json:"behavior"`
			Invert   bool            `json:"invert"`
		}
		if err := decodeFields(raw, &c, path); err != nil {
			return nil, err
		}
		p, err := parsePattern(c.Pattern, path+".pattern")
		if err != nil {
			return nil, err
		}
		if err := checkBehavior(c.Behavior, path+".behavior"); err != nil {
			return nil, err
		}
		return splitPreTokenizer{pattern: p, behavior: c.Behavior, invert: c.Invert}, nil
	case "Metaspace":
		c := struct {
			Replacement    string  `json:"replacement"`
			PrependScheme  *string `json:"prepend_scheme"`
			AddPrefixSpace *bool   `json:"add_prefix_space"`
			Split          *bool   `json:"split"`
		}{Replacement: "▁"}
		if err := decodeFields(raw, &c, path); err != nil {
			return nil, err
		}
		m, err := newMetaspace(c.Replacement, c.PrependScheme, c.AddPrefixSpace, path)
		if err != nil {
			return nil, err
		}
		m.splitWords = c.Split == nil || *c.Split
		return m, nil
	case "BertPreTokenizer":
		return bertPreTokenizer{}, nil
	case "Whitespace":
		return whitespacePreTokenizer{}, nil
	case "WhitespaceSplit":
		return runeSplitPreTokenizer{isDelim: unicode.IsSpace, behavior: SplitRemoved}, nil
	case "Digits":
		var c struct {
			IndividualDigits bool `json:"individual_digits"`
		}
		if err := decodeFields(raw, &c, path); err != nil {
			return nil, err
		}
		b := SplitContiguous
		if c.IndividualDigits {
			b = SplitIsolated
		}
		return runeSplitPreTokenizer{isDelim: unicode.IsNumber, behavior: b}, nil
	case "Punctuation":
		c := struct {
			Behavior SplitBehavior `json:"behavior"`
		}{Behavior: SplitIsolated}
		if err := decodeFields(raw, &c, path); err != nil {
			return nil, err
		}
		if err := checkBehavior(c.Behavior, path+".behavior"); err != nil {
			return nil, err
		}
		return runeSplitPreTokenizer{isDelim: isPunctuation, behavior: c.Behavior}, nil
	case "CharDelimiterSplit":
		var c struct {
			Delimiter string `json:"delimiter"`
		}
		if err := decodeFields(raw, &c, path); err != nil {
			return nil, err
		}
		if utf8.RuneCountInString(c.Delimiter) != 1 {
			return nil, fmt.Errorf("%s.delimiter: want one character, got %q", path, c.Delimiter)
		}
		d, _ := utf8.DecodeRuneInString(c.Delimiter)
		return runeSplitPreTokenizer{isDelim: func(r rune) bool { return r == d }, behavior: SplitRemoved}, nil
	case "FixedLength":
		c := struct {
			Length int `json:"length"`
		}{Length: 5}
		if err := decodeFields(raw, &c, path); err != nil {
			return nil, err
		}
		if c.Length <= 0 {
			return nil, fmt.Errorf("%s.length: must be positive, got %d", path, c.Length)
		}
		return fixedLengthPreTokenizer{c.Length}, nil
	}
	return nil, unsupported(path, typ, "BertPreTokenizer, ByteLevel, CharDelimiterSplit, Digits, FixedLength, Metaspace, Punctuation, Sequence, Split, Whitespace, WhitespaceSplit")
}

func checkBehavior(b SplitBehavior, path string) error {
	switch b {
	case SplitRemoved, SplitIsolated, SplitMergedWithPrevious, SplitMergedWithNext, SplitContiguous:
		return nil
	}
	return fmt.Errorf("%s: unknown split behavior %q (want Removed, Isolated, MergedWithPrevious, MergedWithNext or Contiguous)", path, b)
}

type sequencePreTokenizer []preTokenizer

func (s sequencePreTokenizer) split(n normString, dst []normString) ([]normString, error) {
	words := []normString{n}
	var next []normString
	for _, p := range s {
		next = next[:0]
		for _, w := range words {
			var err error
			if next, err = p.split(w, next); err != nil {
				return dst, err
			}
		}
		words, next = next, words
	}
	return append(dst, words...), nil
}

// byteLevelPreTokenizer is GPT-2's: an optional leading space, the GPT-2
// regex, then every byte shown as a printable character.
type byteLevelPreTokenizer struct {
	addPrefixSpace, useRegex bool
}

func (b byteLevelPreTokenizer) split(n normString, dst []normString) ([]normString, error) {
	if b.addPrefixSpace && !strings.HasPrefix(n.s, " ") {
		n.prepend(" ")
	}
	start := len(dst)
	if b.useRegex {
		var pieces []piece
		pieces = piecesFromMatches(pieces, splitGPT2(n.s, nil), len(n.s))
		dst = n.splitBy(dst, pieces, SplitIsolated)
	} else if n.s != "" {
		dst = append(dst, n)
	}
	for i := start; i < len(dst); i++ {
		byteLevelTransform(&dst[i])
	}
	return dst, nil
}

// splitPreTokenizer splits on a pattern; invert splits on what does not match.
type splitPreTokenizer struct {
	pattern  pattern
	behavior SplitBehavior
	invert   bool
}

func (p splitPreTokenizer) split(n normString, dst []normString) ([]normString, error) {
	matches, err := p.pattern.findAll(n.s, nil)
	if err != nil {
		return dst, err
	}
	pieces := piecesFromMatches(nil, matches, len(n.s))
	if p.invert {
		for i := range pieces {
			pieces[i].match = !pieces[i].match
		}
	}
	return n.splitBy(dst, pieces, p.behavior), nil
}

// runeSplitPreTokenizer splits on characters for which isDelim is true.
type runeSplitPreTokenizer struct {
	isDelim  func(rune) bool
	behavior SplitBehavior
}

func (p runeSplitPreTokenizer) split(n normString, dst []normString) ([]normString, error) {
	return n.splitBy(dst, piecesByRune(nil, n.s, p.isDelim), p.behavior), nil
}

// isPunctuation is Rust's char::is_ascii_punctuation or Unicode category P.
func isPunctuation(r rune) bool {
	if r < utf8.RuneSelf {
		return ('!' <= r && r <= '/') || (':' <= r && r <= '@') || ('[' <= r && r <= '`') || ('{' <= r && r <= '~')
	}
	return unicode.IsPunct(r)
}

// bertPreTokenizer splits on whitespace (dropped) and punctuation (kept as
// words of their own).
type bertPreTokenizer struct{}

func (bertPreTokenizer) split(n normString, dst []normString) ([]normString, error) {
	words := n.splitBy(nil, piecesByRune(nil, n.s, unicode.IsSpace), SplitRemoved)
	for _, w := range words {
		dst = w.splitBy(dst, piecesByRune(nil, w.s, isPunctuation), SplitIsolated)
	}
	return dst, nil
}

// whitespacePreTokenizer keeps the runs matched by `\w+|[^\w\s]+` (Unicode
// word characters, or runs of other non-space characters).
type whitespacePreTokenizer struct{}

func (whitespacePreTokenizer) split(n normString, dst []normString) ([]normString, error) {
	s := n.s
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		if unicode.IsSpace(r) {
			i += size
			continue
		}
		word := isWordChar(r)
		j := i + size
		for j < len(s) {
			r2, sz := utf8.DecodeRuneInString(s[j:])
			if unicode.IsSpace(r2) || isWordChar(r2) != word {
				break
			}
			j += sz
		}
		dst = append(dst, n.slice(i, j))
		i = j
	}
	return dst, nil
}

// isWordChar is the \w of Rust's regex crate: Alphabetic, marks, decimal
// numbers, connector punctuation and the joiners.
func isWordChar(r rune) bool {
	if r < utf8.RuneSelf {
		return r == '_' || ('0' <= r && r <= '9') || ('a' <= r && r <= 'z') || ('A' <= r && r <= 'Z')
	}
	return unicode.In(r, unicode.L, unicode.Nl, unicode.Other_Alphabetic, unicode.M, unicode.Nd, unicode.Pc, unicode.Join_Control)
}

// fixedLengthPreTokenizer cuts the text into words of length characters.
type fixedLengthPreTokenizer struct{ length int }

func (f fixedLengthPreTokenizer) split(n normString, dst []normString) ([]normString, error) {
	start, count := 0, 0
	for i := range n.s {
		if count == f.length {
			dst = append(dst, n.slice(start, i))
			start, count = i, 0
		}
		count++
	}
	if start < len(n.s) {
		dst = append(dst, n.slice(start, len(n.s)))
	}
	return dst, nil
}

// metaspace is SentencePiece's convention: spaces become "▁", a "▁" is
// prepended (always, to the first piece only, or never), and words start at
// each "▁".
type metaspace struct {
	replacement rune
	prepend     prependScheme
	splitWords  bool
}

type prependScheme int

const (
	prependAlways prependScheme = iota
	prependFirst
	prependNever
)

func newMetaspace(replacement string, scheme *string, addPrefixSpace *bool, path string) (metaspace, error) {
	if utf8.RuneCountInString(replacement) != 1 {
		return metaspace{}, fmt.Errorf("%s.replacement: want one character, got %q", path, replacement)
	}
	r, _ := utf8.DecodeRuneInString(replacement)
	m := metaspace{replacement: r, prepend: prependAlways}
	switch {
	case scheme != nil:
		switch *scheme {
		case "always":
			m.prepend = prependAlways
		case "first":
			m.prepend = prependFirst
		case "never":
			m.prepend = prependNever
		default:
			return m, fmt.Errorf("%s.prepend_scheme: unknown value %q (want always, first or never)", path, *scheme)
		}
	case addPrefixSpace != nil && !*addPrefixSpace:
		m.prepend = prependNever
	}
	return m, nil
}

func (m metaspace) split(n normString, dst []normString) ([]normString, error) {
	rep := string(m.replacement)
	if strings.IndexByte(n.s, ' ') >= 0 {
		matches, _ := stringPattern(" ").findAll(n.s, nil)
		n.replaceRanges(matches, rep)
	}
	if !strings.HasPrefix(n.s, rep) {
		switch {
		case m.prepend == prependAlways, m.prepend == prependFirst && n.orig.start == 0:
			n.prepend(rep)
		}
	}
	if !m.splitWords {
		if n.s != "" {
			dst = append(dst, n)
		}
		return dst, nil
	}
	return n.splitBy(dst, piecesByRune(nil, n.s, func(r rune) bool { return r == m.replacement }), SplitMergedWithNext), nil
}
