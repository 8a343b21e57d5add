package models

import (
	"context"
	"fmt"
	"time"

	"github.com/gomlx/compute"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"

	"github.com/lethe-ml/lethe/decoding"
)

// BenchConfig returns the configuration of a named benchmark model (random
// weights; the shapes of bench/torch/llama_bench.py):
//
//	tiny     Llama, 2 layers, hidden 256, 8 heads (4 KV), intermediate 688, vocab 32000
//	small    Llama, 2 layers, hidden 128, 4 heads (2 KV), intermediate 512, vocab 2048 (~1.0M parameters)
//	smollm2  SmolLM2-135M: 30 layers, hidden 576, 9 heads (3 KV), intermediate 1536, vocab 49152, tied
func BenchConfig(name string) (*Config, error) {
	var js string
	switch name {
	case "tiny":
		js = `{"model_type": "llama", "vocab_size": 32000, "hidden_size": 256, "intermediate_size": 688,
			"num_hidden_layers": 2, "num_attention_heads": 8, "num_key_value_heads": 4, "rms_norm_eps": 1e-5,
			"rope_theta": 10000.0, "max_position_embeddings": 4096, "tie_word_embeddings": false}`
	case "small":
		js = `{"model_type": "llama", "vocab_size": 2048, "hidden_size": 128, "intermediate_size": 512,
			"num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2, "rms_norm_eps": 1e-5,
			"rope_theta": 10000.0, "max_position_embeddings": 4096, "tie_word_embeddings": false}`
	case "smollm2":
		js = `{"model_type": "llama", "vocab_size": 49152, "hidden_size": 576, "intermediate_size": 1536,
			"num_hidden_layers": 30, "num_attention_heads": 9, "num_key_value_heads": 3, "rms_norm_eps": 1e-5,
			"rope_theta": 100000.0, "max_position_embeddings": 8192, "tie_word_embeddings": true}`
	default:
		return nil, fmt.Errorf("unknown benchmark model %q (want tiny, small or smollm2)", name)
	}
	return ParseConfig([]byte(js))
}

// BenchOptions configure Bench.
type BenchOptions struct {
	Batch, PromptLen, NewTokens int
	// Repeats is how many timed runs to take the best of [3].
	Repeats int
	// NoCache also times decoding without the KV cache (a full forward over
	// the whole sequence per token).
	NoCache bool
}

// BenchResult holds throughputs in tokens per second. Definitions follow
// bench/torch/llama_bench.py: prefill = B·T / prompt pass; decode = B·(N-1)
// / the N-1 single-token steps; generate = B·N / (prompt pass + steps).
type BenchResult struct {
	Batch     int     `json:"batch"`
	PromptLen int     `json:"prompt_len"`
	NewTokens int     `json:"new_tokens"`
	Prefill   float64 `json:"prefill_tokens_per_s"`
	// Forward is B·T / one forward over the prompt giving the logits of
	// every position (what a plain transformers forward computes, and what
	// llama_bench.py calls prefill); Prefill computes the last position's
	// logits only, as generation does.
	Forward          float64 `json:"forward_tokens_per_s"`
	Decode           float64 `json:"decode_tokens_per_s"`
	Generate         float64 `json:"generate_tokens_per_s"`
	DecodeNoCache    float64 `json:"decode_no_cache_tokens_per_s,omitempty"`
	FirstCallSeconds float64 `json:"first_call_s"`
}

