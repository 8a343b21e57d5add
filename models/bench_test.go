package models

import (
	"context"
	"testing"

	"github.com/lethe-ml/lethe/decoding"
)

// BenchmarkDecodeTiny times greedy generation on the tiny benchmark model
// (2 layers, hidden 256, vocab 32000) on the Go backend, compiled graphs
// reused: 1 × 128 prompt, 32 new tokens per iteration. `lethe bench`
// reports the full table.
func BenchmarkDecodeTiny(b *testing.B) {
	cfg, err := BenchConfig("tiny")
	if err != nil {
		b.Fatal(err)
	}
	m, err := New(cfg, LoadOptions{}, 1)
	if err != nil {
		b.Fatal(err)
	}
	gen := NewGenerator(m, testBackend(b))
	prompt := make([]int, 128)
	for i := range prompt {
		prompt[i] = 3 + i*17%31000
	}
	gc := decoding.Defaults()
	gc.MaxNewTokens, gc.MinNewTokens, gc.EOSTokenIDs = 32, 32, []int{0}
	for b.Loop() {
		if _, err := gen.Generate(context.Background(), [][]int{prompt}, GenerateOptions{Config: gc}); err != nil {
			b.Fatal(err)
		}
	}
}
