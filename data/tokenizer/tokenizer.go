package tokenizer

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
)

// Tokenizer is a loaded tokenizer.json. It is safe for concurrent use.
type Tokenizer struct {
	normalizer normalizer
	pre        preTokenizer
	model      model
	post       postProcessor
	decoder    decoder
	added      *addedVocab
	truncation *Truncation
	padding    *Padding
	config     *Config
	name       string

	// fast, when set, tokenizes untouched input text of a byte-level BPE
	// tokenizer without building normalized strings (see byteLevelPlan).
	fast *byteLevelPlan

	// warnings are the problems found while loading that did not stop it.
	warnings []string

	// dropoutCalls numbers the encodings made with the file's own BPE
	// dropout, so that their random draws are reproducible.
	dropoutCalls *atomic.Uint64
}

// Truncation is tokenizer.json's "truncation": encodings longer than
// MaxLength are cut.
type Truncation struct {
	MaxLength int `json:"max_length"`
	// Strategy is "LongestFirst", "OnlyFirst" or "OnlySecond".
	Strategy string `json:"strategy"`
	// Direction is "Right" (drop the end) or "Left" (drop the start).
	Direction string `json:"direction"`
	Stride    int    `json:"stride"`
}

// Padding is tokenizer.json's "padding".
type Padding struct {
	// Fixed pads to this length; 0 pads a batch to its longest encoding.
	Fixed int
	// Left pads at the start instead of the end.
	Left             bool
	PadToMultipleOf  int
	PadID, PadTypeID int
	PadToken         string
}

// Load reads a tokenizer. path is a tokenizer.json file (optionally
// gzip-compressed, *.json.gz) or a folder that holds one. The
// tokenizer_config.json beside it is read when present: for a file named
// X.tokenizer.json, X.tokenizer_config.json.
func Load(path string) (*Tokenizer, error) {
	file := path
	if st, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("load tokenizer: %w", err)
	} else if st.IsDir() {
		file = filepath.Join(path, "tokenizer.json")
		if _, err := os.Stat(file); errors.Is(err, os.ErrNotExist) {
			if _, err := os.Stat(file + ".gz"); err == nil {
				file += ".gz"
			} else {
				return nil, fmt.Errorf("load tokenizer: %s has no tokenizer.json", path)
			}
		}
	}
	data, err := readMaybeGzip(file)
	if err != nil {
		return nil, fmt.Errorf("load tokenizer: %w", err)
	}
	t, err := FromJSON(data, file)
	if err != nil {
		return nil, err
	}
	if cfgPath := configPathFor(file); cfgPath != "" {
		cfgData, err := readMaybeGzip(cfgPath)
		switch {
		case errors.Is(err, os.ErrNotExist):
		case err != nil:
			return nil, fmt.Errorf("load tokenizer config: %w", err)
		default:
			if t.config, err = ParseConfig(cfgData, cfgPath); err != nil {
				return nil, fmt.Errorf("load tokenizer config: %w", err)
			}
		}
	}
	return t, nil
}

// configPathFor returns where the tokenizer_config.json of a tokenizer file
// would be.
func configPathFor(file string) string {
	dir, base := filepath.Split(file)
	for _, suffix := range []string{"tokenizer.json.gz", "tokenizer.json"} {
		if strings.HasSuffix(base, suffix) {
			prefix := strings.TrimSuffix(base, suffix)
			for _, cand := range []string{prefix + "tokenizer_config.json", prefix + "tokenizer_config.json.gz"} {
				if _, err := os.Stat(filepath.Join(dir, cand)); err == nil {
					return filepath.Join(dir, cand)
				}
			}
			return filepath.Join(dir, prefix+"tokenizer_config.json")
		}
	}
	return ""
}

func readMaybeGzip(path string) ([]byte, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if !strings.HasSuffix(path, ".gz") {
		return data, nil
	}
	zr, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	out, err := io.ReadAll(zr)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return out, nil
}

