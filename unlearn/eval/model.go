// Package eval runs the evaluations of unlearning on a model: greedy
// answers and their accuracy, the likelihood of answers, and the scores of
// package metrics (truth ratio, forget quality, ROUGE, membership
// inference, model utility) over the splits of a benchmark.
package eval

import (
	"context"
	"fmt"

	"github.com/gomlx/compute"

	"github.com/lethe-ml/lethe/data/tokenizer"
	"github.com/lethe-ml/lethe/decoding"
	"github.com/lethe-ml/lethe/models"
	"github.com/lethe-ml/lethe/train/dropout"
)

// Model is a model under evaluation: weights, the hooks that apply an
// adapter (none for full weights), its tokenizer and backend.
type Model struct {
	M         *models.Model
	Hooks     models.Hooks
	Tokenizer *tokenizer.Tokenizer
	Backend   compute.Backend
	// BatchSize is how many prompts run together [32].
	BatchSize int

	gen    *models.Generator
	scorer *models.Scorer
	// Abstain, when set, decides which prompts the model refuses to answer
	// (Key Space Detection): their answer is Refusal, without generating.
	Abstain func(ctx context.Context, prompts []string) ([]bool, error)
	Refusal string

	// Dropout is the regularizer DropoutMultiplicity samples with (made
	// on first use; share one between the Models of one models.Model, as
	// it owns variables of the model's store).
	Dropout *dropout.Regularizer

	// training builds generation graphs in training mode (dropout draws
	// new masks from the store's generator at every call).
	training bool
}

func (m *Model) batch() int {
	if m.BatchSize <= 0 {
		return 32
	}
	return m.BatchSize
}

// Refresh makes the model's next evaluation see changed weights.
func (m *Model) Refresh() { m.M.WeightsChanged() }

// Answers returns the greedy continuation of each prompt, up to maxNew
// tokens or the first token of stop (e.g. "\n"), decoded.
func (m *Model) Answers(ctx context.Context, prompts []string, maxNew int, stop string) ([]string, error) {
	var ids []int
	if stop != "" {
		enc, err := m.Tokenizer.Encode(stop, false)
		if err != nil {
			return nil, err
		}
		if len(enc.IDs) != 1 {
			return nil, fmt.Errorf("eval: stop text %q is %d tokens, want 1", stop, len(enc.IDs))
		}
		ids = enc.IDs
	}
	return m.AnswersUntil(ctx, prompts, maxNew, ids)
}

// AnswersUntil is Answers with stop token ids.
func (m *Model) AnswersUntil(ctx context.Context, prompts []string, maxNew int, stopIDs []int) ([]string, error) {
	if m.gen == nil {
		m.gen = models.NewGenerator(m.M, m.Backend)
		m.gen.Hooks = m.Hooks
		m.gen.ShareWeights = m.training
	}
	out := make([]string, len(prompts))
	if m.Abstain != nil {
		refuse, err := m.Abstain(ctx, prompts)
		if err != nil {
			return nil, err
		}
		var keep []string
		var where []int
		for i, r := range refuse {
			if r {
				out[i] = m.Refusal
			} else {
				keep, where = append(keep, prompts[i]), append(where, i)
			}
		}
		inner := *m
		inner.Abstain = nil
		ans, err := inner.AnswersUntil(ctx, keep, maxNew, stopIDs)
		m.gen = inner.gen
		if err != nil {
			return nil, err
		}
		for j, i := range where {
			out[i] = ans[j]
		}
		return out, nil
	}
	cfg := decoding.Defaults()
	cfg.MaxNewTokens = maxNew
	cfg.StopTokenIDs = stopIDs
	for start := 0; start < len(prompts); start += m.batch() {
		end := min(start+m.batch(), len(prompts))
		var ids [][]int
		for _, p := range prompts[start:end] {
			enc, err := m.Tokenizer.Encode(p, true)
			if err != nil {
				return nil, err
			}
			ids = append(ids, enc.IDs)
		}
		g, err := m.gen.Generate(ctx, ids, models.GenerateOptions{Config: cfg})
		if err != nil {
			return nil, err
		}
		for i, toks := range g.Tokens {
			s, err := m.Tokenizer.Decode(toks, true)
			if err != nil {
				return nil, err
			}
			out[start+i] = s
		}
	}
	return out, nil
}

// Completion is a completion's score under a prompt.
type Completion = models.Score

// Score scores each completion after its prompt (only the completion's
// tokens), with token statistics (models.Scorer.TokenStats).
func (m *Model) Score(ctx context.Context, prompts, completions []string) ([]Completion, error) {
	if len(prompts) != len(completions) {
		return nil, fmt.Errorf("eval: %d prompts, %d completions", len(prompts), len(completions))
	}
	if m.scorer == nil {
		m.scorer = models.NewScorer(m.M, m.Backend)
		m.scorer.Hooks = m.Hooks
		m.scorer.TokenStats = true
		m.scorer.BatchSize = m.batch()
	}
	ids := make([][]int, len(prompts))
	labels := make([][]int, len(prompts))
	for i := range prompts {
		p, err := m.Tokenizer.Encode(prompts[i], true)
		if err != nil {
			return nil, err
		}
		c, err := m.Tokenizer.Encode(completions[i], false)
		if err != nil {
			return nil, err
		}
		ids[i] = append(append([]int(nil), p.IDs...), c.IDs...)
		labels[i] = make([]int, len(ids[i]))
		for j := range ids[i] {
			labels[i][j] = models.IgnoreIndex
			if j >= len(p.IDs) {
				labels[i][j] = ids[i][j]
			}
		}
	}
	return m.scorer.Score(ctx, ids, labels)
}
