package tokenizer

// Offset is a half-open byte range [Start, End) of the text a token came
// from. For a pair encoding the range refers to the text of the token's own
// sequence (see Encoding.SequenceIDs).
type Offset struct {
	Start, End int
}

// Encoding is the result of encoding one text or one pair of texts. All
// slices have the same length, one entry per token.
type Encoding struct {
	// IDs are the token ids, the input of a model.
	IDs []int
	// Tokens are the string forms of IDs, as the vocabulary spells them
	// (byte-level tokenizers show spaces as "Ġ", SentencePiece ones as "▁").
	Tokens []string
	// Offsets are byte ranges into the input text. Tokens that were added by
	// the post-processor (BOS, EOS, CLS, ...) have the empty range {0, 0}.
	Offsets []Offset
	// TypeIDs are the segment ids a post-processor assigned (0 for the first
	// sequence, usually 1 for the second).
	TypeIDs []int
	// SpecialTokensMask is 1 for tokens added by the post-processor and 0
	// for tokens that come from the text, special or not.
	SpecialTokensMask []int
	// AttentionMask is 1 for real tokens and 0 for padding.
	AttentionMask []int
	// SequenceIDs tells which input a token came from: 0 or 1, or -1 for
	// tokens added by the post-processor and for padding.
	SequenceIDs []int
}

// Len returns the number of tokens.
func (e *Encoding) Len() int { return len(e.IDs) }

// CharOffsets converts byte offsets into offsets counted in Unicode code
// points of the text, as the Python and Node bindings of Hugging Face
// tokenizers report them. For a pair encoding, pass both texts in order; each
// token is converted against the text of its own sequence.
func (e *Encoding) CharOffsets(texts ...string) []Offset {
	// index[k][b] is the code-point index of the character that holds byte b
	// of texts[k]; index[k][len] is the number of code points.
	index := make([][]int, len(texts))
	for k, t := range texts {
		idx := make([]int, len(t)+1)
		n := -1
		for b := 0; b < len(t); b++ {
			if t[b]&0xC0 != 0x80 {
				n++
			}
			idx[b] = max(n, 0)
		}
		idx[len(t)] = n + 1
		index[k] = idx
	}
	out := make([]Offset, len(e.Offsets))
	for i, o := range e.Offsets {
		seq := 0
		if i < len(e.SequenceIDs) && e.SequenceIDs[i] > 0 {
			seq = e.SequenceIDs[i]
		}
		if seq >= len(index) || o.Start < 0 || o.End < o.Start || o.End >= len(index[seq]) {
			out[i] = o
			continue
		}
		out[i] = Offset{index[seq][o.Start], index[seq][o.End]}
	}
	return out
}
