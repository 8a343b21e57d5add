// Package hf is an optional second tokenizer backend: Hugging Face's Rust
// tokenizers library through github.com/daulet/tokenizers (cgo). It is only
// compiled with the build tag hftokenizers and needs libtokenizers.a from
// that project on the linker path (see the README). The default build of
// lethe uses the pure-Go package data/tokenizer, which gives the same ids.
package hf
