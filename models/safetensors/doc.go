// Package safetensors reads and writes Hugging Face's safetensors format in
// pure Go, without GoMLX: single files, sharded checkpoint directories, and
// files byte-identical to those Python's safetensors writes.
//
// # Format
//
// A file is an 8-byte little-endian unsigned header length N, N bytes of
// UTF-8 JSON, then the data buffer:
//
//	{"__metadata__": {"format": "pt"},
//	 "model.norm.weight": {"dtype": "F32", "shape": [64], "data_offsets": [0, 256]}, ...}
//
// Offsets are relative to the first byte after the header. [Open] enforces
// the rules of the Rust crate (huggingface/safetensors, tensor.rs: read_metadata
// and Metadata::validate): N at most [MaxHeaderSize] and within the file; the
// header one JSON object, optionally padded with spaces; "__metadata__" null
// or an object of strings; every dtype known; shape dimensions non-negative
// integers; end-begin equal to the element count times the dtype size (whole
// bytes for the sub-byte F4/F6 dtypes); and the tensors, sorted by offset,
// tiling the data buffer exactly — no overlap, no gap, no trailing bytes. It
// also rejects what serde would silently accept: duplicate tensor names,
// duplicate fields, trailing non-space bytes. Every error names the file and
// the tensor or field, wraps [ErrFormat], and no input makes the reader
// panic (FuzzParseHeader).
//
// # Reading
//
// [Open] memory-maps the file (Linux, macOS, BSDs; elsewhere it reads with
// ReadAt), so opening costs the same for a 2 MB and a 200 GB file and tensors
// are paged in only when used. [File.Bytes] returns a zero-copy view;
// [File.Float32], [File.Float64], [File.Int64], [File.Int32] and [File.Bool]
// return converted copies. [OpenDir] opens a model directory, single-file or
// sharded, behind the same [Reader] API.
//
// # Writing
//
// [Write] orders tensors and formats the header as the Rust crate's
// serialiser does (see [Write] for the rules), so rewriting the tensors and
// metadata of a file that transformers' save_pretrained wrote reproduces it
// byte for byte. [WriteSharded] splits a checkpoint as save_pretrained does.
// Files are written to a temporary file, synced and renamed into place.
package safetensors
