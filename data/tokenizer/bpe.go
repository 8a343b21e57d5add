package tokenizer

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"unicode/utf8"
)

// bpe is the byte-pair-encoding model (GPT-2, Llama, Qwen, Mistral, ...).
type bpe struct {
	vocabulary
	// merges maps a pair of ids to its rank and the id of the merged token.
	merges map[uint64]bpeMerge
	// charIDs caches the ids of single-character tokens (the BPE alphabet)
	// when no prefix or suffix decorates them.
	charIDs map[rune]int

	unk                  string // "" when there is no unknown token
	continuingPrefix     string
	endOfWordSuffix      string
	fuseUnk, byteFallbck bool
	ignoreMerges         bool
	dropout              float64 // the "dropout" field of the file

	cache *wordCache
}

type bpeMerge struct {
	rank  int32
	newID int32
}

func pairKey(a, b int) uint64 { return uint64(uint32(a))<<32 | uint64(uint32(b)) }

func parseBPE(raw json.RawMessage, path string) (*bpe, error) {
	var c struct {
		Dropout                 *float64          `json:"dropout"`
		UnkToken                *string           `json:"unk_token"`
		ContinuingSubwordPrefix *string           `json:"continuing_subword_prefix"`
		EndOfWordSuffix         *string           `json:"end_of_word_suffix"`
		FuseUnk                 bool              `json:"fuse_unk"`
		ByteFallback            bool              `json:"byte_fallback"`
		IgnoreMerges            bool              `json:"ignore_merges"`
		Vocab                   map[string]int    `json:"vocab"`
		Merges                  []json.RawMessage `json:"merges"`
	}
	if err := decodeFields(raw, &c, path); err != nil {
		return nil, err
	}
	voc, err := newVocabulary(c.Vocab, path+".vocab")
	if err != nil {
		return nil, err
	}
	m := &bpe{
		vocabulary:   voc,
		merges:       make(map[uint64]bpeMerge, len(c.Merges)),
		fuseUnk:      c.FuseUnk,
		byteFallbck:  c.ByteFallback,
		ignoreMerges: c.IgnoreMerges,
		cache:        newWordCache(1 << 16),
	}
	if c.Dropout != nil {
		if *c.Dropout < 0 || *c.Dropout > 1 {
			return nil, fmt.Errorf("%s.dropout: must be in [0, 1], got %g", path, *c.Dropout)
		}
		m.dropout = *c.Dropout
	}
	if c.UnkToken != nil {
		m.unk = *c.UnkToken
	}
	if c.ContinuingSubwordPrefix != nil {
		m.continuingPrefix = *c.ContinuingSubwordPrefix
	}
	if c.EndOfWordSuffix != nil {
		m.endOfWordSuffix = *c.EndOfWordSuffix
	}
	for rank, rm := range c.Merges {
		a, b, err := parseMerge(rm)
		if err != nil {
			return nil, fmt.Errorf("%s.merges[%d]: %w", path, rank, err)
		}
		aID, ok := m.ids[a]
		if !ok {
			return nil, fmt.Errorf("%s.merges[%d]: token %q is not in the vocabulary", path, rank, a)
		}
		bID, ok := m.ids[b]
		if !ok {
			return nil, fmt.Errorf("%s.merges[%d]: token %q is not in the vocabulary", path, rank, b)
		}
		bTail := b
		if len(m.continuingPrefix) > 0 {
			bTail = strings.TrimPrefix(b, m.continuingPrefix)
		}
		newID, ok := m.ids[a+bTail]
		if !ok {
			return nil, fmt.Errorf("%s.merges[%d]: merged token %q is not in the vocabulary", path, rank, a+bTail)
		}
		m.merges[pairKey(aID, bID)] = bpeMerge{rank: int32(rank), newID: int32(newID)}
	}
	if m.continuingPrefix == "" && m.endOfWordSuffix == "" {
		m.charIDs = make(map[rune]int)
		for tok, id := range m.ids {
			if r, size := utf8.DecodeRuneInString(tok); size == len(tok) && r != utf8.RuneError {
				m.charIDs[r] = id
			}
		}
	}
	return m, nil
}

