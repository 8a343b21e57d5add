package tokenizer

import (
	"strings"
	"unicode/utf8"
)

// span is a byte range [start, end) of the input text.
type span struct{ start, end int }

// normString is a piece of the input text in its current (normalized) form,
// with the alignment of every byte back to the input. It plays the role of
// NormalizedString in Hugging Face tokenizers: normalizers and
// pre-tokenizers transform and split it, and token offsets are read from it.
type normString struct {
	s string
	// align[i] is the input byte range of the character that produced byte i
	// of s. A nil align means s is an untouched slice of the input starting at
	// byte base, so byte i came from input byte base+i.
	align []span
	base  int
	// orig is the input range this piece covers (even when s is empty).
	orig span
}

// newNormString returns the untouched input slice text[start:end].
func newNormString(text string, start, end int) normString {
	return normString{s: text[start:end], base: start, orig: span{start, end}}
}

// spanOf returns the input range of byte i of s: the range of the input
// character it belongs to (a byte inside a multi-byte character maps to the
// whole character, as in Hugging Face's alignments).
func (n *normString) spanOf(i int) span {
	if n.align != nil {
		return n.align[i]
	}
	if n.s[i] < utf8.RuneSelf {
		return span{n.base + i, n.base + i + 1}
	}
	start := i
	for start > 0 && i-start < utf8.UTFMax-1 && !utf8.RuneStart(n.s[start]) {
		start--
	}
	_, size := utf8.DecodeRuneInString(n.s[start:])
	if start+size <= i {
		// Invalid UTF-8: the byte stands alone.
		return span{n.base + i, n.base + i + 1}
	}
	return span{n.base + start, n.base + start + size}
}

// inputRange returns the input range covered by bytes [a, b) of s.
func (n *normString) inputRange(a, b int) span {
	if a >= b {
		if a < len(n.s) {
			p := n.spanOf(a).start
			return span{p, p}
		}
		return span{n.orig.end, n.orig.end}
	}
	return span{n.spanOf(a).start, n.spanOf(b - 1).end}
}

// slice returns bytes [a, b) of s as a new piece.
func (n *normString) slice(a, b int) normString {
	out := normString{s: n.s[a:b], orig: n.inputRange(a, b)}
	if n.align == nil {
		out.base = n.base + a
	} else {
		out.align = n.align[a:b]
	}
	return out
}

// materialize makes align explicit so that s can be rewritten.
func (n *normString) materialize() []span {
	if n.align != nil {
		return n.align
	}
	al := make([]span, len(n.s))
	for i := 0; i < len(n.s); {
		_, size := utf8.DecodeRuneInString(n.s[i:])
		sp := span{n.base + i, n.base + i + size}
		for k := 0; k < size; k++ {
			al[i+k] = sp
		}
		i += size
	}
	return al
}

// builder accumulates a rewritten normString.
type builder struct {
	sb    strings.Builder
	align []span
}

func (b *builder) grow(n int) {
	b.sb.Grow(n)
	if cap(b.align)-len(b.align) < n {
		al := make([]span, len(b.align), len(b.align)+n)
		copy(al, b.align)
		b.align = al
	}
}

func (b *builder) writeRune(r rune, sp span) {
	size, _ := b.sb.WriteRune(r)
	for k := 0; k < size; k++ {
		b.align = append(b.align, sp)
	}
}

func (b *builder) writeString(s string, sp span) {
	b.sb.WriteString(s)
	for k := 0; k < len(s); k++ {
		b.align = append(b.align, sp)
	}
}

func (b *builder) done(orig span) normString {
	return normString{s: b.sb.String(), align: b.align, orig: orig}
}

// mapRunes rewrites s character by character: f appends the replacement of
// r (zero or more runes) to dst and returns it. Every output character is
// aligned to the input range of the character it replaces.
func (n *normString) mapRunes(f func(r rune, dst []rune) []rune) {
	al := n.materialize()
	var b builder
	b.grow(len(n.s))
	var buf []rune
	for i, r := range n.s {
		sp := al[i]
		buf = f(r, buf[:0])
		for _, o := range buf {
			b.writeRune(o, sp)
		}
	}
	*n = b.done(n.orig)
}

// edit is one character of a rewritten normString, as Hugging Face's
// NormalizedString::transform takes them: change 0 replaces the next input
// character, -k replaces it and removes the k characters after it, and a
// positive change inserts a new character.
type edit struct {
	r      rune
	change int
}

// transform rewrites s from edits, after dropping its first skip characters.
// A replacing character takes the alignment of the character it replaces; an
// inserted one takes that of the character before it (the start of the
// piece when there is none), as in Hugging Face tokenizers.
func (n *normString) transform(edits []edit, skip int) {
	al := n.materialize()
	var b builder
	b.grow(len(n.s))
	pos := 0
	next := func() {
		if pos < len(n.s) {
			_, size := utf8.DecodeRuneInString(n.s[pos:])
			pos += size
		}
	}
	for ; skip > 0; skip-- {
		next()
	}
	for _, e := range edits {
		var sp span
		switch {
		case e.change > 0 && pos == 0:
			sp = span{n.orig.start, n.orig.start}
		case e.change > 0:
			sp = al[pos-1]
		case pos < len(al):
			sp = al[pos]
			next()
			for k := e.change; k < 0; k++ {
				next()
			}
		default:
			sp = span{n.orig.end, n.orig.end}
		}
		b.writeRune(e.r, sp)
	}
	*n = b.done(n.orig)
}

// prepend inserts p before s, aligned to the first character of s.
func (n *normString) prepend(p string) {
	if p == "" || n.s == "" {
		return
	}
	al := n.materialize()
	var b builder
	b.grow(len(p) + len(n.s))
	b.writeString(p, al[0])
	b.sb.WriteString(n.s)
	b.align = append(b.align, al...)
	*n = b.done(n.orig)
}