// FromJSONGzip is FromJSON for gzip-compressed contents.
func FromJSONGzip(data []byte, name string) (*Tokenizer, error) {
	zr, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("load tokenizer %s: %w", name, err)
	}
	raw, err := io.ReadAll(zr)
	if err != nil {
		return nil, fmt.Errorf("load tokenizer %s: %w", name, err)
	}
	return FromJSON(raw, name)
}

// FromJSON parses the contents of a tokenizer.json; name is used in error
// messages.
func FromJSON(data []byte, name string) (*Tokenizer, error) {
	t, err := fromJSON(data)
	if err != nil {
		return nil, fmt.Errorf("load tokenizer %s: %w", name, err)
	}
	t.name = name
	return t, nil
}

func fromJSON(data []byte) (*Tokenizer, error) {
	var file map[string]json.RawMessage
	if err := json.Unmarshal(data, &file); err != nil {
		return nil, fmt.Errorf("not a tokenizer.json: %w", err)
	}
	known := map[string]bool{"version": true, "truncation": true, "padding": true, "added_tokens": true,
		"normalizer": true, "pre_tokenizer": true, "post_processor": true, "decoder": true, "model": true}
	for k := range file {
		if !known[k] {
			return nil, fmt.Errorf("unknown top-level field %q", k)
		}
	}
	if _, ok := file["model"]; !ok {
		return nil, errors.New("model: missing")
	}
	t := &Tokenizer{dropoutCalls: new(atomic.Uint64)}
	var err error
	if t.model, err = parseModel(file["model"], "model"); err != nil {
		return nil, err
	}
	if t.normalizer, err = parseNormalizer(file["normalizer"], "normalizer"); err != nil {
		return nil, err
	}
	if t.pre, err = parsePreTokenizer(file["pre_tokenizer"], "pre_tokenizer"); err != nil {
		return nil, err
	}
	if t.post, err = parsePostProcessor(file["post_processor"], "post_processor", t.model.tokenToID); err != nil {
		return nil, err
	}
	if t.decoder, err = parseDecoder(file["decoder"], "decoder"); err != nil {
		return nil, err
	}
	var added []AddedToken
	if v, ok := file["added_tokens"]; ok && !isNull(v) {
		if err := json.Unmarshal(v, &added); err != nil {
			return nil, fmt.Errorf("added_tokens: %w", err)
		}
	}
	added, t.warnings = assignAddedIDs(added, t.model)
	if t.added, err = newAddedVocab(added, t.normalizeString); err != nil {
		return nil, fmt.Errorf("added_tokens: %w", err)
	}
	t.fast = newByteLevelPlan(t)
	if v, ok := file["truncation"]; ok && !isNull(v) {
		if t.truncation, err = parseTruncation(v); err != nil {
			return nil, fmt.Errorf("truncation: %w", err)
		}
	}
	if v, ok := file["padding"]; ok && !isNull(v) {
		if t.padding, err = parsePadding(v); err != nil {
			return nil, fmt.Errorf("padding: %w", err)
		}
	}
	return t, nil
}

func parseTruncation(v json.RawMessage) (*Truncation, error) {
	tr := &Truncation{Strategy: "LongestFirst", Direction: "Right"}
	if err := json.Unmarshal(v, tr); err != nil {
		return nil, err
	}
	switch {
	case tr.Strategy != "LongestFirst" && tr.Strategy != "OnlyFirst" && tr.Strategy != "OnlySecond":
		return nil, fmt.Errorf("strategy: unknown value %q", tr.Strategy)
	case tr.Direction != "Right" && tr.Direction != "Left":
		return nil, fmt.Errorf("direction: unknown value %q", tr.Direction)
	case tr.Stride != 0:
		return nil, fmt.Errorf("stride: %d is not supported (lethe does not return overflowing tokens)", tr.Stride)
	case tr.MaxLength < 0:
		return nil, fmt.Errorf("max_length: %d is negative", tr.MaxLength)
	}
	return tr, nil
}