// parseMerge reads a merge written as "a b" or as ["a", "b"].
func parseMerge(raw json.RawMessage) (string, string, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) > 0 && raw[0] == '[' {
		var pair []string
		if err := json.Unmarshal(raw, &pair); err != nil {
			return "", "", err
		}
		if len(pair) != 2 {
			return "", "", fmt.Errorf("want a pair of tokens, got %d", len(pair))
		}
		return pair[0], pair[1], nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", "", err
	}
	a, b, ok := strings.Cut(s, " ")
	if !ok || strings.Contains(b, " ") {
		return "", "", fmt.Errorf("merge %q: want two tokens separated by one space", s)
	}
	return a, b, nil
}

// symbol is one token of a word being merged.
type symbol struct {
	id         int
	start, end int // byte range in the word
	prev, next int // neighbours, -1 at the ends
}

// mergeCand is a possible merge of symbols[pos] with the next symbol.
type mergeCand struct {
	rank  int32
	newID int32
	pos   int32
}

func (m *bpe) tokenize(word string, dst []modelToken, drop *dropout) ([]modelToken, error) {
	if word == "" {
		return dst, nil
	}
	deterministic := drop == nil || drop.p == 0
	if deterministic {
		if m.ignoreMerges {
			if id, ok := m.ids[word]; ok {
				return append(dst, modelToken{id, 0, len(word)}), nil
			}
		}
		if toks, ok := m.cache.get(word); ok {
			return append(dst, toks...), nil
		}
	}
	syms, err := m.initialSymbols(word)
	if err != nil {
		return dst, err
	}
	start := len(dst)
	dst = m.merge(syms, dst, drop)
	if deterministic {
		m.cache.put(strings.Clone(word), append([]modelToken(nil), dst[start:]...))
	}
	return dst, nil
}

// byteLevelIndex lets a byte-level BPE model tokenize raw bytes directly,
// skipping the byte-to-character rewrite: the tokens of raw word w are
// those of its byte-level form, with ranges counted in bytes of w.
type byteLevelIndex struct {
	byteIDs [256]int
	// rawIDs maps the raw bytes of every byte-level token to its id; only
	// built for ignore_merges, which looks whole words up.
	rawIDs map[string]int
	cache  *wordCache
}

// newByteLevelIndex returns nil unless every byte has its byte-level
// character in the vocabulary, undecorated.
func (m *bpe) newByteLevelIndex() *byteLevelIndex {
	if m.charIDs == nil {
		return nil
	}
	x := &byteLevelIndex{cache: newWordCache(1 << 16)}
	for b := 0; b < 256; b++ {
		id, ok := m.charIDs[byteToRune[b]]
		if !ok {
			return nil
		}
		x.byteIDs[b] = id
	}
	if m.ignoreMerges {
		x.rawIDs = make(map[string]int, len(m.ids))
		var buf []byte
	tokens:
		for tok, id := range m.ids {
			buf = buf[:0]
			for _, r := range tok {
				b, ok := runeToByte[r]
				if !ok {
					continue tokens
				}
				buf = append(buf, b)
			}
			x.rawIDs[string(buf)] = id
		}
	}
	return x
}

// tokenizeBytes is tokenize for the raw bytes of word (see byteLevelIndex).
func (m *bpe) tokenizeBytes(x *byteLevelIndex, word string, dst []modelToken, drop *dropout) []modelToken {
	if word == "" {
		return dst
	}
	deterministic := drop == nil || drop.p == 0
	if deterministic {
		if x.rawIDs != nil {
			if id, ok := x.rawIDs[word]; ok {
				return append(dst, modelToken{id, 0, len(word)})
			}
		}
		if toks, ok := x.cache.get(word); ok {
			return append(dst, toks...)
		}
	}
	syms := make([]symbol, len(word))
	for i := 0; i < len(word); i++ {
		syms[i] = symbol{id: x.byteIDs[word[i]], start: i, end: i + 1, prev: i - 1, next: i + 1}
	}
	syms[len(syms)-1].next = -1
	start := len(dst)
	dst = m.merge(syms, dst, drop)
	if deterministic {
		x.cache.put(strings.Clone(word), append([]modelToken(nil), dst[start:]...))
	}
	return dst
}

