package tokenizer

import (
	"unicode"
	"unicode/utf8"
)

// The pre-tokenization regexes of the common byte-level BPE tokenizers. They
// run on every byte of input, so instead of a backtracking regex engine lethe
// scans them with hand-written code that follows the regex semantics exactly
// (leftmost alternative first, greedy quantifiers with backtracking).
// splitters_test.go checks each scanner against regexp2 on random text.
const (
	// gpt2Pattern is GPT-2's, used by the ByteLevel pre-tokenizer when
	// use_regex is true.
	gpt2Pattern = `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`
	// llama3Pattern is Llama 3's (and tiktoken cl100k's): digits in groups
	// of up to three.
	llama3Pattern = `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`
	// qwen2Pattern is Qwen 2 and 3's: digits one by one.
	qwen2Pattern = `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`
)

// fastSplitter returns the hand-written scanner for a known pattern, or nil.
func fastSplitter(src string) func(s string, dst []span) []span {
	switch src {
	case gpt2Pattern:
		return splitGPT2
	case llama3Pattern:
		return func(s string, dst []span) []span { return splitLlama3(s, dst, 3) }
	case qwen2Pattern:
		return func(s string, dst []span) []span { return splitLlama3(s, dst, 1) }
	}
	return nil
}

// Character classes of the scanners.
const (
	clsOther   = iota // not a letter, number or whitespace
	clsLetter         // \p{L}
	clsNumber         // \p{N}
	clsSpace          // \s other than \r and \n
	clsNewline        // \r or \n
)

var asciiClass = func() (t [128]uint8) {
	for c := 0; c < 128; c++ {
		r := rune(c)
		switch {
		case r == '\r' || r == '\n':
			t[c] = clsNewline
		case unicode.IsSpace(r):
			t[c] = clsSpace
		case unicode.IsLetter(r):
			t[c] = clsLetter
		case unicode.IsNumber(r):
			t[c] = clsNumber
		default:
			t[c] = clsOther
		}
	}
	return t
}()

// classAt returns the class of the character at s[i] and its size in bytes.
// Invalid UTF-8 counts as one "other" byte.
func classAt(s string, i int) (uint8, int) {
	c := s[i]
	if c < utf8.RuneSelf {
		return asciiClass[c], 1
	}
	r, size := utf8.DecodeRuneInString(s[i:])
	switch {
	case r == utf8.RuneError && size == 1:
		return clsOther, 1
	case unicode.IsLetter(r):
		return clsLetter, size
	case unicode.IsNumber(r):
		return clsNumber, size
	case unicode.IsSpace(r):
		return clsSpace, size
	}
	return clsOther, size
}

// classIs reports whether the character at i exists and has class c.
func classIs(s string, i int, c uint8) bool {
	if i >= len(s) {
		return false
	}
	got, _ := classAt(s, i)
	return got == c
}

// skipRun returns the end of the run of at most limit characters starting
// at i whose class satisfies want, and the number of characters.
func skipRun(s string, i int, want func(uint8) bool, limit int) (end, n int) {
	for i < len(s) && n < limit {
		c, size := classAt(s, i)
		if !want(c) {
			break
		}
		i += size
		n++
	}
	return i, n
}

func isLetterCls(c uint8) bool  { return c == clsLetter }
func isNumberCls(c uint8) bool  { return c == clsNumber }
func isOtherCls(c uint8) bool   { return c == clsOther }
func isSpaceCls(c uint8) bool   { return c == clsSpace || c == clsNewline }
func isNewlineCls(c uint8) bool { return c == clsNewline }

const unlimited = int(^uint(0) >> 1)

// contraction returns the length of a contraction ('s 't 're 've 'm 'll 'd)
// at i, or 0. With fold, letters match case-insensitively as Oniguruma does
// (which also folds U+017F LATIN SMALL LETTER LONG S to s).
func contraction(s string, i int, fold bool) int {
	if s[i] != '\'' || i+1 >= len(s) {
		return 0
	}
	lower := func(j int) (byte, int) {
		if j >= len(s) {
			return 0, 0
		}
		c := s[j]
		if fold {
			if 'A' <= c && c <= 'Z' {
				return c + 'a' - 'A', 1
			}
			if c == 0xC5 && j+1 < len(s) && s[j+1] == 0xBF { // U+017F ſ
				return 's', 2
			}
		}
		return c, 1
	}
	c1, n1 := lower(i + 1)
	switch c1 {
	case 's', 't', 'm', 'd':
		return 1 + n1
	case 'r', 'v', 'l':
		c2, n2 := lower(i + 1 + n1)
		if (c1 == 'r' || c1 == 'v') && c2 == 'e' || c1 == 'l' && c2 == 'l' {
			return 1 + n1 + n2
		}
	}
	return 0
}