func parsePadding(v json.RawMessage) (*Padding, error) {
	var c struct {
		Strategy        json.RawMessage `json:"strategy"`
		Direction       string          `json:"direction"`
		PadToMultipleOf *int            `json:"pad_to_multiple_of"`
		PadID           int             `json:"pad_id"`
		PadTypeID       int             `json:"pad_type_id"`
		PadToken        string          `json:"pad_token"`
	}
	if err := json.Unmarshal(v, &c); err != nil {
		return nil, err
	}
	p := &Padding{PadID: c.PadID, PadTypeID: c.PadTypeID, PadToken: c.PadToken}
	switch c.Direction {
	case "", "Right":
	case "Left":
		p.Left = true
	default:
		return nil, fmt.Errorf("direction: unknown value %q", c.Direction)
	}
	if c.PadToMultipleOf != nil {
		p.PadToMultipleOf = *c.PadToMultipleOf
	}
	var s string
	if err := json.Unmarshal(c.Strategy, &s); err == nil {
		if s != "BatchLongest" {
			return nil, fmt.Errorf("strategy: unknown value %q", s)
		}
		return p, nil
	}
	var fixed struct {
		Fixed *int `json:"Fixed"`
	}
	if err := json.Unmarshal(c.Strategy, &fixed); err != nil || fixed.Fixed == nil {
		return nil, fmt.Errorf("strategy: want \"BatchLongest\" or {\"Fixed\": n}, got %s", c.Strategy)
	}
	p.Fixed = *fixed.Fixed
	return p, nil
}

// assignAddedIDs gives the added tokens their ids as Hugging Face does when
// it loads a file: the "id" written in the file is not used. A token whose
// content is in the model's vocabulary (or added before) takes that id; the
// others get the next free id after the vocabulary and the added ids so far,
// in file order. Tokens with empty content are dropped. A written id that
// differs from the assigned one gives a warning, as in Hugging Face.
func assignAddedIDs(tokens []AddedToken, m model) ([]AddedToken, []string) {
	var warnings []string
	out := make([]AddedToken, 0, len(tokens))
	maxID := -1
	size := m.vocabSize()
	index := make(map[string]int, len(tokens)) // content -> position in out
	for _, a := range tokens {
		if a.Content == "" {
			continue
		}
		if at, seen := index[a.Content]; seen {
			// The same content again: it keeps its id and takes the new
			// flags, as Hugging Face's added_tokens_map_r entry does.
			a.ID = out[at].ID
			out[at] = a
			continue
		}
		id, ok := m.tokenToID(a.Content)
		if !ok {
			switch {
			case maxID < 0:
				id = size
			case maxID >= size || size == 0:
				id = maxID + 1
			default:
				id = size
			}
		}
		if id != a.ID {
			warnings = append(warnings, fmt.Sprintf("added token %q was expected to have id %d but was given id %d", a.Content, a.ID, id))
		}
		a.ID = id
		maxID = max(maxID, id)
		index[a.Content] = len(out)
		out = append(out, a)
	}
	return out, warnings
}

// Warnings returns the problems found while loading that did not stop it
// (for example added tokens whose written id is not the one they get).
func (t *Tokenizer) Warnings() []string { return t.warnings }

// Config returns the parsed tokenizer_config.json, or nil if there was none.
func (t *Tokenizer) Config() *Config { return t.config }

// Name returns the file the tokenizer was loaded from.
func (t *Tokenizer) Name() string { return t.name }

// WithPadding returns a copy of t that pads as p says (nil: no padding).
func (t *Tokenizer) WithPadding(p *Padding) *Tokenizer {
	c := *t
	c.padding = p
	return &c
}

