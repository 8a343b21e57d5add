package tokenizer

import (
	"encoding/json"
	"fmt"
	"hash/maphash"
	"math/rand/v2"
	"sync"
)

// model turns one pre-tokenized word into tokens.
type model interface {
	// tokenize appends the tokens of word to dst. Token offsets are byte
	// ranges of word. rng is non-nil only for BPE-dropout.
	tokenize(word string, dst []modelToken, drop *dropout) ([]modelToken, error)
	tokenToID(token string) (int, bool)
	idToToken(id int) (string, bool)
	// tokenValue is the string Hugging Face reports for a token of word:
	// the vocabulary's spelling, except for Unigram's unknown pieces.
	tokenValue(word string, tk modelToken) string
	// vocabSize is the number of entries of the model's vocabulary.
	vocabSize() int
	// maxID is the largest id of the model's vocabulary.
	maxID() int
}

// modelToken is one token produced by a model: its id and the byte range of
// the word it covers.
type modelToken struct {
	id         int
	start, end int
}

// dropout is the state of BPE-dropout for one encoding.
type dropout struct {
	p   float64
	rng *rand.Rand
}

// skip reports whether the next merge is dropped.
func (d *dropout) skip() bool { return d != nil && d.p > 0 && d.rng.Float64() < d.p }

func parseModel(raw json.RawMessage, path string) (model, error) {
	typ, err := componentType(raw, path)
	if err != nil {
		return nil, err
	}
	switch typ {
	case "BPE":
		return parseBPE(raw, path)
	case "WordPiece":
		return parseWordPiece(raw, path)
	case "Unigram":
		return parseUnigram(raw, path)
	case "":
		return nil, fmt.Errorf("%s: missing", path)
	}
	return nil, unsupported(path, typ, "BPE, Unigram, WordPiece")
}

// vocabulary maps tokens to ids and back.
type vocabulary struct {
	ids    map[string]int
	tokens []string // tokens[id]; "" where an id is unused
	used   []bool
}

func newVocabulary(m map[string]int, path string) (vocabulary, error) {
	v := vocabulary{ids: m}
	if m == nil {
		return v, fmt.Errorf("%s: missing", path)
	}
	maxID := -1
	for tok, id := range m {
		if id < 0 {
			return v, fmt.Errorf("%s: token %q has negative id %d", path, tok, id)
		}
		maxID = max(maxID, id)
	}
	if maxID > 16*len(m)+1024 {
		return v, fmt.Errorf("%s: ids are too sparse (largest %d for %d tokens)", path, maxID, len(m))
	}
	v.tokens = make([]string, maxID+1)
	v.used = make([]bool, maxID+1)
	for tok, id := range m {
		v.tokens[id] = tok
		v.used[id] = true
	}
	return v, nil
}

func (v *vocabulary) tokenToID(tok string) (int, bool) {
	id, ok := v.ids[tok]
	return id, ok
}

func (v *vocabulary) idToToken(id int) (string, bool) {
	if id < 0 || id >= len(v.tokens) || !v.used[id] {
		return "", false
	}
	return v.tokens[id], true
}

// byteIDs returns the ids of the "<0xXX>" tokens of s's bytes (byte
// fallback), or false if one is missing.
func (v *vocabulary) byteIDs(s string) ([]int, bool) {
	ids := make([]int, len(s))
	for k := 0; k < len(s); k++ {
		id, ok := v.ids[byteFallbackToken(s[k])]
		if !ok {
			return nil, false
		}
		ids[k] = id
	}
	return ids, true
}

func (v *vocabulary) tokenValue(_ string, tk modelToken) string {
	tok, _ := v.idToToken(tk.id)
	return tok
}

func (v *vocabulary) vocabSize() int { return len(v.ids) }
func (v *vocabulary) maxID() int     { return len(v.tokens) - 1 }

// wordCache remembers the tokens of frequent words. It is safe for
// concurrent use and stops growing at its capacity, as Hugging Face's does;
// it never changes results.
type wordCache struct {
	seed   maphash.Seed
	shards [16]cacheShard
	limit  int // entries per shard
}

type cacheShard struct {
	mu sync.RWMutex
	m  map[string][]modelToken
}

func newWordCache(capacity int) *wordCache {
	c := &wordCache{seed: maphash.MakeSeed(), limit: max(capacity/16, 1)}
	for i := range c.shards {
		c.shards[i].m = make(map[string][]modelToken)
	}
	return c
}

func (c *wordCache) shard(word string) *cacheShard {
	return &c.shards[maphash.String(c.seed, word)%uint64(len(c.shards))]
}

func (c *wordCache) get(word string) ([]modelToken, bool) {
	s := c.shard(word)
	s.mu.RLock()
	toks, ok := s.m[word]
	s.mu.RUnlock()
	return toks, ok
}

func (c *wordCache) put(word string, toks []modelToken) {
	s := c.shard(word)
	s.mu.Lock()
	if len(s.m) < c.limit {
		s.m[word] = toks
	}
	s.mu.Unlock()
}
