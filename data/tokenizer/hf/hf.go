//go:build hftokenizers

package hf

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sync"

	rust "github.com/daulet/tokenizers"

	"github.com/lethe-ml/lethe/data/tokenizer"
)

// Tokenizer encodes and decodes with Hugging Face's Rust library. Token
// lookups (TokenToID, IDToToken), which the binding does not offer, use
// lethe's reading of the same file. It is safe for concurrent use.
type Tokenizer struct {
	rust  *rust.Tokenizer
	vocab *tokenizer.Tokenizer
}

var _ tokenizer.Interface = (*Tokenizer)(nil)

// Load reads a tokenizer.json file or a folder holding one.
func Load(path string) (*Tokenizer, error) {
	file := path
	if st, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("load tokenizer: %w", err)
	} else if st.IsDir() {
		file = filepath.Join(path, "tokenizer.json")
	}
	vocab, err := tokenizer.Load(file)
	if err != nil {
		return nil, err
	}
	rt, err := rust.FromFile(file)
	if err != nil {
		return nil, fmt.Errorf("load tokenizer %s with the Rust library: %w", file, err)
	}
	t := &Tokenizer{rust: rt, vocab: vocab}
	runtime.AddCleanup(t, func(r *rust.Tokenizer) { r.Close() }, rt)
	return t, nil
}

// Encode tokenizes text.
func (t *Tokenizer) Encode(text string, addSpecialTokens bool) (*tokenizer.Encoding, error) {
	e := t.rust.EncodeWithOptions(text, addSpecialTokens, rust.WithReturnAllAttributes())
	n := len(e.IDs)
	out := &tokenizer.Encoding{
		IDs:               make([]int, n),
		Tokens:            e.Tokens,
		Offsets:           make([]tokenizer.Offset, n),
		TypeIDs:           make([]int, n),
		SpecialTokensMask: make([]int, n),
		AttentionMask:     make([]int, n),
		SequenceIDs:       make([]int, n),
	}
	if out.Tokens == nil {
		out.Tokens = make([]string, n)
	}
	for i := 0; i < n; i++ {
		out.IDs[i] = int(e.IDs[i])
		if i < len(e.Offsets) {
			out.Offsets[i] = tokenizer.Offset{Start: int(e.Offsets[i][0]), End: int(e.Offsets[i][1])}
		}
		if i < len(e.TypeIDs) {
			out.TypeIDs[i] = int(e.TypeIDs[i])
		}
		if i < len(e.SpecialTokensMask) {
			out.SpecialTokensMask[i] = int(e.SpecialTokensMask[i])
			if out.SpecialTokensMask[i] == 1 {
				out.SequenceIDs[i] = -1
			}
		}
		if i < len(e.AttentionMask) {
			out.AttentionMask[i] = int(e.AttentionMask[i])
		}
	}
	return out, nil
}

// EncodeBatch tokenizes texts in parallel, keeping their order.
func (t *Tokenizer) EncodeBatch(texts []string, addSpecialTokens bool) ([]*tokenizer.Encoding, error) {
	out := make([]*tokenizer.Encoding, len(texts))
	var wg sync.WaitGroup
	workers := min(runtime.GOMAXPROCS(0), len(texts))
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < len(texts); i += workers {
				out[i], _ = t.Encode(texts[i], addSpecialTokens)
			}
		}()
	}
	wg.Wait()
	return out, nil
}

// Decode turns ids back into text.
func (t *Tokenizer) Decode(ids []int, skipSpecialTokens bool) (string, error) {
	u := make([]uint32, len(ids))
	for i, id := range ids {
		if id < 0 || id > 1<<32-1 {
			return "", fmt.Errorf("decode: id %d out of range", id)
		}
		u[i] = uint32(id)
	}
	return t.rust.Decode(u, skipSpecialTokens), nil
}

// TokenToID looks a token up.
func (t *Tokenizer) TokenToID(token string) (int, bool) { return t.vocab.TokenToID(token) }

// IDToToken looks an id up.
func (t *Tokenizer) IDToToken(id int) (string, bool) { return t.vocab.IDToToken(id) }

// VocabSize returns the number of tokens, added tokens included.
func (t *Tokenizer) VocabSize() int { return int(t.rust.VocabSize()) }
