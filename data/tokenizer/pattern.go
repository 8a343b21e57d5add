package tokenizer

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"

	"github.com/dlclark/regexp2"
)

// pattern finds the delimiters of a Split pre-tokenizer or the targets of a
// Replace normalizer or decoder.
type pattern interface {
	// findAll appends the byte ranges of all non-overlapping matches in s,
	// left to right, to dst. Empty matches are included, as Oniguruma's
	// iterator (which Hugging Face uses) finds them: never right at the
	// end of the previous match.
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
	case p.String != nil && *p.String == "":
		// Hugging Face compiles a String pattern into an escaped regex:
		// the empty one matches the empty string everywhere.
		return emptyPattern{}, nil
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

// emptyPattern is the String pattern "": an empty match before every
// character and at the end.
type emptyPattern struct{}

func (emptyPattern) findAll(s string, dst []span) ([]span, error) {
	if s == "" {
		return dst, nil
	}
	for i := range s {
		dst = append(dst, span{i, i})
	}
	return append(dst, span{len(s), len(s)}), nil
}

// nonEmpty drops the empty matches of ms, in place.
func nonEmpty(ms []span) []span {
	out := ms[:0]
	for _, m := range ms {
		if m.end > m.start {
			out = append(out, m)
		}
	}
	return out
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
	re, err := regexp2.Compile(onigCompat(src), regexp2.None)
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

// regexFindAll runs re over s, as Oniguruma's find iterator does, and
// converts its rune positions to bytes. An empty match is skipped when it
// sits right at the end of the previous match; the search then resumes one
// character further.
func regexFindAll(re *regexp2.Regexp, s string, dst []span) ([]span, error) {
	if s == "" {
		// Hugging Face does not search an empty string.
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
	lastMatchEnd := -1
	for at := 0; at <= len(runes); {
		m, err := re.FindRunesMatchStartingAt(runes, at)
		if err != nil {
			return dst, fmt.Errorf("regex %q: %w", re.String(), err)
		}
		if m == nil {
			break
		}
		start, end := m.Index, m.Index+m.Length
		if start == end && end == lastMatchEnd {
			at++
			continue
		}
		at, lastMatchEnd = end, end
		dst = append(dst, span{byteAt[start], byteAt[end]})
	}
	return dst, nil
}

// Oniguruma and regexp2 (which follows .NET) read a few escapes
// differently. onigCompat rewrites them into explicit classes so that a
// pattern matches what it matches in Hugging Face tokenizers:
//
//   - \w is Alphabetic, marks (Mn, Mc, Me), Nd and Pc in Oniguruma, where
//     .NET has letters, Mn, Nd, Pc and the joiners U+200C and U+200D.
//     Outside a bracket class Oniguruma also counts ², ³, ¹, ¼, ½ and ¾ as
//     word characters (its Latin-1 table says so); inside one it does not.
//   - \b and \B follow that \w.
//   - \h and \H are hexadecimal digits, unknown to .NET.
//
// Everything else (\s, \d, \p{...}, lookaround, (?i)) is left as written.
// POSIX bracket expressions ([[:alpha:]]) and Oniguruma's full case
// folding under (?i) (ſ matching s) are not emulated.
func onigCompat(src string) string {
	if !strings.ContainsRune(src, '\\') {
		return src
	}
	cls := onigClasses()
	var b strings.Builder
	inClass := false
	classStart := false // just after "[" or "[^"
	rs := []rune(src)
	for i := 0; i < len(rs); i++ {
		r := rs[i]
		atStart := classStart
		classStart = false
		switch {
		case r == '\\' && i+1 < len(rs):
			i++
			e := rs[i]
			switch {
			case e == 'w' && inClass:
				b.WriteString(cls.word)
			case e == 'W' && inClass:
				b.WriteString(cls.nonWord)
			case e == 'w':
				b.WriteString("[" + cls.word + cls.latin1Word + "]")
			case e == 'W':
				b.WriteString("[^" + cls.word + cls.latin1Word + "]")
			case e == 'b' && !inClass:
				w := "[" + cls.word + cls.latin1Word + "]"
				b.WriteString("(?:(?<=" + w + ")(?!" + w + ")|(?<!" + w + ")(?=" + w + "))")
			case e == 'B' && !inClass:
				w := "[" + cls.word + cls.latin1Word + "]"
				b.WriteString("(?:(?<=" + w + ")(?=" + w + ")|(?<!" + w + ")(?!" + w + "))")
			case e == 'h' && inClass:
				b.WriteString("0-9A-Fa-f")
			case e == 'h':
				b.WriteString("[0-9A-Fa-f]")
			case e == 'H' && !inClass:
				b.WriteString("[^0-9A-Fa-f]")
			default:
				b.WriteRune('\\')
				b.WriteRune(e)
			}
		case r == '[' && !inClass:
			inClass, classStart = true, true
			b.WriteRune(r)
			if i+1 < len(rs) && rs[i+1] == '^' {
				i++
				b.WriteRune('^')
			}
		case r == ']' && inClass && !atStart:
			inClass = false
			b.WriteRune(r)
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// onigClassSet holds the bracket-class bodies onigCompat writes.
type onigClassSet struct {
	word, nonWord, latin1Word string
}

var onigClasses = sync.OnceValue(func() onigClassSet {
	var rs []unicode.Range32
	for _, t := range []*unicode.RangeTable{unicode.L, unicode.M, unicode.Nd, unicode.Nl, unicode.Pc, unicode.Other_Alphabetic} {
		for _, r := range t.R16 {
			for c := uint32(r.Lo); c <= uint32(r.Hi); c += uint32(r.Stride) {
				rs = append(rs, unicode.Range32{Lo: c, Hi: c, Stride: 1})
			}
		}
		for _, r := range t.R32 {
			for c := r.Lo; c <= r.Hi; c += r.Stride {
				rs = append(rs, unicode.Range32{Lo: c, Hi: c, Stride: 1})
			}
		}
	}
	merged := mergeRanges(rs)
	var word, nonWord strings.Builder
	next := uint32(0)
	for _, r := range merged {
		writeClassRange(&word, r.Lo, r.Hi)
		if r.Lo > next {
			writeClassRange(&nonWord, next, r.Lo-1)
		}
		next = r.Hi + 1
	}
	if next <= unicode.MaxRune {
		writeClassRange(&nonWord, next, unicode.MaxRune)
	}
	return onigClassSet{word: word.String(), nonWord: nonWord.String(), latin1Word: `\u00B2\u00B3\u00B9\u00BC-\u00BE`}
})

// mergeRanges sorts single-character ranges and joins adjacent ones.
func mergeRanges(rs []unicode.Range32) []unicode.Range32 {
	sortRanges(rs)
	var out []unicode.Range32
	for _, r := range rs {
		if n := len(out); n > 0 && r.Lo <= out[n-1].Hi+1 {
			out[n-1].Hi = max(out[n-1].Hi, r.Hi)
			continue
		}
		out = append(out, r)
	}
	return out
}

func sortRanges(rs []unicode.Range32) {
	slices.SortFunc(rs, func(a, b unicode.Range32) int { return int(a.Lo) - int(b.Lo) })
}

// writeClassRange writes lo-hi in bracket-class syntax, every character
// escaped so that none is read as syntax.
func writeClassRange(b *strings.Builder, lo, hi uint32) {
	b.WriteString(classChar(lo))
	if hi > lo {
		b.WriteByte('-')
		b.WriteString(classChar(hi))
	}
}

func classChar(c uint32) string {
	if c <= 0xFFFF {
		return fmt.Sprintf(`\u%04X`, c)
	}
	return string(rune(c))
}
