package models

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/gomlx/gomlx/core/tensors"

	"github.com/lethe-ml/lethe/decoding"
)

// TestSpeculativeMatchesGreedy checks, for every fixture, every exit layer
// and draft lengths 1, 3 and 4, that self-speculative decoding gives
// transformers' greedy_ids and Generate's tokens exactly; that drafting
// with every layer accepts every draft; and that drafting with layer 1
// gets drafts rejected somewhere (so rollbacks are exercised).
func TestSpeculativeMatchesGreedy(t *testing.T) {
	b := testBackend(t)
	var table strings.Builder
	fmt.Fprintf(&table, "%-12s %2s %2s  %-5s %s\n", "arch", "L", "d", "same", "accepted/drafted")
	rejected := 0
	for _, arch := range fixtureArchs {
		t.Run(arch, func(t *testing.T) {
			m := loadFixture(t, arch)
			exp := loadExpected(t, arch)
			gc, err := LoadGenerationConfig(filepath.Join("testdata", "hf", arch), m.Config)
			if err != nil {
				t.Fatal(err)
			}
			gc.MaxNewTokens, gc.MinNewTokens = 10, 10
			prompt, _ := exp.ints(t, "prompt_ids")
			want, _ := exp.ints(t, "greedy_ids")
			gen := NewGenerator(m, b)
			plain, err := gen.Generate(context.Background(), [][]int{toInts(prompt)}, GenerateOptions{Config: gc})
			if err != nil {
				t.Fatal(err)
			}
			for L := 1; L <= m.Config.NumLayers; L++ {
				for _, d := range []int{1, 3, 4} {
					out, st, err := gen.GenerateSpeculative(context.Background(), [][]int{toInts(prompt)}, SpeculativeOptions{Config: gc, ExitLayer: L, Draft: d})
					if err != nil {
						t.Fatal(err)
					}
					got := append(toInts(prompt), out.Tokens[0]...)
					same := slices.Equal(got, toInts(want)) && slices.Equal(out.Tokens[0], plain.Tokens[0])
					fmt.Fprintf(&table, "%-12s %2d %2d  %-5v %d/%d (%.2f)\n", arch, L, d, same, st.Accepted, st.Drafted, st.AcceptanceRate)
					if !same {
						t.Errorf("L=%d d=%d:\n got %v\nwant %v (Generate %v)", L, d, got, toInts(want), plain.Tokens[0])
					}
					if out.Reasons[0] != plain.Reasons[0] || out.Steps != plain.Steps {
						t.Errorf("L=%d d=%d: reason %v, %d steps; Generate %v, %d", L, d, out.Reasons[0], out.Steps, plain.Reasons[0], plain.Steps)
					}
					if st.Tokens != len(out.Tokens[0]) || st.Accepted > st.Drafted || st.DraftPasses != st.Drafted || st.PromptPasses != 1 {
						t.Errorf("L=%d d=%d: inconsistent stats %+v", L, d, *st)
					}
					if L == m.Config.NumLayers && st.AcceptanceRate != 1 {
						t.Errorf("L=NumLayers d=%d: acceptance %d/%d, want all", d, st.Accepted, st.Drafted)
					}
					if L == 1 && st.Accepted < st.Drafted {
						rejected++
					}
				}
			}
		})
	}
	t.Logf("speculative vs greedy (10 new tokens):\n%s", table.String())
	if rejected == 0 {
		t.Error("drafting with layer 1 never had a draft rejected: rollbacks untested")
	}
}

// TestSpeculativeLong decodes 40 tokens (several cache buckets, many
// partial acceptances) with layer 1 drafting 4, and a repetition penalty
// (a processor that reads the history), and checks Generate's tokens.
func TestSpeculativeLong(t *testing.T) {
	b := testBackend(t)
	for _, arch := range []string{"llama", "gpt2", "mistral", "gemma"} {
		t.Run(arch, func(t *testing.T) {
			m := loadFixture(t, arch)
			gen := NewGenerator(m, b)
			cfg := decoding.Defaults()
			cfg.MaxNewTokens = 40
			cfg.RepetitionPenalty = 1.3
			prompts := [][]int{{5, 9, 12, 40, 7, 3, 8, 100, 21}, {17, 4}}
			out, st, err := gen.GenerateSpeculative(context.Background(), prompts, SpeculativeOptions{Config: cfg, ExitLayer: 1, Draft: 4})
			if err != nil {
				t.Fatal(err)
			}
			for i, p := range prompts {
				plain, err := gen.Generate(context.Background(), [][]int{p}, GenerateOptions{Config: cfg})
				if err != nil {
					t.Fatal(err)
				}
				if !slices.Equal(out.Tokens[i], plain.Tokens[0]) {
					t.Errorf("prompt %d:\n got %v\nwant %v", i, out.Tokens[i], plain.Tokens[0])
				}
			}
			t.Logf("%s: accepted %d/%d (%.2f), %d verify passes for %d tokens", arch, st.Accepted, st.Drafted, st.AcceptanceRate, st.VerifyPasses, st.Tokens)
		})
	}
}

