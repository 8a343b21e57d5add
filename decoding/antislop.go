package decoding

import (
	"errors"
	"fmt"
	"slices"
	"sort"
	"unicode"
	"unicode/utf8"
)

// Antislop finds banned phrases in generated text, for the backtracking
// sampler of Antislop (Paech et al. 2025, "Antislop: A Comprehensive
// Framework for Identifying and Eliminating Repetitive Patterns in Language
// Models"). Its reference implementation (github.com/sam-paech/antislop-vllm:
// validators/slop_phrase_validator.py, utils/slop_helpers.py
// detect_disallowed_sequence, core/sampler.py _perform_backtrack) works as
// follows, and Antislop with Backtrack and Bans does the same on token ids:
//
//  1. After new tokens are appended, the generated text (decoded) is
//     searched for the phrases of the banlist: the earliest occurrence
//     wins, the longest phrase among those starting there.
//  2. The token holding the occurrence's first character is found; the
//     generation is truncated before it (backtracking), and that token is
//     banned at that position: the position is resampled with its logit at
//     -Inf. Bans accumulate per position, so a phrase cannot come back
//     through a first token tried before; bans at later positions are
//     forgotten, as that continuation is discarded.
//  3. When no token is left to try (here: when the bans would mask every
//     token of the row), the occurrence is accepted and not reported again.
//
// The reference matches lowercased phrases in lowercased text (FoldCase) and
// only as whole words (WholeWords): a phrase that begins (ends) with a word
// character, a Unicode letter, number or mark, must not have a word character
// right before (after) it, so "cat" does not match in "cation". The end of
// the text counts as a boundary, as in the reference: with the banned phrase
// "tap" the text "a tap" is a hit as soon as " tap" is generated, even if
// "estry" would have followed. (Antislop's first, transformers-based sampler
// matched token sequences of a few case and leading-space variants of each
// phrase instead; this is the text matching of the paper's vLLM sampler.) The
// reference's resampling policy at a backtracked position (it inverts the
// probabilities of the remaining candidates while min-p is active, and can
// relax the sampling filters) is the caller's: Bans only masks.
//
// Offsets come from decoding prefixes of the ids, so decode must be
// prefix-stable: decode(ids[:k]) must be a prefix of decode(ids) (true of
// byte-level BPE and SentencePiece decoders up to a character split across
// tokens). An Antislop is immutable and safe for concurrent use if decode is.
type Antislop struct {
	decode  func(ids []int) string
	opts    AntislopOptions
	phrases []string
	m       phraseMatcher
}

// AntislopOptions tune the matching; the reference uses FoldCase and
// WholeWords.
type AntislopOptions struct {
	// FoldCase matches case-insensitively, comparing the simple lowercase
	// mapping of every character (unicode.ToLower; Python's str.lower,
	// which the reference uses, differs for a few characters such as 'İ').
	FoldCase bool
	// WholeWords rejects occurrences inside a longer word (see Antislop).
	WholeWords bool
	// Window, when > 0, limits the search to the new tokens and the Window
	// tokens before them, so each check decodes a bounded number of tokens;
	// a phrase longer than that is missed, and the window's first token is
	// taken as a word boundary on its left, as the reference's character
	// window does. 0 decodes all the ids every time.
	Window int
}

// SlopHit is a banned phrase found by Antislop.Check.
type SlopHit struct {
	// Phrase is the banned phrase, as given to NewAntislop.
	Phrase string
	// Text is the occurrence as decoded (its case may differ from Phrase).
	Text string
	// Pos is the index, in the ids given to Check, of the token holding
	// the occurrence's first byte: backtrack to ids[:Pos] and resample
	// position Pos.
	Pos int
	// Token is ids[Pos], the token to ban at Pos.
	Token int
}

// NewAntislop builds the matcher for phrases; decode turns token ids into
// text (a tokenizer's decode, with the same options as the text shown to
// users). Phrases must not be empty; duplicates (after case folding, with
// FoldCase) are kept once.
func NewAntislop(phrases []string, decode func(ids []int) string, opts AntislopOptions) (*Antislop, error) {
	if decode == nil {
		return nil, errors.New("decoding: antislop needs a decode function")
	}
	if opts.Window < 0 {
		return nil, fmt.Errorf("decoding: antislop window must be >= 0, got %d", opts.Window)
	}
	keys := make([]string, len(phrases))
	for i, p := range phrases {
		if p == "" {
			return nil, fmt.Errorf("decoding: antislop phrase %d is empty", i)
		}
		keys[i] = p
		if opts.FoldCase {
			keys[i], _ = foldCase(p, false)
		}
	}
	return &Antislop{
		decode:  decode,
		opts:    opts,
		phrases: slices.Clone(phrases),
		m:       newPhraseMatcher(keys),
	}, nil
}

// Phrases returns the banned phrases as given.
func (a *Antislop) Phrases() []string { return slices.Clone(a.phrases) }

