package tokenizer

import (
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// nfcForm is the one normalizer the fast path accepts (Qwen uses it).
const nfcForm = norm.NFC

// byteLevelPlan is the fast path of byte-level BPE tokenizers (GPT-2,
// Llama 3, Qwen): when a piece of text reaches the pre-tokenizer unchanged,
// the words are found with the split pattern on the input itself and the
// model merges raw bytes, so no byte-level string or alignment table is
// built. It gives the same tokens and offsets as the general path, which
// tests check on every golden string.
type byteLevelPlan struct {
	model *bpe
	index *byteLevelIndex
	// split finds the words; matches and the gaps between them are words.
	split pattern
}

// newByteLevelPlan returns a plan when the tokenizer has the shape of the
// common byte-level tokenizers: no normalizer or NFC, then either
// ByteLevel(use_regex) or Split(pattern, Isolated) + ByteLevel, neither
// adding a prefix space, and a BPE model whose alphabet covers every byte.
func newByteLevelPlan(t *Tokenizer) *byteLevelPlan {
	m, ok := t.model.(*bpe)
	if !ok {
		return nil
	}
	switch n := t.normalizer.(type) {
	case nil:
	case unicodeNormalizer:
		if n.form != nfcForm {
			return nil
		}
	default:
		return nil
	}
	var split pattern
	switch p := t.pre.(type) {
	case byteLevelPreTokenizer:
		if p.addPrefixSpace || !p.useRegex {
			return nil
		}
		split = &regexPattern{source: gpt2Pattern, fast: splitGPT2}
	case sequencePreTokenizer:
		if len(p) != 2 {
			return nil
		}
		sp, ok1 := p[0].(splitPreTokenizer)
		bl, ok2 := p[1].(byteLevelPreTokenizer)
		if !ok1 || !ok2 || sp.invert || sp.behavior != SplitIsolated || bl.addPrefixSpace || bl.useRegex {
			return nil
		}
		split = sp.pattern
	default:
		return nil
	}
	index := m.newByteLevelIndex()
	if index == nil {
		return nil
	}
	return &byteLevelPlan{model: m, index: index, split: split}
}

// encode appends the tokens of text, found at byte base of the input, to enc.
func (p *byteLevelPlan) encode(enc *Encoding, text string, base int, drop *dropout) error {
	if !utf8.ValidString(text) {
		// Offsets of invalid bytes follow the general path's rules.
		return p.encodeSlow(enc, text, base, drop)
	}
	matches, err := p.split.findAll(text, make([]span, 0, len(text)/4+1))
	if err != nil {
		return err
	}
	toks := make([]modelToken, 0, 16)
	word := func(a, b int) {
		toks = p.model.tokenizeBytes(p.index, text[a:b], toks[:0], drop)
		for _, tk := range toks {
			tokStr, _ := p.model.idToToken(tk.id)
			start, end := a+tk.start, a+tk.end
			// A token that starts or ends inside a character covers all
			// of it, as the byte-level alignment does.
			for start > 0 && isContinuation(text[start]) {
				start--
			}
			for end < len(text) && isContinuation(text[end]) {
				end++
			}
			enc.append(tk.id, tokStr, Offset{base + start, base + end})
		}
	}
	prev := 0
	for _, m := range matches {
		if m.start > prev {
			word(prev, m.start)
		}
		if m.end > m.start {
			word(m.start, m.end)
		}
		prev = m.end
	}
	if prev < len(text) {
		word(prev, len(text))
	}
	return nil
}

func isContinuation(b byte) bool { return b&0xC0 == 0x80 }

// encodeSlow runs the general pre-tokenizer and model on text.
func (p *byteLevelPlan) encodeSlow(enc *Encoding, text string, base int, drop *dropout) error {
	n := newNormString(text, 0, len(text))
	n.base = base
	n.orig = span{base, base + len(text)}
	pieces, _ := p.split.findAll(text, nil)
	words := n.splitBy(nil, piecesFromMatches(nil, pieces, len(text)), SplitIsolated)
	var toks []modelToken
	for i := range words {
		byteLevelTransform(&words[i])
		w := words[i]
		var err error
		if toks, err = p.model.tokenize(w.s, toks[:0], drop); err != nil {
			return err
		}
		for _, tk := range toks {
			tokStr, _ := p.model.idToToken(tk.id)
			sp := w.inputRange(tk.start, tk.end)
			enc.append(tk.id, tokStr, Offset{sp.start, sp.end})
		}
	}
	return nil
}
