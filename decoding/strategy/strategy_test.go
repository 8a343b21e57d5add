package strategy

import (
	"context"
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/gomlx/compute"

	"github.com/lethe-ml/lethe/decoding"
	"github.com/lethe-ml/lethe/internal/backend"
	"github.com/lethe-ml/lethe/models"
	"github.com/lethe-ml/lethe/models/safetensors"
)

var archs = []string{"llama", "llama3_rope", "qwen2", "qwen3", "mistral", "gemma", "mixtral", "gpt2"}

func testBackend(t testing.TB) compute.Backend {
	t.Helper()
	b, _, err := backend.New("go:ops_sequential")
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// fixture loads a fixture model and its prompt and transformers' greedy
// continuation.
func fixture(t testing.TB, arch string) (*models.Model, []int, []int) {
	t.Helper()
	dir := "../../models/testdata/hf/" + arch
	m, err := models.Load(dir, models.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	f, err := safetensors.Open(dir + "/expected.safetensors")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	p, err := f.Int64("prompt_ids")
	if err != nil {
		t.Fatal(err)
	}
	g, err := f.Int64("greedy_ids")
	if err != nil {
		t.Fatal(err)
	}
	var prompt, greedy []int
	for _, v := range p {
		prompt = append(prompt, int(v))
	}
	for _, v := range g[len(p):] {
		greedy = append(greedy, int(v))
	}
	return m, prompt, greedy
}

func greedyConfig(n int) decoding.GenerationConfig {
	return decoding.GenerationConfig{MaxNewTokens: n, NumBeams: 1, Temperature: 1, TopP: 1, TypicalP: 1, RepetitionPenalty: 1}
}

func f64(v float64) *float64 { return &v }

// TestEqualsGreedy: the strategies' degenerate settings give transformers'
// greedy tokens on every fixture model: DCD with dropout 0 and β = 0 (the
// acceptance line), contrastive against the model itself with β = 0,
// MC-dropout ensembles at rate 0 (with zero mutual information at every
// step), dropout decoding that drops no context, DoLa with α = 1 (only the
// final layer's top token is plausible), and self-speculative decoding.
func TestEqualsGreedy(t *testing.T) {
	b := testBackend(t)
	cases := []Config{
		{Strategy: "greedy"},
		{Strategy: "dcd", Dropout: f64(0), Beta: f64(0)},
		{Strategy: "contrastive", Beta: f64(0)},
		{Strategy: "mc-dropout", Dropout: f64(0), Samples: 3},
		{Strategy: "dropout-decoding", DropContext: f64(0), Samples: 3},
		{Strategy: "dola", Alpha: 1},
		{Strategy: "speculative", ExitLayer: 1, Draft: 3},
	}
	for _, arch := range archs {
		for _, c := range cases {
			t.Run(arch+"/"+c.Strategy, func(t *testing.T) {
				m, prompt, want := fixture(t, arch)
				c.Generation = greedyConfig(len(want))
				var amateur *models.Model
				if c.Strategy == "contrastive" {
					amateur = m // a copy of itself in its store
				}
				d, err := New(m, b, models.Hooks{}, amateur, c)
				if err != nil {
					t.Fatal(err)
				}
				res, err := d.Generate(context.Background(), prompt)
				if err != nil {
					t.Fatal(err)
				}
				if !slices.Equal(res.Tokens, want) {
					t.Errorf("%s: %v, greedy %v", c.Strategy, res.Tokens, want)
				}
				for i, mi := range res.MutualInformation {
					if mi != 0 && c.Strategy == "mc-dropout" {
						t.Errorf("step %d: mutual information %g at rate 0", i, mi)
					}
				}
			})
		}
	}
}

// TestStrategiesChangeTheOutput: with their usual settings the
// contrastive strategies and dropout ensembles decode differently from
// greedy somewhere, MC dropout reports positive mutual information, DoLa
// records its layer choices, and the same seed gives the same tokens.
func TestStrategiesChangeTheOutput(t *testing.T) {
	b := testBackend(t)
	m, prompt, _ := fixture(t, "llama")
	g, err := New(m, b, models.Hooks{}, nil, Config{Generation: greedyConfig(20)})
	if err != nil {
		t.Fatal(err)
	}
	greedy, _ := g.Generate(context.Background(), prompt)
	for _, c := range []Config{
		{Strategy: "dcd", Dropout: f64(0.3), Beta: f64(1)},
		{Strategy: "mc-dropout", Dropout: f64(0.3), Samples: 4},
		{Strategy: "dola", Alpha: 0.1},
		{Strategy: "dropout-decoding", Samples: 4, DropContext: f64(1), Uncertain: f64(1)},
	} {
		c.Generation, c.Seed = greedyConfig(20), 7
		var outs [][]int
		for range 2 {
			m, _, _ := fixture(t, "llama")
			d, err := New(m, b, models.Hooks{}, nil, c)
			if err != nil {
				t.Fatal(err)
			}
			res, err := d.Generate(context.Background(), prompt)
			if err != nil {
				t.Fatal(err)
			}
			outs = append(outs, res.Tokens)
			if c.Strategy == "mc-dropout" && !(slices.Max(res.MutualInformation) > 0) {
				t.Errorf("mc-dropout: mutual information %v", res.MutualInformation)
			}
			if c.Strategy == "dola" && len(res.DoLaLayers) == 0 {
				t.Errorf("dola: no layer choices")
			}
		}
		if !slices.Equal(outs[0], outs[1]) {
			t.Errorf("%s: seed 7 gave %v and %v", c.Strategy, outs[0], outs[1])
		}
		if slices.Equal(outs[0], greedy.Tokens) {
			t.Errorf("%s: the same tokens as greedy %v", c.Strategy, greedy.Tokens)
		}
	}
}

// TestContrastiveStep: one step of contrastive decoding against a
// different amateur picks the argmax of (1+β)·expert − β·amateur over the
// plausible tokens, computed here from the two models' own logits.
func TestContrastiveStep(t *testing.T) {
	b := testBackend(t)
	expert, prompt, _ := fixture(t, "llama")
	amateur, _, _ := fixture(t, "mistral") // same vocabulary, other weights
	d, err := New(expert, b, models.Hooks{}, amateur, Config{Strategy: "contrastive", Beta: f64(0.7), Alpha: 0.05, Generation: greedyConfig(1)})
	if err != nil {
		t.Fatal(err)
	}
	res, err := d.Generate(context.Background(), prompt)
	if err != nil {
		t.Fatal(err)
	}
	e := nextLogits(t, expert, b, prompt)
	a := nextLogits(t, amateur, b, prompt)
	mx := slices.Max(e)
	best, arg := math.Inf(-1), -1
	for v := range e {
		pe := math.Exp(float64(e[v] - mx))
		if pe < 0.05 {
			continue
		}
		s := 1.7*float64(e[v]) - 0.7*float64(a[v])
		if s > best {
			best, arg = s, v
		}
	}
	if len(res.Tokens) != 1 || res.Tokens[0] != arg {
		t.Errorf("contrastive token %v, want %d", res.Tokens, arg)
	}
}

// nextLogits is the model's next-token logits after prompt (one greedy
// step's row, read through a Combine that records it).
func nextLogits(t *testing.T, m *models.Model, b compute.Backend, prompt []int) []float32 {
	t.Helper()
	gen := models.NewGenerator(m, b)
	gen.LayerLogits = []int{m.Config.NumLayers}
	var row []float32
	_, err := gen.Generate(context.Background(), [][]int{prompt}, models.GenerateOptions{Config: greedyConfig(1),
		Combine: func(_, _ int, main []float32, _, _ [][]float32) error { row = slices.Clone(main); return nil }})
	if err != nil {
		t.Fatal(err)
	}
	return row
}

// TestAntislopAndPenalties: a phrase greedy decoding produces is banned
// and never appears in the output (Antislop backtracks); a large
// frequency penalty makes every generated token distinct.
func TestAntislopAndPenalties(t *testing.T) {
	b := testBackend(t)
	m, prompt, want := fixture(t, "llama")
	decode := func(ids []int) string {
		var sb strings.Builder
		for _, id := range ids {
			fmt.Fprintf(&sb, "<%d>", id)
		}
		return sb.String()
	}
	phrase := decode(want[2:4])
	d, err := New(m, b, models.Hooks{}, nil, Config{Generation: greedyConfig(len(want)), Ban: []string{phrase}, Decode: decode})
	if err != nil {
		t.Fatal(err)
	}
	res, err := d.Generate(context.Background(), prompt)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(decode(res.Tokens), phrase) || res.Backtracks == 0 || !slices.Equal(res.Tokens[:2], want[:2]) {
		t.Errorf("banned %s: got %v (%d backtracks), greedy %v", phrase, res.Tokens, res.Backtracks, want)
	}
	p, err := New(m, b, models.Hooks{}, nil, Config{Generation: greedyConfig(30), Frequency: 100})
	if err != nil {
		t.Fatal(err)
	}
	res, err = p.Generate(context.Background(), prompt)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[int]bool{}
	for _, tok := range res.Tokens {
		if seen[tok] {
			t.Errorf("frequency penalty 100: token %d repeated in %v", tok, res.Tokens)
			break
		}
		seen[tok] = true
	}
}

// TestBench: the benchmark times greedy first (ratio 1), reports that
// self-speculative decoding gives greedy's tokens with an acceptance rate
// in [0, 1], and that DCD's tokens differ or not as they do.
func TestBench(t *testing.T) {
	b := testBackend(t)
	m, prompt, _ := fixture(t, "llama")
	res, err := Bench(context.Background(), m, b, BenchOptions{Strategies: []string{"speculative", "mc-dropout"}, Prompts: [][]int{prompt, prompt[:3]},
		Repeats: 1, Config: Config{Generation: greedyConfig(6), ExitLayer: 1, Draft: 3, Seed: 1}})
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 3 || res[0].Strategy != "greedy" || res[0].Relative != 1 || res[0].Tokens != 12 {
		t.Fatalf("%+v", res)
	}
	if s := res[1]; s.Strategy != "speculative" || !s.SameAsGreedy || s.AcceptanceRate < 0 || s.AcceptanceRate > 1 || s.TokensPerSecond <= 0 {
		t.Errorf("speculative %+v", s)
	}
}

// TestAmateurPrompt: DCD's amateur with dropout 0 is the expert, so with
// the same prompt contrastive decoding is greedy whatever β; an amateur
// prompt with other demonstrations in front makes it differ.
func TestAmateurPrompt(t *testing.T) {
	b := testBackend(t)
	m, prompt, want := fixture(t, "llama")
	run := func(ap func([]int) []int) []int {
		d, err := New(m, b, models.Hooks{}, nil, Config{Strategy: "dcd", Dropout: f64(0), Beta: f64(1), Alpha: 0.001, Generation: greedyConfig(len(want)), AmateurPrompt: ap})
		if err != nil {
			t.Fatal(err)
		}
		res, err := d.Generate(context.Background(), prompt)
		if err != nil {
			t.Fatal(err)
		}
		return res.Tokens
	}
	if got := run(nil); !slices.Equal(got, want) {
		t.Errorf("the amateur is the expert: %v, greedy %v", got, want)
	}
	prefixed := run(func(p []int) []int { return append([]int{1, 300, 301, 302, 303, 304, 305}, p[1:]...) })
	if slices.Equal(prefixed, want) {
		t.Errorf("an amateur with demonstrations in front decodes like greedy: %v", prefixed)
	}
}
