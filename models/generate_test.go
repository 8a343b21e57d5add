package models

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"testing"

	"github.com/lethe-ml/lethe/decoding"
)

// TestGreedyMatchesTransformers checks greedy_ids (one prompt, 10 new
// tokens, EOS suppressed) and batch_greedy_ids (two prompts, the second
// left-padded by two, 8 new tokens) exactly, for every fixture.
func TestGreedyMatchesTransformers(t *testing.T) {
	b := testBackend(t)
	for _, arch := range fixtureArchs {
		t.Run(arch, func(t *testing.T) {
			m := loadFixture(t, arch)
			exp := loadExpected(t, arch)
			gc, err := LoadGenerationConfig(filepath.Join("testdata", "hf", arch), m.Config)
			if err != nil {
				t.Fatal(err)
			}
			gen := NewGenerator(m, b)

			prompt, _ := exp.ints(t, "prompt_ids")
			want, _ := exp.ints(t, "greedy_ids")
			cfg := gc
			cfg.MaxNewTokens, cfg.MinNewTokens = 10, 10
			out, err := gen.Generate(context.Background(), [][]int{toInts(prompt)}, GenerateOptions{Config: cfg})
			if err != nil {
				t.Fatal(err)
			}
			if got := append(toInts(prompt), out.Tokens[0]...); !slices.Equal(got, toInts(want)) {
				t.Errorf("greedy:\n got %v\nwant %v", got, toInts(want))
			}

			bp, shape := exp.ints(t, "batch_prompt_ids")
			bm, _ := exp.ints(t, "batch_prompt_mask")
			bwant, wshape := exp.ints(t, "batch_greedy_ids")
			var prompts [][]int
			for r := 0; r < shape[0]; r++ {
				var p []int
				for j := 0; j < shape[1]; j++ {
					if bm[r*shape[1]+j] == 1 {
						p = append(p, int(bp[r*shape[1]+j]))
					}
				}
				prompts = append(prompts, p)
			}
			cfg.MaxNewTokens, cfg.MinNewTokens = 8, 8
			bout, err := gen.Generate(context.Background(), prompts, GenerateOptions{Config: cfg})
			if err != nil {
				t.Fatal(err)
			}
			for r := 0; r < shape[0]; r++ {
				row := toInts(bwant[r*wshape[1] : (r+1)*wshape[1]])
				if got := bout.Tokens[r]; !slices.Equal(got, row[shape[1]:]) {
					t.Errorf("batch row %d:\n got %v\nwant %v", r, got, row[shape[1]:])
				}
			}
		})
	}
}

func toInts(xs []int32) []int {
	out := make([]int, len(xs))
	for i, x := range xs {
		out[i] = int(x)
	}
	return out
}

// TestShareWeights checks that binding the weights as parameters gives the
// same tokens as letting the backend embed them.
func TestShareWeights(t *testing.T) {
	m := loadFixture(t, "qwen2")
	exp := loadExpected(t, "qwen2")
	prompt, _ := exp.ints(t, "prompt_ids")
	want, _ := exp.ints(t, "greedy_ids")
	gc, err := LoadGenerationConfig(filepath.Join("testdata", "hf", "qwen2"), m.Config)
	if err != nil {
		t.Fatal(err)
	}
	gc.MaxNewTokens, gc.MinNewTokens = 10, 10
	gen := NewGenerator(m, testBackend(t))
	gen.ShareWeights = true
	out, err := gen.Generate(context.Background(), [][]int{toInts(prompt)}, GenerateOptions{Config: gc})
	if err != nil {
		t.Fatal(err)
	}
	if got := append(toInts(prompt), out.Tokens[0]...); !slices.Equal(got, toInts(want)) {
		t.Errorf("got %v, want %v", got, toInts(want))
	}
}

// TestUnequalPromptsWithoutPadID: prompts of different lengths decode
// without a pad, end-of-sequence or stop id configured (the padding of the
// processors' history uses id 0), and each row decodes as it does alone.
func TestUnequalPromptsWithoutPadID(t *testing.T) {
	b := testBackend(t)
	m := loadFixture(t, "llama")
	gen := NewGenerator(m, b)
	cfg := decoding.Defaults()
	cfg.MaxNewTokens = 4
	prompts := [][]int{{5, 9, 12, 40, 7}, {5, 9}}
	both, err := gen.Generate(context.Background(), prompts, GenerateOptions{Config: cfg})
	if err != nil {
		t.Fatal(err)
	}
	for i, p := range prompts {
		alone, err := gen.Generate(context.Background(), [][]int{p}, GenerateOptions{Config: cfg})
		if err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(alone.Tokens[0]) != fmt.Sprint(both.Tokens[i]) {
			t.Errorf("row %d: %v in the batch, %v alone", i, both.Tokens[i], alone.Tokens[0])
		}
	}
}
