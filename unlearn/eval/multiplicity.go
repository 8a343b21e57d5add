package eval

import (
	"context"
	"fmt"

	"github.com/lethe-ml/lethe/peft"
	"github.com/lethe-ml/lethe/train/dropout"
	"github.com/lethe-ml/lethe/unlearn/metrics"
)

// Multiplicity is the predictive multiplicity of a model's answers over
// models sampled with dropout (the dropout Rashomon set of Hsu et al.
// 2024): how many answers, judged right or wrong, change from the model's
// own when dropout masks perturb it.
type Multiplicity struct {
	// Ambiguity is the fraction of items on which some sample disagrees
	// with the model; Discrepancy the largest fraction on which one sample
	// disagrees; Disagreement the fraction on which the samples are not
	// unanimous (Marx et al. 2020).
	Ambiguity    float64 `json:"ambiguity"`
	Discrepancy  float64 `json:"discrepancy"`
	Disagreement float64 `json:"disagreement"`
	// Accuracies are the samples' accuracies.
	Accuracies []float64 `json:"accuracies"`
	Rate       float64   `json:"rate"`
	Samples    int       `json:"samples"`
}

// DropoutMultiplicity answers items with the model, then samples times with
// dropout at rate on every residual branch (masks drawn from seed), and
// compares the correctness of the answers.
func (m *Model) DropoutMultiplicity(ctx context.Context, items []Item, opts Options, rate float64, samples int, seed uint64) (Multiplicity, error) {
	out := Multiplicity{Rate: rate, Samples: samples}
	if samples < 1 || rate < 0 || rate >= 1 {
		return out, fmt.Errorf("eval: multiplicity needs samples >= 1 and a rate in [0, 1), got %d and %g", samples, rate)
	}
	if opts.Correct == nil {
		return out, fmt.Errorf("eval: no Correct function")
	}
	correct := func(em *Model) ([]int, error) {
		prompts := make([]string, len(items))
		for i, it := range items {
			prompts[i] = it.Prompt
		}
		if opts.MaxNewTokens == 0 {
			opts.MaxNewTokens = 16
		}
		ans, err := em.answers(ctx, prompts, opts)
		if err != nil {
			return nil, err
		}
		c := make([]int, len(items))
		for i, it := range items {
			if opts.Correct(ans[i], it.Short) {
				c[i] = 1
			}
		}
		return c, nil
	}
	ref, err := correct(m)
	if err != nil {
		return out, err
	}
	if m.Dropout == nil {
		if m.Dropout, err = dropout.New(m.M, dropout.Config{Residual: rate}); err != nil {
			return out, err
		}
	}
	if got := m.Dropout.Rates(); got.Residual != rate {
		return out, fmt.Errorf("eval: the model's dropout regularizer has residual rate %g, want %g", got.Residual, rate)
	}
	var alts [][]int
	for k := range samples {
		if err := m.M.Store.SetRNGStateFromSeed(int64(seed) + int64(k)); err != nil {
			return out, err
		}
		em := &Model{M: m.M, Hooks: peft.ComposeHooks(m.Hooks, m.Dropout.Hooks()), Tokenizer: m.Tokenizer, Backend: m.Backend,
			BatchSize: m.BatchSize, training: true}
		c, err := correct(em)
		if err != nil {
			return out, err
		}
		alts = append(alts, c)
		n := 0
		for _, v := range c {
			n += v
		}
		out.Accuracies = append(out.Accuracies, float64(n)/float64(max(len(c), 1)))
	}
	if out.Ambiguity, err = metrics.Ambiguity(ref, alts); err != nil {
		return out, err
	}
	if out.Discrepancy, err = metrics.Discrepancy(ref, alts); err != nil {
		return out, err
	}
	out.Disagreement, err = metrics.Disagreement(alts)
	return out, err
}