// Bench measures generation throughput of m on backend (greedy decoding,
// end-of-sequence suppressed so every run has the same length).
func Bench(ctx context.Context, m *Model, backend compute.Backend, opts BenchOptions) (BenchResult, error) {
	if opts.Repeats <= 0 {
		opts.Repeats = 3
	}
	res := BenchResult{Batch: opts.Batch, PromptLen: opts.PromptLen, NewTokens: opts.NewTokens}
	prompts := make([][]int, opts.Batch)
	for i := range prompts {
		prompts[i] = make([]int, opts.PromptLen)
		for j := range prompts[i] {
			prompts[i][j] = 3 + (i*131+j*17)%(m.Config.VocabSize-3)
		}
	}
	cfg := decoding.Defaults()
	cfg.MaxNewTokens, cfg.MinNewTokens = opts.NewTokens, opts.NewTokens
	cfg.EOSTokenIDs = []int{0}
	gen := NewGenerator(m, backend)
	run := func() (prefill, steps time.Duration, err error) {
		start := time.Now()
		var first time.Time
		_, err = gen.Generate(ctx, prompts, GenerateOptions{Config: cfg, OnStep: func(step int, _ []int, _ []bool) error {
			if step == 0 {
				first = time.Now()
			}
			return nil
		}})
		end := time.Now()
		return first.Sub(start), end.Sub(first), err
	}
	t0 := time.Now()
	if _, _, err := run(); err != nil { // compiles both graphs
		return res, err
	}
	res.FirstCallSeconds = time.Since(t0).Seconds()
	bestPrefill, bestSteps := time.Duration(1<<62), time.Duration(1<<62)
	for range opts.Repeats {
		p, s, err := run()
		if err != nil {
			return res, err
		}
		bestPrefill, bestSteps = min(bestPrefill, p), min(bestSteps, s)
	}
	B, T, N := float64(opts.Batch), float64(opts.PromptLen), float64(opts.NewTokens)
	res.Prefill = B * T / bestPrefill.Seconds()
	if opts.NewTokens > 1 {
		res.Decode = B * (N - 1) / bestSteps.Seconds()
	}
	res.Generate = B * N / (bestPrefill + bestSteps).Seconds()
	fwd, err := benchForward(m, backend, prompts, opts.Repeats)
	if err != nil {
		return res, err
	}
	res.Forward = fwd
	if opts.NoCache {
		tps, err := benchNoCache(ctx, m, backend, prompts, opts.NewTokens)
		if err != nil {
			return res, err
		}
		res.DecodeNoCache = tps
	}
	return res, nil
}

// benchNoCache decodes by running the whole sequence through the model for
// every new token, as a decoder without a cache does: one compiled graph,
// the sequence left-padded to its final length (positions counted from the
// first real token), logits of the last position only.
func benchNoCache(ctx context.Context, m *Model, backend compute.Backend, prompts [][]int, newTokens int) (float64, error) {
	B, T := len(prompts), len(prompts[0])
	S := T + newTokens
	exec, err := model.NewExec(backend, m.Store, func(_ *model.Scope, ids, pos, mask *Node) *Node {
		return m.Forward(Inputs{IDs: ids, Positions: pos, Mask: mask}, Options{LastTokenOnly: true}).Logits
	})
	if err != nil {
		return 0, err
	}
	ids := make([]int32, B*S)
	pos := make([]int32, B*S)
	mask := make([]int32, B*S)
	// step n runs the sequence of length n, right-aligned in S slots.
	step := func(n int) error {
		for i, p := range prompts {
			for j := range S {
				k := j - (S - n) // index in the sequence, negative in the padding
				ids[i*S+j], pos[i*S+j], mask[i*S+j] = 0, 1, 0
				if k >= 0 {
					tok := 3 + (i*7+k)%97
					if k < T {
						tok = p[k]
					}
					ids[i*S+j], pos[i*S+j], mask[i*S+j] = int32(tok), int32(k), 1
				}
			}
		}
		_, err := exec.Call(tensors.FromFlatDataAndDimensions(ids, B, S), tensors.FromFlatDataAndDimensions(pos, B, S),
			tensors.FromFlatDataAndDimensions(mask, B, S))
		return err
	}
	if err := step(T); err != nil { // compile
		return 0, err
	}
	start := time.Now()
	for n := T; n < S; n++ {
		if err := ctx.Err(); err != nil {
			return 0, err
		}
		if err := step(n); err != nil {
			return 0, err
		}
	}
	return float64(B*newTokens) / time.Since(start).Seconds(), nil
}

// benchForward times one forward over the prompts with the logits of every
// position, best of repeats.
func benchForward(m *Model, backend compute.Backend, prompts [][]int, repeats int) (float64, error) {
	B, T := len(prompts), len(prompts[0])
	exec, err := model.NewExec(backend, m.Store, func(_ *model.Scope, ids *Node) *Node {
		return m.Forward(Inputs{IDs: ids}, Options{}).Logits
	})
	if err != nil {
		return 0, err
	}
	ids := make([]int32, B*T)
	for i, p := range prompts {
		for j, tok := range p {
			ids[i*T+j] = int32(tok)
		}
	}
	best := time.Duration(1 << 62)
	for r := 0; r <= repeats; r++ { // the first call compiles
		start := time.Now()
		out, err := exec.Call(tensors.FromFlatDataAndDimensions(ids, B, T))
		if err != nil {
			return 0, err
		}
		if r > 0 {
			best = min(best, time.Since(start))
		}
		out[0].FinalizeAll()
	}
	return float64(B*T) / best.Seconds(), nil
}
