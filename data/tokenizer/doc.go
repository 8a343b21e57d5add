// Package tokenizer implements Hugging Face's tokenizer.json format in pure
// Go: normalizers, pre-tokenizers, the BPE, WordPiece and Unigram models,
// added and special tokens, post-processors and decoders. For every supported
// component it gives the same ids as the Rust library behind transformers
// (tokenizers 0.23); a component it does not support is an error that names
// it.
//
// Load reads a tokenizer.json (and tokenizer_config.json when it sits beside
// it); Encode, EncodeBatch and Decode are the everyday calls. EncodeDropout
// implements BPE-dropout (Provilkov et al., 2020) for subword regularisation.
package tokenizer