// TestSpeculativeStops checks the end-of-sequence id and a token budget
// that is not a multiple of the draft length, against Generate, and that
// sampling is refused.
func TestSpeculativeStops(t *testing.T) {
	b := testBackend(t)
	m := loadFixture(t, "qwen3")
	gen := NewGenerator(m, b)
	prompt := []int{5, 9, 12, 40, 7}
	cfg := decoding.Defaults()
	cfg.MaxNewTokens = 20
	free, err := gen.Generate(context.Background(), [][]int{prompt}, GenerateOptions{Config: cfg})
	if err != nil {
		t.Fatal(err)
	}
	// An EOS the model emits as its 6th token (first occurrence).
	at := 5
	for slices.Contains(free.Tokens[0][:at], free.Tokens[0][at]) {
		at++
	}
	eos := cfg
	eos.EOSTokenIDs = []int{free.Tokens[0][at]}
	short := cfg
	short.MaxNewTokens = 7
	for name, c := range map[string]decoding.GenerationConfig{"eos": eos, "budget": short} {
		for _, L := range []int{1, 2} {
			var streamed []int
			out, _, err := gen.GenerateSpeculative(context.Background(), [][]int{prompt}, SpeculativeOptions{Config: c, ExitLayer: L, Draft: 3,
				OnToken: func(seq int, toks []int) error { streamed = append(streamed, toks...); return nil }})
			if err != nil {
				t.Fatal(err)
			}
			plain, err := gen.Generate(context.Background(), [][]int{prompt}, GenerateOptions{Config: c})
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(out.Tokens[0], plain.Tokens[0]) || out.Reasons[0] != plain.Reasons[0] {
				t.Errorf("%s L=%d: %v (%v), Generate %v (%v)", name, L, out.Tokens[0], out.Reasons[0], plain.Tokens[0], plain.Reasons[0])
			}
			if !slices.Equal(streamed, out.Tokens[0]) {
				t.Errorf("%s L=%d: streamed %v, returned %v", name, L, streamed, out.Tokens[0])
			}
		}
	}
	if len(free.Tokens[0]) != 20 {
		t.Fatalf("expected 20 tokens without EOS, got %d", len(free.Tokens[0]))
	}
	sample := cfg
	sample.DoSample = true
	if _, _, err := gen.GenerateSpeculative(context.Background(), [][]int{prompt}, SpeculativeOptions{Config: sample, ExitLayer: 1}); err == nil {
		t.Error("sampling was accepted")
	}
	if _, _, err := gen.GenerateSpeculative(context.Background(), [][]int{prompt}, SpeculativeOptions{Config: cfg, ExitLayer: 3}); err == nil {
		t.Error("exit layer 3 of 2 was accepted")
	}
}

// BenchmarkSpeculative compares greedy Generate with GenerateSpeculative on
// random-weight Llama models on the Go backend (1 × 32 prompt, 32 new
// tokens), reporting both throughputs and the acceptance rate. Random
// weights make the early exit a poor drafter (acceptance near 0), so the
// "damped" model scales the residual branches of layers past the second by
// 0.01: the late layers then barely change the prediction, as in a model
// trained for early exit, and the numbers show the speed at high
// acceptance.
func BenchmarkSpeculative(b *testing.B) {
	deep := `{"model_type": "llama", "vocab_size": 2048, "hidden_size": 256, "intermediate_size": 688,
		"num_hidden_layers": 8, "num_attention_heads": 8, "num_key_value_heads": 4, "rms_norm_eps": 1e-5,
		"rope_theta": 10000.0, "max_position_embeddings": 4096, "tie_word_embeddings": false}`
	for _, tc := range []struct {
		name    string
		L, d    int
		cfgJSON string
	}{
		{"tiny/L=1/d=4", 1, 4, ""},
		{"deep8/L=2/d=4", 2, 4, deep},
		{"deep8/L=4/d=4", 4, 4, deep},
		{"deep8/L=8/d=4", 8, 4, deep},
		{"deep8-damped/L=2/d=4", 2, 4, deep},
		{"deep8-damped/L=2/d=8", 2, 8, deep},
	} {
		b.Run(tc.name, func(b *testing.B) {
			var cfg *Config
			var err error
			if tc.cfgJSON == "" {
				cfg, err = BenchConfig("tiny")
			} else {
				cfg, err = ParseConfig([]byte(tc.cfgJSON))
			}
			if err != nil {
				b.Fatal(err)
			}
			m, err := New(cfg, LoadOptions{}, 1)
			if err != nil {
				b.Fatal(err)
			}
			if strings.Contains(tc.name, "damped") {
				dampLayers(b, m, 2, 0.01)
			}
			var r SpeculativeBenchResult
			for b.Loop() {
				r, err = BenchSpeculative(context.Background(), m, testBackend(b), SpeculativeBenchOptions{PromptLen: 32, NewTokens: 32, ExitLayer: tc.L, Draft: tc.d, Repeats: 3})
				if err != nil {
					b.Fatal(err)
				}
				if !r.Same {
					b.Fatal("speculative tokens differ from greedy")
				}
			}
			b.ReportMetric(r.Greedy, "greedy_tok/s")
			b.ReportMetric(r.Speculative, "spec_tok/s")
			b.ReportMetric(r.AcceptanceRate, "acceptance")
			b.ReportMetric(r.Speedup, "speedup")
		})
	}
}

// dampLayers multiplies the output projections (o_proj, down_proj) of
// layers from..NumLayers-1 by f.
func dampLayers(t testing.TB, m *Model, from int, f float32) {
	t.Helper()
	for l := from; l < m.Config.NumLayers; l++ {
		for _, name := range []string{"self_attn.o_proj", "mlp.down_proj"} {
			v, ok := m.Param(fmt.Sprintf("model.layers.%d.%s.weight", l, name))
			if !ok {
				t.Fatalf("no %s in layer %d", name, l)
			}
			val := v.MustValue()
			var data []float32
			val.MustConstFlatData(func(x any) { data = slices.Clone(x.([]float32)) })
			for i := range data {
				data[i] *= f
			}
			v.MustSetValue(tensors.FromFlatDataAndDimensions(data, val.Shape().Dimensions...))
		}
	}
	m.WeightsChanged()
}