// merge applies the merges to syms and appends the resulting tokens to dst.
func (m *bpe) merge(syms []symbol, dst []modelToken, drop *dropout) []modelToken {
	if (drop == nil || drop.p == 0) && len(syms) <= linearMergeMax {
		return m.mergeLinear(syms, dst)
	}
	syms = m.mergeAll(syms, drop)
	for i := 0; i >= 0 && i < len(syms); i = syms[i].next {
		if syms[i].id >= 0 {
			dst = append(dst, modelToken{syms[i].id, syms[i].start, syms[i].end})
		}
	}
	return dst
}

// linearMergeMax is the longest word merged by mergeLinear; longer words use
// the heap of mergeAll.
const linearMergeMax = 128

// noMerge marks a pair without a merge in mergeLinear.
const noMerge = int32(1<<31 - 1)

// mergeLinear is mergeAll without dropout for short words: it keeps the rank
// of every adjacent pair in an array and merges the lowest (leftmost first)
// until none is left. Both orders are the same: lowest rank, then leftmost.
func (m *bpe) mergeLinear(syms []symbol, dst []modelToken) []modelToken {
	n := len(syms)
	var rankBuf [linearMergeMax]int32
	var newBuf [linearMergeMax]int32
	ranks, newIDs := rankBuf[:n], newBuf[:n]
	pair := func(i int) {
		if i+1 >= n {
			ranks[i] = noMerge
			return
		}
		if mg, ok := m.merges[pairKey(syms[i].id, syms[i+1].id)]; ok {
			ranks[i], newIDs[i] = mg.rank, mg.newID
		} else {
			ranks[i] = noMerge
		}
	}
	for i := 0; i < n; i++ {
		pair(i)
	}
	for n > 1 {
		best := -1
		bestRank := noMerge
		for i := 0; i < n-1; i++ {
			if ranks[i] < bestRank {
				best, bestRank = i, ranks[i]
			}
		}
		if best < 0 {
			break
		}
		syms[best].id = int(newIDs[best])
		syms[best].end = syms[best+1].end
		copy(syms[best+1:n], syms[best+2:n])
		copy(ranks[best+1:n], ranks[best+2:n])
		copy(newIDs[best+1:n], newIDs[best+2:n])
		n--
		ranks, newIDs = ranks[:n], newIDs[:n]
		if best > 0 {
			pair(best - 1)
		}
		pair(best)
	}
	for i := 0; i < n; i++ {
		dst = append(dst, modelToken{syms[i].id, syms[i].start, syms[i].end})
	}
	return dst
}

// initialSymbols splits word into characters (bytes for byte fallback),
// looking each up in the vocabulary, as Hugging Face's merge_word does.
// Like Hugging Face, it reports symbol ranges as running sums of their
// lengths: characters dropped for want of an unknown token shift the ranges
// of what follows.
func (m *bpe) initialSymbols(word string) ([]symbol, error) {
	syms := make([]symbol, 0, len(word))
	add := func(id, start, end int) {
		syms = append(syms, symbol{id: id, start: start, end: end})
	}
	unkID, hasUnk := -1, false
	if m.unk != "" {
		unkID, hasUnk = m.ids[m.unk]
	}
	// pending is an unknown run waiting to be emitted (fused or not).
	pendingStart, pendingEnd := -1, -1
	flush := func() {
		if pendingStart >= 0 {
			add(unkID, pendingStart, pendingEnd)
			pendingStart = -1
		}
	}
	for i := 0; i < len(word); {
		r, size := utf8.DecodeRuneInString(word[i:])
		end := i + size
		id, ok := -1, false
		if m.charIDs != nil && r != utf8.RuneError {
			id, ok = m.charIDs[r]
		} else {
			s := word[i:end]
			if i > 0 && m.continuingPrefix != "" {
				s = m.continuingPrefix + s
			}
			if end == len(word) && m.endOfWordSuffix != "" {
				s += m.endOfWordSuffix
			}
			id, ok = m.ids[s]
		}
		if ok {
			flush()
			add(id, i, end)
			i = end
			continue
		}
		if m.byteFallbck {
			if ids, ok := m.byteIDs(word[i:end]); ok {
				// As in Hugging Face, a pending unknown run is not flushed
				// before byte tokens.
				for k, bid := range ids {
					add(bid, i+k, i+k+1)
				}
				i = end
				continue
			}
		}
		if m.unk != "" {
			if !hasUnk {
				return nil, fmt.Errorf("unk token %q is not in the vocabulary", m.unk)
			}
			switch {
			case pendingStart >= 0 && m.fuseUnk:
				pendingEnd = end
			default:
				flush()
				pendingStart, pendingEnd = i, end
			}
		}
		i = end
	}
	flush()
	pos := 0
	for k := range syms {
		n := syms[k].end - syms[k].start
		syms[k].start, syms[k].end = pos, pos+n
		pos += n
		syms[k].prev, syms[k].next = k-1, k+1
	}
	if len(syms) > 0 {
		syms[len(syms)-1].next = -1
	}
	return syms, nil
}