// whitespaceTail handles `\s+(?!\S)|\s+` at i, where s[i] is whitespace: the
// run is taken whole if it ends the text or if it is one character long,
// else all of it but the last character.
func whitespaceTail(s string, i int) int {
	end, n := skipRun(s, i, isSpaceCls, unlimited)
	if end == len(s) || n == 1 {
		return end
	}
	// Back off one character so that the next word keeps its space.
	_, size := utf8.DecodeLastRuneInString(s[:end])
	return end - size
}

// splitGPT2 scans gpt2Pattern.
func splitGPT2(s string, dst []span) []span {
	for i := 0; i < len(s); {
		end := i + gpt2Match(s, i)
		dst = append(dst, span{i, end})
		i = end
	}
	return dst
}

func gpt2Match(s string, i int) int {
	if n := contraction(s, i, false); n > 0 {
		return n
	}
	c, _ := classAt(s, i)
	j := i
	if s[i] == ' ' && i+1 < len(s) {
		if c2, _ := classAt(s, i+1); c2 != clsSpace && c2 != clsNewline {
			// ` ?` takes the space: the class of the run is the next char's.
			j, c = i+1, c2
		}
	}
	switch c {
	case clsLetter:
		end, _ := skipRun(s, j, isLetterCls, unlimited)
		return end - i
	case clsNumber:
		end, _ := skipRun(s, j, isNumberCls, unlimited)
		return end - i
	case clsOther:
		end, _ := skipRun(s, j, isOtherCls, unlimited)
		return end - i
	}
	return whitespaceTail(s, i) - i
}

// splitLlama3 scans llama3Pattern (maxDigits 3) and qwen2Pattern (1).
func splitLlama3(s string, dst []span, maxDigits int) []span {
	for i := 0; i < len(s); {
		end := i + llama3Match(s, i, maxDigits)
		dst = append(dst, span{i, end})
		i = end
	}
	return dst
}

func llama3Match(s string, i int, maxDigits int) int {
	// (?i:'s|'t|'re|'ve|'m|'ll|'d)
	if n := contraction(s, i, true); n > 0 {
		return n
	}
	c, size := classAt(s, i)
	// [^\r\n\p{L}\p{N}]?\p{L}+
	if c == clsLetter {
		end, _ := skipRun(s, i, isLetterCls, unlimited)
		return end - i
	}
	if (c == clsOther || c == clsSpace) && classIs(s, i+size, clsLetter) {
		end, _ := skipRun(s, i+size, isLetterCls, unlimited)
		return end - i
	}
	// \p{N}{1,maxDigits}
	if c == clsNumber {
		end, _ := skipRun(s, i, isNumberCls, maxDigits)
		return end - i
	}
	// ` ?[^\s\p{L}\p{N}]+[\r\n]*`
	j := i
	if s[i] == ' ' && classIs(s, i+1, clsOther) {
		j = i + 1
	}
	if cj, _ := classAt(s, j); cj == clsOther {
		end, _ := skipRun(s, j, isOtherCls, unlimited)
		end, _ = skipRun(s, end, isNewlineCls, unlimited)
		return end - i
	}
	// Here s[i] is whitespace. `\s*[\r\n]+`: the run up to and including its
	// last newline.
	end, _ := skipRun(s, i, isSpaceCls, unlimited)
	lastNL := -1
	for k := i; k < end; {
		ck, sz := classAt(s, k)
		if ck == clsNewline {
			lastNL = k + sz
		}
		k += sz
	}
	if lastNL > 0 {
		return lastNL - i
	}
	// `\s+(?!\S)|\s+`
	return whitespaceTail(s, i) - i
}