// WithTruncation returns a copy of t that truncates as tr says (nil: no
// truncation).
func (t *Tokenizer) WithTruncation(tr *Truncation) (*Tokenizer, error) {
	if tr != nil {
		raw, _ := json.Marshal(tr)
		var err error
		if tr, err = parseTruncation(raw); err != nil {
			return nil, fmt.Errorf("truncation: %w", err)
		}
	}
	c := *t
	c.truncation = tr
	return &c, nil
}

// normalizeString runs the normalizer on s alone.
func (t *Tokenizer) normalizeString(s string) (string, error) {
	if t.normalizer == nil {
		return s, nil
	}
	n := newNormString(s, 0, len(s))
	if err := t.normalizer.normalize(&n); err != nil {
		return "", err
	}
	return n.s, nil
}

// Encode tokenizes text. With addSpecialTokens the post-processor adds the
// model's special tokens (BOS, CLS/SEP, ...). Special tokens written in the
// text are always recognised.
func (t *Tokenizer) Encode(text string, addSpecialTokens bool) (*Encoding, error) {
	return t.encode(text, nil, addSpecialTokens, t.fileDropout())
}

// EncodePair tokenizes a pair of texts (question and context, say), as the
// post-processor's pair template says.
func (t *Tokenizer) EncodePair(a, b string, addSpecialTokens bool) (*Encoding, error) {
	return t.encode(a, &b, addSpecialTokens, t.fileDropout())
}

// EncodeDropout tokenizes text with BPE-dropout (Provilkov et al., 2020):
// every merge is skipped with probability p, drawn from a generator seeded
// with seed, so the same (text, p, seed) always gives the same tokens.
// p = 0 gives exactly Encode's result; for any p the tokens decode to text.
func (t *Tokenizer) EncodeDropout(text string, addSpecialTokens bool, p float64, seed uint64) (*Encoding, error) {
	d, err := t.newDropout(p, seed)
	if err != nil {
		return nil, err
	}
	return t.encode(text, nil, addSpecialTokens, d)
}

func (t *Tokenizer) newDropout(p float64, seed uint64) (*dropout, error) {
	if p < 0 || p > 1 {
		return nil, fmt.Errorf("BPE-dropout probability %g is outside [0, 1]", p)
	}
	if _, ok := t.model.(*bpe); !ok && p > 0 {
		return nil, errors.New("BPE-dropout needs a BPE model")
	}
	if p == 0 {
		return nil, nil
	}
	return &dropout{p: p, rng: rand.New(rand.NewPCG(seed, 0x6c65746865))}, nil
}

// fileDropout returns the dropout of the model's own "dropout" field, with a
// generator seeded by the number of such encodings so far.
func (t *Tokenizer) fileDropout() *dropout {
	m, ok := t.model.(*bpe)
	if !ok || m.dropout == 0 {
		return nil
	}
	n := t.dropoutCalls.Add(1)
	return &dropout{p: m.dropout, rng: rand.New(rand.NewPCG(n, 0x6c65746865))}
}

// EncodeBatch tokenizes texts in parallel; the result is in input order.
func (t *Tokenizer) EncodeBatch(texts []string, addSpecialTokens bool) ([]*Encoding, error) {
	drops := make([]*dropout, len(texts))
	for i := range drops {
		drops[i] = t.fileDropout()
	}
	return t.encodeBatch(texts, addSpecialTokens, drops)
}

// EncodeBatchDropout is EncodeBatch with BPE-dropout; text i uses a
// generator seeded from (seed, i), so results do not depend on scheduling.
func (t *Tokenizer) EncodeBatchDropout(texts []string, addSpecialTokens bool, p float64, seed uint64) ([]*Encoding, error) {
	drops := make([]*dropout, len(texts))
	for i := range drops {
		d, err := t.newDropout(p, seed^(uint64(i)+1)*0x9E3779B97F4A7C15)
		if err != nil {
			return nil, err
		}
		drops[i] = d
	}
	return t.encodeBatch(texts, addSpecialTokens, drops)
}