// appendStr appends p after s, aligned to the last character of s.
func (n *normString) appendStr(p string) {
	if p == "" || n.s == "" {
		return
	}
	al := n.materialize()
	var b builder
	b.grow(len(p) + len(n.s))
	b.sb.WriteString(n.s)
	b.align = append(b.align, al...)
	b.writeString(p, al[len(al)-1])
	*n = b.done(n.orig)
}

// replaceRanges replaces each range of s (sorted, not overlapping) by repl.
// As in Hugging Face tokenizers, the replacement is aligned to the last
// character it replaces (to the character before an empty range, or to the
// start of the piece).
func (n *normString) replaceRanges(ranges []span, repl string) {
	if len(ranges) == 0 {
		return
	}
	al := n.materialize()
	var b builder
	b.grow(len(n.s))
	prev := 0
	for _, r := range ranges {
		b.sb.WriteString(n.s[prev:r.start])
		b.align = append(b.align, al[prev:r.start]...)
		sp := span{n.orig.start, n.orig.start}
		if r.end > 0 {
			sp = al[r.end-1]
		}
		b.writeString(repl, sp)
		prev = r.end
	}
	b.sb.WriteString(n.s[prev:])
	b.align = append(b.align, al[prev:]...)
	*n = b.done(n.orig)
}

// trim removes the leading and trailing characters for which drop is true
// (only at the requested ends).
func (n *normString) trim(left, right bool, drop func(rune) bool) {
	a, b := 0, len(n.s)
	if left {
		a = len(n.s) - len(strings.TrimLeftFunc(n.s, drop))
	}
	if right {
		b = len(strings.TrimRightFunc(n.s, drop))
	}
	if b < a {
		b = a
	}
	if a == 0 && b == len(n.s) {
		return
	}
	orig := n.orig
	*n = n.slice(a, b)
	n.orig = orig
}

// matchKind says how a split piece relates to the pattern that produced it.
type piece struct {
	span
	match bool
}

// SplitBehavior says what a splitting pre-tokenizer does with the parts of
// the text that match its pattern (the delimiters).
type SplitBehavior string

// The split behaviors of Hugging Face tokenizers.
const (
	SplitRemoved            SplitBehavior = "Removed"
	SplitIsolated           SplitBehavior = "Isolated"
	SplitMergedWithPrevious SplitBehavior = "MergedWithPrevious"
	SplitMergedWithNext     SplitBehavior = "MergedWithNext"
	SplitContiguous         SplitBehavior = "Contiguous"
)

// splitPieces turns the pieces produced by a pattern (which cover s in
// order, matches flagged) into the byte ranges to keep, following behavior.
func splitPieces(pieces []piece, behavior SplitBehavior) []span {
	out := make([]span, 0, len(pieces))
	switch behavior {
	case SplitIsolated:
		for _, p := range pieces {
			out = append(out, p.span)
		}
	case SplitRemoved:
		for _, p := range pieces {
			if !p.match {
				out = append(out, p.span)
			}
		}
	case SplitContiguous:
		prevMatch := false
		for i, p := range pieces {
			if i > 0 && p.match == prevMatch {
				out[len(out)-1].end = p.end
			} else {
				out = append(out, p.span)
			}
			prevMatch = p.match
		}
	case SplitMergedWithPrevious:
		prevMatch := false
		for i, p := range pieces {
			if i > 0 && p.match && !prevMatch {
				out[len(out)-1].end = p.end
			} else {
				out = append(out, p.span)
			}
			prevMatch = p.match
		}
	case SplitMergedWithNext:
		prevMatch := false
		for i := len(pieces) - 1; i >= 0; i-- {
			p := pieces[i]
			if i < len(pieces)-1 && p.match && !prevMatch {
				out[len(out)-1].start = p.start
			} else {
				out = append(out, p.span)
			}
			prevMatch = p.match
		}
		for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
			out[i], out[j] = out[j], out[i]
		}
	}
	return out
}

// splitBy splits s with the pieces found by find (which must cover s) and
// appends the non-empty results to dst.
func (n *normString) splitBy(dst []normString, pieces []piece, behavior SplitBehavior) []normString {
	for _, sp := range splitPieces(pieces, behavior) {
		if sp.end > sp.start {
			dst = append(dst, n.slice(sp.start, sp.end))
		}
	}
	return dst
}

// piecesFromMatches converts sorted, non-overlapping match ranges in a string
// of length total into pieces covering the whole string.
func piecesFromMatches(dst []piece, matches []span, total int) []piece {
	if total == 0 {
		return append(dst, piece{span{0, 0}, false})
	}
	prev := 0
	for _, m := range matches {
		if m.start > prev {
			dst = append(dst, piece{span{prev, m.start}, false})
		}
		dst = append(dst, piece{m, true})
		prev = m.end
	}
	if prev < total {
		dst = append(dst, piece{span{prev, total}, false})
	}
	return dst
}

// piecesByRune splits s into pieces where each character for which isDelim
// is true is a match of its own.
func piecesByRune(dst []piece, s string, isDelim func(rune) bool) []piece {
	if s == "" {
		return append(dst, piece{span{0, 0}, false})
	}
	prev := 0
	for i, r := range s {
		if isDelim(r) {
			if i > prev {
				dst = append(dst, piece{span{prev, i}, false})
			}
			end := i + utf8.RuneLen(r)
			if r == utf8.RuneError {
				_, size := utf8.DecodeRuneInString(s[i:])
				end = i + size
			}
			dst = append(dst, piece{span{i, end}, true})
			prev = end
		}
	}
	if prev < len(s) {
		dst = append(dst, piece{span{prev, len(s)}, false})
	}
	return dst
}