const hexDigits = "0123456789ABCDEF"

// byteFallbackToken spells byte b as SentencePiece does: "<0x0A>".
func byteFallbackToken(b byte) string {
	return string([]byte{'<', '0', 'x', hexDigits[b>>4], hexDigits[b&15], '>'})
}

// mergeAll applies merges by increasing rank (leftmost first among equal
// ranks) until none applies. With dropout each candidate merge is skipped
// with probability p; skipped candidates come back after the next merge, and
// merging stops when every remaining candidate was skipped.
func (m *bpe) mergeAll(syms []symbol, drop *dropout) []symbol {
	if len(syms) < 2 {
		return syms
	}
	h := mergeHeap(make([]mergeCand, 0, len(syms)))
	for i := 0; i+1 < len(syms); i++ {
		if mg, ok := m.merges[pairKey(syms[i].id, syms[i+1].id)]; ok {
			h.push(mergeCand{mg.rank, mg.newID, int32(i)})
		}
	}
	var skipped []mergeCand
	for len(h) > 0 {
		top := h.pop()
		if drop.skip() {
			skipped = append(skipped, top)
			continue
		}
		for _, c := range skipped {
			h.push(c)
		}
		skipped = skipped[:0]
		pos := int(top.pos)
		cur := &syms[pos]
		if cur.id < 0 || cur.next < 0 {
			continue
		}
		right := syms[cur.next]
		// Skip stale candidates: the pair must still be what was merged.
		if mg, ok := m.merges[pairKey(cur.id, right.id)]; !ok || mg.newID != top.newID {
			continue
		}
		cur.id = int(top.newID)
		cur.end = right.end
		syms[cur.next].id = -1
		cur.next = right.next
		if right.next >= 0 {
			syms[right.next].prev = pos
		}
		if cur.prev >= 0 {
			if mg, ok := m.merges[pairKey(syms[cur.prev].id, cur.id)]; ok {
				h.push(mergeCand{mg.rank, mg.newID, int32(cur.prev)})
			}
		}
		if cur.next >= 0 {
			if mg, ok := m.merges[pairKey(cur.id, syms[cur.next].id)]; ok {
				h.push(mergeCand{mg.rank, mg.newID, int32(pos)})
			}
		}
	}
	return syms
}

// mergeHeap is a binary min-heap of candidates ordered by (rank, pos).
type mergeHeap []mergeCand

func (h mergeHeap) less(i, j int) bool {
	if h[i].rank != h[j].rank {
		return h[i].rank < h[j].rank
	}
	return h[i].pos < h[j].pos
}

func (h *mergeHeap) push(c mergeCand) {
	*h = append(*h, c)
	s := *h
	for i := len(s) - 1; i > 0; {
		p := (i - 1) / 2
		if !s.less(i, p) {
			break
		}
		s[i], s[p] = s[p], s[i]
		i = p
	}
}

func (h *mergeHeap) pop() mergeCand {
	s := *h
	top := s[0]
	last := len(s) - 1
	s[0] = s[last]
	s = s[:last]
	for i := 0; ; {
		l, r, small := 2*i+1, 2*i+2, i
		if l < len(s) && s.less(l, small) {
			small = l
		}
		if r < len(s) && s.less(r, small) {
			small = r
		}
		if small == i {
			break
		}
		s[i], s[small] = s[small], s[i]
		i = small
	}
	*h = s
	return top
}