func (t *Tokenizer) encodeBatch(texts []string, add bool, drops []*dropout) ([]*Encoding, error) {
	out := make([]*Encoding, len(texts))
	errs := make([]error, len(texts))
	workers := min(runtime.GOMAXPROCS(0), len(texts))
	var next atomic.Int64
	var wg sync.WaitGroup
	const chunk = 16
	noPad := t.WithPadding(nil)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				start := int(next.Add(chunk)) - chunk
				if start >= len(texts) {
					return
				}
				for i := start; i < min(start+chunk, len(texts)); i++ {
					out[i], errs[i] = noPad.encode(texts[i], nil, add, drops[i])
				}
			}
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			return nil, fmt.Errorf("text %d: %w", i, err)
		}
	}
	if t.padding != nil {
		t.padBatch(out)
	}
	return out, nil
}

// encode runs the whole pipeline on one text or a pair.
func (t *Tokenizer) encode(a string, b *string, add bool, drop *dropout) (*Encoding, error) {
	encA, err := t.encodeSequence(a, 0, drop)
	if err != nil {
		return nil, err
	}
	encs := []*Encoding{encA}
	if b != nil {
		encB, err := t.encodeSequence(*b, 1, drop)
		if err != nil {
			return nil, err
		}
		encs = append(encs, encB)
	}
	if t.truncation != nil {
		if err := t.truncate(encs, add); err != nil {
			return nil, err
		}
	}
	if t.post != nil {
		encs = t.post.process(encs, add)
	}
	enc := mergeEncodings(encs)
	if t.padding != nil {
		t.padBatch([]*Encoding{enc})
	}
	return enc, nil
}

// split is one piece of the text on its way through the pipeline: either an
// added token or text still to be tokenized.
type split struct {
	n     normString
	added *AddedToken
}

// encodeSequence tokenizes one text: added tokens, normalizer,
// pre-tokenizer, model.
func (t *Tokenizer) encodeSequence(text string, seq int, drop *dropout) (*Encoding, error) {
	// 1. Added tokens matched on the input.
	var bufA, bufB [8]split
	whole := newNormString(text, 0, len(text))
	splits := appendAddedSplits(bufA[:0], whole, &t.added.raw)
	// 2. Normalize the rest, then match the normalized added tokens.
	next := bufB[:0]
	for _, s := range splits {
		if s.added != nil {
			next = append(next, s)
			continue
		}
		if t.normalizer != nil {
			if err := t.normalizer.normalize(&s.n); err != nil {
				return nil, err
			}
		}
		next = appendAddedSplits(next, s.n, &t.added.norm)
	}
	guess := len(text)/4 + 4
	enc := &Encoding{
		IDs:     make([]int, 0, guess),
		Tokens:  make([]string, 0, guess),
		Offsets: make([]Offset, 0, guess),
	}
	var words []normString
	var toks []modelToken
	for _, s := range next {
		if s.added != nil {
			sp := s.n.inputRange(0, len(s.n.s))
			enc.append(s.added.ID, s.n.s, Offset{sp.start, sp.end})
			continue
		}
		if t.fast != nil && s.n.align == nil {
			// The piece is untouched input (no normalizer, or one that
			// left it as it was): take the fast byte-level path.
			if err := t.fast.encode(enc, s.n.s, s.n.base, drop); err != nil {
				return nil, err
			}
			continue
		}
		// 3. Pre-tokenize into words.
		words = words[:0]
		if t.pre != nil {
			var err error
			if words, err = t.pre.split(s.n, words); err != nil {
				return nil, err
			}
		} else if s.n.s != "" {
			words = append(words, s.n)
		}
		// 4. The model tokenizes every word.
		for _, w := range words {
			toks = toks[:0]
			var err error
			if toks, err = t.model.tokenize(w.s, toks, drop); err != nil {
				return nil, err
			}
			for _, tk := range toks {
				tokStr := t.model.tokenValue(w.s, tk)
				sp := w.inputRange(tk.start, tk.end)
				enc.append(tk.id, tokStr, Offset{sp.start, sp.end})
			}
		}
	}
	// One allocation for the four per-token int slices.
	n := len(enc.IDs)
	ints := make([]int, 4*n)
	enc.TypeIDs, enc.SpecialTokensMask = ints[:n:n], ints[n:2*n:2*n]
	enc.AttentionMask, enc.SequenceIDs = ints[2*n:3*n:3*n], ints[3*n:]
	for i := 0; i < n; i++ {
		enc.TypeIDs[i] = seq
		enc.AttentionMask[i] = 1
		enc.SequenceIDs[i] = seq
	}
	return enc, nil
}

