package decoding

import (
	"math/rand/v2"
	"testing"
)

// benchVocab is Llama 3's output size.
const benchVocab = 128256

// benchRow returns LLM-like logits: N(0, 2) noise, and when peaked a few
// dozen tokens 8 to 16 above it, as in a confident next-token distribution.
func benchRow(peaked bool) []float32 {
	rng := rand.New(rand.NewPCG(9, 9))
	row := make([]float32, benchVocab)
	for i := range row {
		row[i] = float32(rng.NormFloat64() * 2)
	}
	if peaked {
		for range 40 {
			row[rng.IntN(benchVocab)] = float32(8 + rng.Float64()*8)
		}
	}
	return row
}

// BenchmarkChain measures one decoding step on one 128k row: chain plus pick,
// including the copy of the row (BenchmarkCopyRow alone).
func BenchmarkChain(b *testing.B) {
	history := make([]int, 2048)
	for i := range history {
		history[i] = (i * 7919) % benchVocab
	}
	with := func(f func(*GenerationConfig)) GenerationConfig { c := Defaults(); f(&c); return c }
	for _, tc := range []struct {
		name   string
		cfg    GenerationConfig
		peaked bool
	}{
		{"greedy", Defaults(), true},
		{"llama3/T0.6-topk50-topp0.9", with(func(c *GenerationConfig) { c.DoSample, c.Temperature, c.TopP = true, 0.6, 0.9 }), true},
		{"qwen2.5/rep1.05-T0.7-topk20-topp0.8", with(func(c *GenerationConfig) {
			c.DoSample, c.RepetitionPenalty, c.Temperature, c.TopK, c.TopP = true, 1.05, 0.7, 20, 0.8
		}), true},
		{"topp0.9-no-topk/peaked", with(func(c *GenerationConfig) { c.DoSample, c.TopK, c.TopP = true, 0, 0.9 }), true},
		{"topp0.9-no-topk/flat", with(func(c *GenerationConfig) { c.DoSample, c.TopK, c.TopP = true, 0, 0.9 }), false},
		{"minp0.05-no-topk", with(func(c *GenerationConfig) { c.DoSample, c.TopK, c.MinP = true, 0, 0.05 }), true},
		{"sample-full-vocab", with(func(c *GenerationConfig) { c.DoSample, c.TopK = true, 0 }), true},
		{"typical0.9", with(func(c *GenerationConfig) { c.DoSample, c.TypicalP = true, 0.9 }), true},
	} {
		b.Run(tc.name, func(b *testing.B) {
			ch, err := NewChain(tc.cfg, benchVocab)
			if err != nil {
				b.Fatal(err)
			}
			st := NewSampler(tc.cfg, 1).Stream(0)
			src := benchRow(tc.peaked)
			row := make([]float32, benchVocab)
			for b.Loop() {
				copy(row, src)
				if err := ch.Process(row, history, 100); err != nil {
					b.Fatal(err)
				}
				if _, err := st.Next(row); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkProcessor measures single processors on a 128k row.
func BenchmarkProcessor(b *testing.B) {
	for _, tc := range []struct {
		name string
		p    Processor
	}{
		{"TopK50", TopK{K: 50}},
		{"TopK5000", TopK{K: 5000}},
		{"TopP0.9-dense", TopP{P: 0.9}},
		{"MinP0.05", MinP{P: 0.05}},
		{"Temperature", Temperature{T: 0.7}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			src := benchRow(true)
			row := make([]float32, benchVocab)
			for b.Loop() {
				copy(row, src)
				tc.p.Process(row, nil, 0)
			}
		})
	}
}

// BenchmarkCopyRow is the copy that the other benchmarks include.
func BenchmarkCopyRow(b *testing.B) {
	src := benchRow(true)
	row := make([]float32, benchVocab)
	for b.Loop() {
		copy(row, src)
	}
}
