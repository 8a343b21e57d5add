package tokenizer

// Interface is what lethe's code needs from a tokenizer. *Tokenizer (pure
// Go) implements it, and so does hf.Tokenizer, Hugging Face's Rust library
// through cgo, built with the tag hftokenizers.
type Interface interface {
	// Encode tokenizes one text; addSpecialTokens runs the post-processor's
	// template (BOS, CLS/SEP, ...).
	Encode(text string, addSpecialTokens bool) (*Encoding, error)
	// EncodeBatch tokenizes texts in parallel, keeping their order.
	EncodeBatch(texts []string, addSpecialTokens bool) ([]*Encoding, error)
	// Decode turns ids back into text.
	Decode(ids []int, skipSpecialTokens bool) (string, error)
	// TokenToID and IDToToken look tokens up, added tokens included.
	TokenToID(token string) (int, bool)
	IDToToken(id int) (string, bool)
	// VocabSize is the number of distinct tokens, added tokens included.
	VocabSize() int
}

var _ Interface = (*Tokenizer)(nil)
