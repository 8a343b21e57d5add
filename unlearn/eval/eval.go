package eval

import (
	"context"
	"fmt"
	"math"

	"github.com/lethe-ml/lethe/unlearn/metrics"
)

// Item is one question of an unlearning benchmark (a facts.Example, a TOFU
// row): the prompt, the short answer, and the paraphrased and perturbed
// answers of the truth ratio, all as completions of the prompt.
type Item struct {
	Prompt string
	// Answer is the completion trained on (" Paris\n"); Short is the
	// answer a greedy generation must give ("Paris").
	Answer, Short string
	Paraphrased   string
	Perturbed     []string
}

// Correct decides whether a greedy generation answers an item.
type Correct func(generated, short string) bool

// Options configure Evaluate.
type Options struct {
	// MaxNewTokens bounds greedy answers [16]; Stop ends them ["\n"],
	// or StopIDs when set (e.g. a chat template's end-of-turn ids).
	MaxNewTokens int
	Stop         string
	StopIDs      []int
	// Correct judges answers (required).
	Correct Correct
	// MinK is the fraction of Min-K% and Min-K%++ [0.4].
	MinK float64
}

// SplitResult holds an evaluation's per-item values on one split, for
// metrics that compare models (forget quality) or splits (membership
// inference).
type SplitResult struct {
	// Correct says whether each greedy answer is right; Answers are they.
	Correct []bool
	Answers []string
	// AnswerNLL is the mean NLL of each answer's tokens; TruthRatio is the
	// truth ratio of each item (NaN without paraphrase or perturbed
	// answers); RougeRecall compares the greedy answer with the short one.
	AnswerNLL, TruthRatio, RougeRecall []float64
	// Membership-inference scores per item, higher meaning "less like a
	// training member" (package metrics): LOSS, zlib, Min-K%, Min-K%++.
	Loss, Zlib, MinK, MinKPP []float64
	// Memorised is the fraction of answer tokens that are the argmax.
	Memorised []float64
}

// Accuracy is the fraction of items answered correctly.
func (r *SplitResult) Accuracy() float64 {
	if len(r.Correct) == 0 {
		return math.NaN()
	}
	n := 0
	for _, c := range r.Correct {
		if c {
			n++
		}
	}
	return float64(n) / float64(len(r.Correct))
}

// Split evaluates a model on items.
func (m *Model) Split(ctx context.Context, items []Item, opts Options) (*SplitResult, error) {
	if opts.Correct == nil {
		return nil, fmt.Errorf("eval: no Correct function")
	}
	if opts.MaxNewTokens == 0 {
		opts.MaxNewTokens = 16
	}
	if opts.Stop == "" {
		opts.Stop = "\n"
	}
	if opts.MinK == 0 {
		opts.MinK = 0.4
	}
	r := &SplitResult{}
	prompts := make([]string, len(items))
	answers := make([]string, len(items))
	for i, it := range items {
		prompts[i], answers[i] = it.Prompt, it.Answer
	}
	gen, err := m.answers(ctx, prompts, opts)
	if err != nil {
		return nil, err
	}
	r.Answers = gen
	for i, it := range items {
		r.Correct = append(r.Correct, opts.Correct(gen[i], it.Short))
		r.RougeRecall = append(r.RougeRecall, metrics.RougeL(gen[i], it.Short).Recall)
	}
	sc, err := m.Score(ctx, prompts, answers)
	if err != nil {
		return nil, err
	}
	for i, s := range sc {
		r.AnswerNLL = append(r.AnswerNLL, s.Loss)
		r.Loss = append(r.Loss, metrics.LossScore(s.LogProbs))
		r.Zlib = append(r.Zlib, metrics.ZlibScore(s.Loss, items[i].Answer))
		r.MinK = append(r.MinK, metrics.MinK(s.LogProbs, opts.MinK))
		variance := make([]float64, len(s.Std))
		for j, sd := range s.Std {
			variance[j] = sd * sd
		}
		mkpp, err := metrics.MinKPlusPlus(s.LogProbs, s.Mean, variance, opts.MinK)
		if err != nil {
			return nil, err
		}
		r.MinKPP = append(r.MinKPP, mkpp)
		top := 0
		for _, t := range s.Top {
			if t {
				top++
			}
		}
		r.Memorised = append(r.Memorised, float64(top)/float64(max(len(s.Top), 1)))
	}
	// Truth ratio: the paraphrase and every perturbed answer, scored in one
	// pass.
	var tp, tc []string
	for _, it := range items {
		if it.Paraphrased == "" || len(it.Perturbed) == 0 {
			continue
		}
		tp, tc = append(tp, it.Prompt), append(tc, it.Paraphrased)
		for _, p := range it.Perturbed {
			tp, tc = append(tp, it.Prompt), append(tc, p)
		}
	}
	ts, err := m.Score(ctx, tp, tc)
	if err != nil {
		return nil, err
	}
	k := 0
	for _, it := range items {
		if it.Paraphrased == "" || len(it.Perturbed) == 0 {
			r.TruthRatio = append(r.TruthRatio, math.NaN())
			continue
		}
		para := ts[k].Loss
		var pert []float64
		for j := range it.Perturbed {
			pert = append(pert, ts[k+1+j].Loss)
		}
		k += 1 + len(it.Perturbed)
		r.TruthRatio = append(r.TruthRatio, metrics.TruthRatio(para, pert))
	}
	return r, nil
}

// answers generates with the options' stop ids or stop text.
func (m *Model) answers(ctx context.Context, prompts []string, opts Options) ([]string, error) {
	if len(opts.StopIDs) > 0 {
		return m.AnswersUntil(ctx, prompts, max(opts.MaxNewTokens, 1), opts.StopIDs)
	}
	stop := opts.Stop
	if stop == "" {
		stop = "\n"
	}
	return m.Answers(ctx, prompts, max(opts.MaxNewTokens, 1), stop)
}

// finite drops NaNs.
func finite(x []float64) []float64 {
	var out []float64
	for _, v := range x {
		if !math.IsNaN(v) {
			out = append(out, v)
		}
	}
	return out
}