// append adds a token; encodeSequence fills the other fields at the end.
func (e *Encoding) append(id int, tok string, off Offset) {
	e.IDs = append(e.IDs, id)
	e.Tokens = append(e.Tokens, tok)
	e.Offsets = append(e.Offsets, off)
}

// appendAddedSplits splits n around the added tokens of trie and appends the
// non-empty parts.
func appendAddedSplits(dst []split, n normString, trie *tokenTrie) []split {
	prev := 0
	for _, m := range findMatches(n.s, trie) {
		if m.start > prev {
			dst = append(dst, split{n: n.slice(prev, m.start)})
		}
		dst = append(dst, split{n: n.slice(m.start, m.end), added: m.token})
		prev = m.end
	}
	if prev < len(n.s) {
		dst = append(dst, split{n: n.slice(prev, len(n.s))})
	}
	return dst
}

// truncate cuts the sequences so that, with the special tokens the
// post-processor will add, they fit in MaxLength. It follows Hugging Face's
// truncate_encodings, errors included.
func (t *Tokenizer) truncate(encs []*Encoding, add bool) error {
	tr := t.truncation
	left := tr.Direction == "Left"
	maxLen := tr.MaxLength
	if add && t.post != nil {
		maxLen = max(maxLen-t.post.addedTokens(len(encs) == 2), 0)
	}
	if maxLen == 0 {
		for _, e := range encs {
			e.truncate(0, left)
		}
		return nil
	}
	total := 0
	for _, e := range encs {
		total += e.Len()
	}
	if total <= maxLen {
		return nil
	}
	excess := total - maxLen
	switch tr.Strategy {
	case "LongestFirst":
		if len(encs) == 1 {
			encs[0].truncate(maxLen, left)
			return nil
		}
		// As Hugging Face's truncate_encodings: n1 is the shorter sequence
		// (the first on a tie). Either only the longer one is cut, or both:
		// the shorter to max/2, the longer to max/2 + max%2.
		n1, n2 := encs[0].Len(), encs[1].Len()
		swap := n1 > n2
		if swap {
			n1, n2 = n2, n1
		}
		if n1 > maxLen {
			n2 = n1
		} else {
			n2 = max(n1, maxLen-n1)
		}
		if n1+n2 > maxLen {
			n1 = maxLen / 2
			n2 = n1 + maxLen%2
		}
		if swap {
			n1, n2 = n2, n1
		}
		encs[0].truncate(n1, left)
		encs[1].truncate(n2, left)
		return nil
	default: // OnlyFirst, OnlySecond
		target := 0
		if tr.Strategy == "OnlySecond" {
			if len(encs) < 2 {
				return errors.New("truncation: strategy OnlySecond needs a pair of texts")
			}
			target = 1
		}
		n := encs[target].Len()
		if n <= excess {
			return fmt.Errorf("truncation: the sequence to truncate (%d tokens) is too short to fit max_length %d", n, tr.MaxLength)
		}
		encs[target].truncate(n-excess, left)
		return nil
	}
}

