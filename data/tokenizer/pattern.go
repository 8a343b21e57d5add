package tokenizer

import (
	"encoding/json"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/dlclark/regexp2"
)

// pattern finds the delimiters of a Split pre-tokenizer or the targets of a
// Replace normalizer or decoder.
type pattern interface {
	// findAll appends the byte ranges of all non-overlapping matches in s,
	// left to right, to dst.
	findAll(s string, dst []span) ([]span, error)
}

// parsePattern reads {"String": "..."} or {"Regex": "..."}.
func parsePattern(raw json.RawMessage, path string) (pattern, error) {
	var p struct {
		String *string `json:"String"`
		Regex  *string `json:"Regex"`
	}
	if err := json.Unmarshal(raw, &p); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	switch {
	case p.String != nil:
		return stringPattern(*p.String), nil
	case p.Regex != nil:
		return compileRegex(*p.Regex, path)
	}
	return nil, fmt.Errorf("%s: want {\"String\": ...} or {\"Regex\": ...}, got %s", path, raw)
}

// stringPattern matches a literal string. The empty string matches nothing.
type stringPattern string

func (p stringPattern) findAll(s string, dst []span) ([]span, error) {
	if p == "" {
		return dst, nil
	}
	for off := 0; ; {
		i := strings.Index(s[off:], string(p))
		if i < 0 {
			return dst, nil
		}
		dst = append(dst, span{off + i, off + i + len(p)})
		off += i + len(p)
	}
}

// runePattern matches every occurrence of one character.
type runePattern rune

func (p runePattern) findAll(s string, dst []span) ([]span, error) {
	for i, r := range s {
		if r == rune(p) {
			dst = append(dst, span{i, i + utf8.RuneLen(r)})
		}
	}
	return dst, nil
}

// regexPattern is a regular expression with Oniguruma's (Perl-like)
// semantics, which Hugging Face tokenizers uses: backtracking, lookaround.
// regexp2 provides that; the patterns of the common byte-level tokenizers
// (GPT-2, Llama 3, Qwen 2/3) use a hand-written scanner instead, which gives
// the same matches much faster (see splitters.go and its tests).
type regexPattern struct {
	source string
	re     *regexp2.Regexp
	fast   func(s string, dst []span) []span
}

func compileRegex(src, path string) (*regexPattern, error) {
	if fast := fastSplitter(src); fast != nil {
		return &regexPattern{source: src, fast: fast}, nil
	}
	re, err := regexp2.Compile(src, regexp2.None)
	if err != nil {
		return nil, fmt.Errorf("%s: regex %q: %w", path, src, err)
	}
	return &regexPattern{source: src, re: re}, nil
}

func (p *regexPattern) findAll(s string, dst []span) ([]span, error) {
	if p.fast != nil {
		return p.fast(s, dst), nil
	}
	return regexFindAll(p.re, s, dst)
}

// regexFindAll runs re over s and converts its rune positions to bytes.
func regexFindAll(re *regexp2.Regexp, s string, dst []span) ([]span, error) {
	if s == "" {
		return dst, nil
	}
	runes := []rune(s)
	// byteAt[i] is the byte offset of rune i.
	byteAt := make([]int, len(runes)+1)
	b := 0
	for i, r := range runes {
		byteAt[i] = b
		if r == utf8.RuneError {
			// Keep positions right on invalid UTF-8: the rune stands for
			// one byte there.
			_, size := utf8.DecodeRuneInString(s[b:])
			b += size
		} else {
			b += utf8.RuneLen(r)
		}
	}
	byteAt[len(runes)] = b
	m, err := re.FindRunesMatch(runes)
	for ; m != nil && err == nil; m, err = re.FindNextMatch(m) {
		if m.Length == 0 {
			// Empty matches split nothing (as in Hugging Face tokenizers,
			// where they produce no delimiter).
			continue
		}
		dst = append(dst, span{byteAt[m.Index], byteAt[m.Index+m.Length]})
	}
	if err != nil {
		return dst, fmt.Errorf("regex %q: %w", re.String(), err)
	}
	return dst, nil
}