// Check reports whether the last id of ids, the generated ids so far (not
// the prompt), completes a banned phrase: it is CheckSince(ids, len(ids)-1).
func (a *Antislop) Check(ids []int) (SlopHit, bool) { return a.CheckSince(ids, len(ids)-1) }

// CheckSince returns the earliest banned phrase (the longest among those
// starting at the same byte) that reaches into the text of ids[since:], the
// ids appended since the last check: an occurrence entirely inside the text
// of ids[:since] was reported (or accepted) by an earlier check. since <= 0
// searches all of ids. ids are the generated ids only: the prompt is not
// searched and cannot be backtracked into.
func (a *Antislop) CheckSince(ids []int, since int) (SlopHit, bool) {
	if len(ids) == 0 || since >= len(ids) {
		return SlopHit{}, false
	}
	since = max(since, 0)
	from := 0
	if a.opts.Window > 0 {
		from = max(0, since-a.opts.Window)
	}
	win := ids[from:]
	text := a.decode(win)
	newStart := 0
	if since > from {
		newStart = min(len(a.decode(ids[from:since])), len(text))
	}
	hay, orig := text, []int32(nil)
	if a.opts.FoldCase {
		hay, orig = foldCase(text, true)
	}
	toText := func(off int) int {
		if orig == nil {
			return off
		}
		return int(orig[off])
	}
	bestS, bestE, bestK := -1, -1, -1
	a.m.scan(hay, func(end, k int) {
		s, e := toText(end-a.m.lens[k]), toText(end)
		if e <= newStart || (bestS >= 0 && (s > bestS || s == bestS && e <= bestE)) {
			return
		}
		if a.opts.WholeWords && !wholeWord(text, s, e) {
			return
		}
		bestS, bestE, bestK = s, e, k
	})
	if bestK < 0 {
		return SlopHit{}, false
	}
	// The token holding byte bestS: the first k whose prefix ids[from:][:k+1]
	// decodes past it.
	j := sort.Search(len(win), func(k int) bool { return len(a.decode(win[:k+1])) > bestS })
	j = min(j, len(win)-1)
	return SlopHit{
		Phrase: a.phrases[bestK],
		Text:   text[bestS:bestE],
		Pos:    from + j,
		Token:  win[j],
	}, true
}

// Backtrack runs one step of the Antislop sampler on the generated ids: when
// Check finds a banned phrase, it forgets the bans after the hit's position,
// bans the hit's token at its position, and returns ids[:Pos] (the same
// backing array), with found true; the caller then resamples position Pos
// with bans applied (Bans.Apply or Bans.Process). When nothing is found, or
// when the hit's token was already banned at that position (the bans could
// not remove it: every other token was masked, see Bans.Apply), the
// occurrence is accepted and ids come back unchanged with found false.
func (a *Antislop) Backtrack(ids []int, bans *Bans) (kept []int, hit SlopHit, found bool) {
	hit, found = a.Check(ids)
	if !found || bans.Has(hit.Pos, hit.Token) {
		return ids, hit, false
	}
	bans.Forget(hit.Pos)
	bans.Add(hit.Pos, hit.Token)
	return ids[:hit.Pos], hit, true
}

// Bans are the tokens banned at each position of the generated ids, the
// Antislop sampler's per-position record (the reference's
// _tried_alternatives). The zero value (nil) is ready for Add through a
// pointer. Not safe for concurrent use.
type Bans map[int][]int

// Add bans id at position pos and reports whether it was not banned there
// already.
func (b *Bans) Add(pos, id int) bool {
	if b.Has(pos, id) {
		return false
	}
	if *b == nil {
		*b = Bans{}
	}
	(*b)[pos] = append((*b)[pos], id)
	return true
}

// Has reports whether id is banned at pos.
func (b Bans) Has(pos, id int) bool { return slices.Contains(b[pos], id) }

// Forget drops the bans at positions after pos, as the reference does when
// it backtracks to pos: the continuation they belonged to is discarded.
func (b Bans) Forget(pos int) {
	for p := range b {
		if p > pos {
			delete(b, p)
		}
	}
}

// Apply sets the logits of the ids banned at pos to -Inf, unless that would
// leave no finite logit: then the row is left as it is and the banned token
// may come back (Antislop.Backtrack then accepts the phrase, as the
// reference suppresses a violation it cannot backtrack out of). Ids outside
// the row are ignored.
func (b Bans) Apply(logits []float32, pos int) {
	ids := b[pos]
	if len(ids) == 0 {
		return
	}
	left := false
	for i, x := range logits {
		if x != negInf && !slices.Contains(ids, i) {
			left = true
			break
		}
	}
	if left {
		maskIDs(logits, ids)
	}
}

// Process is Apply at position step, the index among the generated ids of
// the token being chosen, so Bans can run in a processor list (see
// Processor; history is not used).
func (b Bans) Process(logits []float32, _ []int, step int) { b.Apply(logits, step) }

