package decoding

import (
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
)

func ptr[T any](v T) *T { return &v }

// TestChainOrder checks that NewChain builds the processors transformers 5
// builds, in its order. The order is the one of
// GenerationMixin._get_logits_processor in
// src/transformers/generation/utils.py (transformers 5): repetition_penalty,
// then min_length, then min_new_tokens, then, inside
// `if generation_config.do_sample:`, temperature (!= 1.0), top_h, top_k
// (!= 0), top_p (< 1.0), min_p (is not None), typical_p (< 1.0),
// epsilon_cutoff, eta_cutoff. Greedy decoding builds no warper.
func TestChainOrder(t *testing.T) {
	sample := func(c GenerationConfig) GenerationConfig { c.DoSample = true; return c }
	with := func(f func(*GenerationConfig)) GenerationConfig { c := Defaults(); f(&c); return c }
	for _, tc := range []struct {
		name string
		cfg  GenerationConfig
		want string
	}{
		{"greedy defaults", Defaults(), "none"},
		// Sampling with nothing set still keeps the 50 best tokens.
		{"sampling defaults", sample(Defaults()), "TopK(50)"},
		{"llama 3 instruct", with(func(c *GenerationConfig) {
			c.DoSample, c.Temperature, c.TopP, c.EOSTokenIDs = true, 0.6, 0.9, []int{128001, 128008, 128009}
		}), "Temperature(0.6) → TopK(50) → TopP(0.9)"},
		{"qwen 2.5 instruct", with(func(c *GenerationConfig) {
			c.DoSample, c.RepetitionPenalty, c.Temperature, c.TopP, c.TopK = true, 1.05, 0.7, 0.8, 20
		}), "RepetitionPenalty(1.05) → Temperature(0.7) → TopK(20) → TopP(0.8)"},
		{"everything", with(func(c *GenerationConfig) {
			c.DoSample, c.RepetitionPenalty, c.MinNewTokens, c.EOSTokenIDs = true, 1.1, 4, []int{2}
			c.Temperature, c.TopK, c.TopP, c.MinP, c.TypicalP = 0.8, 40, 0.95, 0.05, 0.9
		}), "RepetitionPenalty(1.1) → MinNewTokens(4, eos=[2]) → Temperature(0.8) → TopK(40) → TopP(0.95) → MinP(0.05) → TypicalP(0.9)"},
		{"greedy ignores the warpers", with(func(c *GenerationConfig) {
			c.RepetitionPenalty, c.MinLength, c.EOSTokenIDs = 1.2, 10, []int{2}
			c.Temperature, c.TopK, c.TopP, c.MinP, c.TypicalP = 0.3, 5, 0.5, 0.1, 0.5
		}), "RepetitionPenalty(1.2) → MinLength(10, eos=[2])"},
		{"min_new_tokens wins over min_length", with(func(c *GenerationConfig) {
			c.MinLength, c.MinNewTokens, c.EOSTokenIDs = 30, 3, []int{2}
		}), "MinNewTokens(3, eos=[2])"},
		{"stop ids are forbidden like EOS", with(func(c *GenerationConfig) {
			c.MinNewTokens, c.EOSTokenIDs, c.StopTokenIDs = 3, []int{2}, []int{7, 2}
		}), "MinNewTokens(3, eos=[2 7])"},
		{"min_new_tokens without EOS does nothing", with(func(c *GenerationConfig) { c.MinNewTokens = 3 }), "none"},
		{"top_k 0, temperature 1 and top_p 1 build nothing", with(func(c *GenerationConfig) {
			c.DoSample, c.TopK = true, 0
		}), "none"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ch, err := NewChain(tc.cfg, 200000)
			if err != nil {
				t.Fatal(err)
			}
			if got := ch.String(); got != tc.want {
				t.Errorf("chain %q, want %q", got, tc.want)
			}
		})
	}
}

// TestChainOrderMatters shows the order is observable: temperature 2 flattens
// p = [0.5, 0.3, 0.15, 0.05] to [0.379, 0.294, 0.208, 0.120] before top-p 0.8,
// which then keeps three tokens; top-p first would keep two.
func TestChainOrderMatters(t *testing.T) {
	cfg := Defaults()
	cfg.DoSample, cfg.Temperature, cfg.TopP, cfg.TopK = true, 2, 0.8, 0
	ch, err := NewChain(cfg, 4)
	if err != nil {
		t.Fatal(err)
	}
	row := logitsOf(0.5, 0.3, 0.15, 0.05)
	if err := ch.Process(row, []int{0}, 0); err != nil {
		t.Fatal(err)
	}
	if got := kept(row); !slices.Equal(got, []int{0, 1, 2}) {
		t.Errorf("kept %v, want [0 1 2]", got)
	}
	other := logitsOf(0.5, 0.3, 0.15, 0.05)
	TopP{P: 0.8}.Process(other, nil, 0)
	Temperature{T: 2}.Process(other, nil, 0)
	if got := kept(other); !slices.Equal(got, []int{0, 1}) {
		t.Errorf("reversed order kept %v, want [0 1]", got)
	}
}

