package strategy

import (
	"context"
	"errors"
	"slices"
	"time"

	"github.com/gomlx/compute"

	"github.com/lethe-ml/lethe/models"
)

// BenchOptions configure Bench.
type BenchOptions struct {
	// Strategies to time [all of Names]; greedy is always timed first as
	// the baseline.
	Strategies []string
	// Prompts are the prompts decoded, one after the other, each for
	// Config.Generation.MaxNewTokens tokens.
	Prompts [][]int
	// Repeats is the number of timed passes over the prompts; the best is
	// kept [3]. A first, untimed pass compiles.
	Repeats int
	// Config is the base configuration of every strategy.
	Config Config
	// Hooks apply to the model (adapters); Amateur is contrastive's.
	Hooks   models.Hooks
	Amateur *models.Model
}

// BenchResult is one strategy's speed.
type BenchResult struct {
	Strategy string `json:"strategy"`
	// Tokens are the tokens generated per pass over the prompts;
	// TokensPerSecond their rate (best pass), Relative that rate over
	// greedy's.
	Tokens          int     `json:"tokens"`
	TokensPerSecond float64 `json:"tokens_per_second"`
	Relative        float64 `json:"relative_to_greedy"`
	// SameAsGreedy says the tokens equal greedy's (speculative must).
	SameAsGreedy bool `json:"same_as_greedy"`
	// AcceptanceRate is speculative's share of drafted tokens accepted.
	AcceptanceRate float64 `json:"acceptance_rate,omitempty"`
}

// Bench times each strategy on m: tokens/s relative to greedy decoding of
// the same prompts, and speculative's acceptance rate (its Relative is
// its speedup).
func Bench(ctx context.Context, m *models.Model, b compute.Backend, opts BenchOptions) ([]BenchResult, error) {
	if len(opts.Prompts) == 0 {
		return nil, errors.New("bench: no prompts")
	}
	if opts.Repeats == 0 {
		opts.Repeats = 3
	}
	names := opts.Strategies
	if len(names) == 0 {
		names = Names
	}
	names = append([]string{"greedy"}, slices.DeleteFunc(slices.Clone(names), func(s string) bool { return s == "greedy" })...)
	var out []BenchResult
	var greedy [][]int
	for _, name := range names {
		cfg := opts.Config
		cfg.Strategy = name
		d, err := New(m, b, opts.Hooks, opts.Amateur, cfg)
		if err != nil {
			return nil, err
		}
		var toks [][]int
		var accepted, drafted int
		run := func() (time.Duration, int, error) {
			toks, accepted, drafted = nil, 0, 0
			n := 0
			start := time.Now()
			for _, p := range opts.Prompts {
				r, err := d.Generate(ctx, p)
				if err != nil {
					return 0, 0, err
				}
				toks = append(toks, r.Tokens)
				n += len(r.Tokens)
				if st := r.Speculative; st != nil {
					accepted += st.Accepted
					drafted += st.Drafted
				}
			}
			return time.Since(start), n, nil
		}
		if _, _, err := run(); err != nil { // compiles
			return nil, err
		}
		best := time.Duration(1<<62 - 1)
		var n int
		for range opts.Repeats {
			took, k, err := run()
			if err != nil {
				return nil, err
			}
			best, n = min(best, took), k
		}
		r := BenchResult{Strategy: name, Tokens: n, TokensPerSecond: float64(n) / best.Seconds()}
		if name == "greedy" {
			greedy = toks
		}
		r.SameAsGreedy = slices.EqualFunc(toks, greedy, slices.Equal[[]int])
		if drafted > 0 {
			r.AcceptanceRate = float64(accepted) / float64(drafted)
		}
		r.Relative = r.TokensPerSecond / out0(out, r).TokensPerSecond
		out = append(out, r)
	}
	return out, nil
}

// out0 is the greedy result (the first), or r itself when it is greedy's.
func out0(out []BenchResult, r BenchResult) BenchResult {
	if len(out) == 0 {
		return r
	}
	return out[0]
}