// wholeWord reports whether text[s:e] stands as a whole word, as the
// reference's detect_disallowed_sequence checks: when it begins with a word
// character, the character before it (if any) must not be one, and the same
// at its end. The end of text counts as a boundary.
func wholeWord(text string, s, e int) bool {
	if s >= e {
		return true
	}
	first, _ := utf8.DecodeRuneInString(text[s:e])
	if isWordRune(first) && s > 0 {
		if r, _ := utf8.DecodeLastRuneInString(text[:s]); isWordRune(r) {
			return false
		}
	}
	last, _ := utf8.DecodeLastRuneInString(text[s:e])
	if isWordRune(last) && e < len(text) {
		if r, _ := utf8.DecodeRuneInString(text[e:]); isWordRune(r) {
			return false
		}
	}
	return true
}

// isWordRune is the reference's _is_word_char: Unicode general category L,
// N or M.
func isWordRune(r rune) bool { return unicode.IsLetter(r) || unicode.IsNumber(r) || unicode.IsMark(r) }

// foldCase lowercases s rune by rune (unicode.ToLower), keeping invalid
// bytes as they are. With offsets, orig[i] is the byte offset in s of the
// rune that produced byte i of the result, and orig[len(result)] = len(s).
func foldCase(s string, offsets bool) (string, []int32) {
	out := make([]byte, 0, len(s))
	var orig []int32
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		n := len(out)
		if r == utf8.RuneError && size == 1 {
			out = append(out, s[i])
		} else {
			out = utf8.AppendRune(out, unicode.ToLower(r))
		}
		if offsets {
			for range len(out) - n {
				orig = append(orig, int32(i))
			}
		}
		i += size
	}
	if offsets {
		orig = append(orig, int32(len(s)))
	}
	return string(out), orig
}

// phraseMatcher is an Aho-Corasick automaton over the bytes of the phrases:
// one pass over a text reports every occurrence of every phrase.
type phraseMatcher struct {
	edges [][]acEdge // per node, sorted by byte
	fail  []int32    // longest proper suffix that is a node
	out   []int32    // phrase ending at the node, or -1
	dict  []int32    // nearest node on the fail chain with out >= 0, or -1
	lens  []int      // byte length of each phrase
}

type acEdge struct {
	b  byte
	to int32
}

func newPhraseMatcher(phrases []string) phraseMatcher {
	m := phraseMatcher{edges: [][]acEdge{nil}, out: []int32{-1}, lens: make([]int, len(phrases))}
	for k, p := range phrases {
		m.lens[k] = len(p)
		node := int32(0)
		for i := 0; i < len(p); i++ {
			next := m.step(node, p[i])
			if next < 0 {
				next = int32(len(m.edges))
				m.edges = append(m.edges, nil)
				m.out = append(m.out, -1)
				e := m.edges[node]
				at, _ := slices.BinarySearchFunc(e, p[i], func(x acEdge, b byte) int { return int(x.b) - int(b) })
				m.edges[node] = slices.Insert(e, at, acEdge{p[i], next})
			}
			node = next
		}
		if m.out[node] < 0 {
			m.out[node] = int32(k) // a duplicate keeps the first phrase
		}
	}
	m.fail = make([]int32, len(m.edges))
	m.dict = make([]int32, len(m.edges))
	m.dict[0] = -1
	queue := []int32{0}
	for len(queue) > 0 {
		u := queue[0]
		queue = queue[1:]
		for _, e := range m.edges[u] {
			v := e.to
			if u != 0 {
				f := m.fail[u]
				for f != 0 && m.step(f, e.b) < 0 {
					f = m.fail[f]
				}
				if t := m.step(f, e.b); t >= 0 {
					m.fail[v] = t
				}
			}
			if f := m.fail[v]; m.out[f] >= 0 {
				m.dict[v] = f
			} else {
				m.dict[v] = m.dict[f]
			}
			queue = append(queue, v)
		}
	}
	return m
}

// step follows the edge of node labelled b, or returns -1.
func (m *phraseMatcher) step(node int32, b byte) int32 {
	e := m.edges[node]
	if i, ok := slices.BinarySearchFunc(e, b, func(x acEdge, b byte) int { return int(x.b) - int(b) }); ok {
		return e[i].to
	}
	return -1
}

// scan calls found(end, k) for every occurrence of phrase k in text ending at
// byte offset end (exclusive).
func (m *phraseMatcher) scan(text string, found func(end, k int)) {
	node := int32(0)
	for i := 0; i < len(text); i++ {
		c := text[i]
		for node != 0 && m.step(node, c) < 0 {
			node = m.fail[node]
		}
		if t := m.step(node, c); t >= 0 {
			node = t
		}
		for n := node; n > 0; n = m.dict[n] {
			if m.out[n] >= 0 {
				found(i+1, int(m.out[n]))
			}
		}
	}
}