// TestChainEndToEnd runs a Qwen-like chain on a small row and checks every
// value against the processors' closed forms.
func TestChainEndToEnd(t *testing.T) {
	cfg := Defaults()
	cfg.DoSample, cfg.RepetitionPenalty, cfg.Temperature, cfg.TopK, cfg.TopP = true, 2, 0.5, 3, 0.9
	cfg.MinNewTokens, cfg.EOSTokenIDs = 2, []int{5}
	ch, err := NewChain(cfg, 6)
	if err != nil {
		t.Fatal(err)
	}
	row := []float32{4, 3, -1, 2, 1, 9}
	// Repetition on ids 0 and 2: [2, 3, -2, 2, 1, 9]; EOS (5) masked at step 1;
	// temperature 0.5: [4, 6, -4, 4, 2, -Inf]; top-3 keeps 6 and the tied 4s:
	// ids 0, 1, 3; softmax over [4, 6, 4] = [0.1065, 0.7870, 0.1065]; top-p 0.9:
	// ranked 1, 3, 0 (tie: higher id first), cumsum from the bottom 0.1065 <=
	// 0.1 is false, so all three stay.
	if err := ch.Process(row, []int{0, 2, 0}, 1); err != nil {
		t.Fatal(err)
	}
	want := []float32{4, 6, inf, 4, inf, inf}
	if !slices.Equal(row, want) {
		t.Errorf("got %v, want %v", row, want)
	}
	// At step 2 EOS is allowed again and dominates after temperature.
	row = []float32{4, 3, -1, 2, 1, 9}
	if err := ch.Process(row, []int{0, 2, 0, 1}, 2); err != nil {
		t.Fatal(err)
	}
	if got := kept(row); !slices.Equal(got, []int{5}) {
		t.Errorf("step 2 kept %v, want [5]", got)
	}
}

func TestChainErrors(t *testing.T) {
	cfg := Defaults()
	cfg.EOSTokenIDs = []int{2}
	ch, err := NewChain(cfg, 4)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		row     []float32
		history []int
		step    int
		want    string
	}{
		{"short row", make([]float32, 3), nil, 0, "3 entries, the chain expects 4"},
		{"id outside vocabulary", make([]float32, 4), []int{1, 4}, 0, "history id 4 at position 1"},
		{"negative id", make([]float32, 4), []int{-1}, 0, "history id -1"},
		{"step beyond history", make([]float32, 4), []int{1}, 2, "step 2"},
	} {
		if err := ch.Process(tc.row, tc.history, tc.step); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want it to mention %q", tc.name, err, tc.want)
		}
	}
	for _, tc := range []struct {
		name  string
		cfg   GenerationConfig
		vocab int
		want  string
	}{
		{"eos outside vocab", GenerationConfig{RepetitionPenalty: 1, EOSTokenIDs: []int{9}}, 4, "id 9 is outside the vocabulary of 4"},
		{"pad outside vocab", GenerationConfig{RepetitionPenalty: 1, PadTokenID: ptr(4)}, 4, "pad id 4"},
		{"no vocab", Defaults(), 0, "vocabulary size"},
		{"temperature 0 when sampling", GenerationConfig{DoSample: true, RepetitionPenalty: 1}, 4, "temperature"},
		{"beam search", GenerationConfig{RepetitionPenalty: 1, NumBeams: 4}, 4, "num_beams"},
	} {
		if _, err := NewChain(tc.cfg, tc.vocab); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want it to mention %q", tc.name, err, tc.want)
		}
	}
}

// TestChainConcurrent runs one chain from many goroutines (processors share
// pooled scratch buffers) and compares with serial results.
func TestChainConcurrent(t *testing.T) {
	cfg := Defaults()
	cfg.DoSample, cfg.RepetitionPenalty, cfg.Temperature, cfg.TopK, cfg.TopP, cfg.MinP = true, 1.1, 0.8, 0, 0.9, 0.01
	ch, err := NewChain(cfg, 6000)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(8, 8))
	rows := make([][]float32, 32)
	want := make([][]float32, len(rows))
	for i := range rows {
		rows[i] = randomRow(rng, 6000, 3, i%2 == 0)
		want[i] = slices.Clone(rows[i])
		if err := ch.Process(want[i], []int{i, i + 1, 7}, 1); err != nil {
			t.Fatal(err)
		}
	}
	var wg sync.WaitGroup
	for i := range rows {
		wg.Go(func() {
			if err := ch.Process(rows[i], []int{i, i + 1, 7}, 1); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	for i := range rows {
		if !slices.Equal(rows[i], want[i]) {
			t.Errorf("row %d differs when processed concurrently", i)
		}
	}
}