// truncate keeps n tokens, the first n or (left) the last n.
func (e *Encoding) truncate(n int, left bool) {
	if n >= e.Len() {
		return
	}
	a, b := 0, n
	if left {
		a, b = e.Len()-n, e.Len()
	}
	e.IDs, e.Tokens, e.Offsets = e.IDs[a:b], e.Tokens[a:b], e.Offsets[a:b]
	e.TypeIDs, e.SpecialTokensMask = e.TypeIDs[a:b], e.SpecialTokensMask[a:b]
	e.AttentionMask, e.SequenceIDs = e.AttentionMask[a:b], e.SequenceIDs[a:b]
}

// padBatch pads encodings to a common length as t.padding says.
func (t *Tokenizer) padBatch(encs []*Encoding) {
	p := t.padding
	target := p.Fixed
	if target == 0 {
		for _, e := range encs {
			target = max(target, e.Len())
		}
	}
	if m := p.PadToMultipleOf; m > 0 && target%m != 0 {
		target += m - target%m
	}
	for _, e := range encs {
		n := target - e.Len()
		if n <= 0 {
			continue
		}
		pad := func(xs []int, v int) []int {
			fill := make([]int, n)
			for i := range fill {
				fill[i] = v
			}
			if p.Left {
				return append(fill, xs...)
			}
			return append(xs, fill...)
		}
		toks := make([]string, n)
		offs := make([]Offset, n)
		for i := range toks {
			toks[i] = p.PadToken
		}
		if p.Left {
			e.Tokens, e.Offsets = append(toks, e.Tokens...), append(offs, e.Offsets...)
		} else {
			e.Tokens, e.Offsets = append(e.Tokens, toks...), append(e.Offsets, offs...)
		}
		e.IDs = pad(e.IDs, p.PadID)
		e.TypeIDs = pad(e.TypeIDs, p.PadTypeID)
		e.SpecialTokensMask = pad(e.SpecialTokensMask, 1)
		e.AttentionMask = pad(e.AttentionMask, 0)
		e.SequenceIDs = pad(e.SequenceIDs, -1)
	}
}

// Decode turns ids back into text. With skipSpecialTokens, special added
// tokens (BOS, EOS, chat markers...) are left out. As in Hugging Face
// tokenizers, ids outside the vocabulary are skipped.
func (t *Tokenizer) Decode(ids []int, skipSpecialTokens bool) (string, error) {
	tokens := make([]string, 0, len(ids))
	for _, id := range ids {
		tok, ok := t.IDToToken(id)
		// As in Hugging Face, special tokens are skipped by content.
		if !ok || skipSpecialTokens && t.added.skipOnDecode(tok) {
			continue
		}
		tokens = append(tokens, tok)
	}
	if t.decoder == nil {
		return strings.Join(tokens, " "), nil
	}
	out, err := t.decoder.decodeChain(tokens)
	if err != nil {
		return "", fmt.Errorf("decode: %w", err)
	}
	return strings.Join(out, ""), nil
}

// TokenToID returns the id of a token (added tokens first, then the model's
// vocabulary).
func (t *Tokenizer) TokenToID(token string) (int, bool) {
	if id, ok := t.added.byText[token]; ok {
		return id, true
	}
	return t.model.tokenToID(token)
}

// IDToToken returns the token of an id.
func (t *Tokenizer) IDToToken(id int) (string, bool) {
	if a, ok := t.added.byID[id]; ok {
		return a.Content, true
	}
	return t.model.idToToken(id)
}

// VocabSize returns the number of distinct tokens, added tokens included.
func (t *Tokenizer) VocabSize() int {
	n := t.model.vocabSize()
	for _, a := range t.added.tokens {
		if _, inModel := t.model.tokenToID(a.Content); !inModel {
			n++
		}
	}
	return n
}

// AddedTokens returns the added tokens in id order.
func (t *Tokenizer) AddedTokens() []AddedToken {
	out := append([]AddedToken(nil), t.added.tokens...)
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// IsSpecial reports whether id is a special added token.
func (t *Tokenizer) IsSpecial(id int) bool { return t.added.special[id] }
