package tokenizer

import (
	"path/filepath"
	"strings"
	"testing"
)

// devilLines returns The Devil's Dictionary (the shared speed corpus) line
// by line and its size in bytes.
func devilLines(b *testing.B) ([]string, int64) {
	b.Helper()
	data, err := readMaybeGzip(filepath.Join("testdata", "devil.dict.txt.gz"))
	if err != nil {
		b.Fatal(err)
	}
	lines := strings.Split(string(data), "\n")
	return lines, int64(len(data))
}

// resetCaches empties the word caches so that every benchmark iteration
// encodes the corpus as a first pass would.
func (t *Tokenizer) resetCaches() {
	switch m := t.model.(type) {
	case *bpe:
		m.cache = newWordCache(1 << 16)
	case *unigram:
		m.cache = newWordCache(1 << 16)
	}
	if t.fast != nil {
		t.fast.index.cache = newWordCache(1 << 16)
	}
}

// BenchmarkEncode measures one goroutine encoding the corpus line by line,
// with a cold word cache in every iteration. Reference (same machine): Hugging
// Face tokenizers through Node, Llama 3: 0.65 MB/s.
func BenchmarkEncode(b *testing.B) {
	for _, name := range []string{"llama3", "gpt2", "qwen3", "mistral", "bert-base-uncased"} {
		b.Run(name, func(b *testing.B) {
			tok := testTokenizer(b, name)
			lines, size := devilLines(b)
			b.SetBytes(size)
			b.ReportAllocs()
			for b.Loop() {
				b.StopTimer()
				tok.resetCaches()
				b.StartTimer()
				for _, l := range lines {
					if _, err := tok.Encode(l, false); err != nil {
						b.Fatal(err)
					}
				}
			}
		})
	}
}

// BenchmarkEncodeBatch measures EncodeBatch over all lines at once, with a
// cold cache in every iteration. Reference: Hugging Face encodeBatch through
// Node, Llama 3: 2.85 MB/s.
func BenchmarkEncodeBatch(b *testing.B) {
	for _, name := range []string{"llama3", "gpt2"} {
		b.Run(name, func(b *testing.B) {
			tok := testTokenizer(b, name)
			lines, size := devilLines(b)
			b.SetBytes(size)
			b.ReportAllocs()
			for b.Loop() {
				b.StopTimer()
				tok.resetCaches()
				b.StartTimer()
				if _, err := tok.EncodeBatch(lines, false); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkDecode measures decoding the corpus's encodings line by line.
func BenchmarkDecode(b *testing.B) {
	tok := testTokenizer(b, "llama3")
	lines, size := devilLines(b)
	encs, err := tok.EncodeBatch(lines, false)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(size)
	for b.Loop() {
		for _, e := range encs {
			if _, err := tok.Decode(e.IDs, false); err != nil {
				b.Fatal(err)
			}
		}
	}
}
