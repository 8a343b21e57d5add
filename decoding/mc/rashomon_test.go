package mc

import (
	"context"
	"math"
	"testing"

	"github.com/lethe-ml/lethe/decoding"
	"github.com/lethe-ml/lethe/internal/backend"
	"github.com/lethe-ml/lethe/models"
)

// greedyExamples are prompts with the model's own greedy continuations:
// the base model gets every one right.
func greedyExamples(t *testing.T, m *models.Model, gen *models.Generator) []Example {
	t.Helper()
	var ex []Example
	for i := range 6 {
		p := []int{1, 10 + 7*i, 30 + 11*i, 200 - 9*i}
		g, err := gen.Generate(context.Background(), [][]int{p}, models.GenerateOptions{Config: decoding.GenerationConfig{MaxNewTokens: 4, NumBeams: 1, Temperature: 1, TopP: 1, TypicalP: 1, RepetitionPenalty: 1}})
		if err != nil {
			t.Fatal(err)
		}
		ex = append(ex, Example{Prompt: p, Completion: g.Tokens[0]})
	}
	return ex
}

// TestRashomon: the base loss is the model's own completion NLL
// (models.Scorer), the base model predicts its greedy continuations
// exactly, stronger dropout masks lose more, the tolerance selects the
// set, and the multiplicity numbers are those of unlearn/metrics on the
// set's correctness.
func TestRashomon(t *testing.T) {
	b, _, err := backend.New("go:ops_sequential")
	if err != nil {
		t.Fatal(err)
	}
	m := load(t)
	ex := greedyExamples(t, m, models.NewGenerator(m, b))
	var want, n float64
	for _, e := range ex {
		seq := append(append([]int{}, e.Prompt...), e.Completion...)
		sc, err := models.NewScorer(m, b).Score(context.Background(), [][]int{seq}, nil)
		if err != nil {
			t.Fatal(err)
		}
		for i := range e.Completion {
			want -= sc[0].LogProbs[len(e.Prompt)-1+i]
			n++
		}
	}
	want /= n
	var means []float64
	for _, rate := range []float64{0.02, 0.3} {
		r, err := NewRashomon(m, b, RashomonOptions{Masks: 6, Rate: rate, Epsilon: 1e9, Seed: 1})
		if err != nil {
			t.Fatal(err)
		}
		res, err := r.Evaluate(context.Background(), ex)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("rate %g: base loss %.4f accuracy %.2f; masks %v accuracies %v; ambiguity %.3f discrepancy %.3f disagreement %.3f",
			rate, res.BaseLoss, res.BaseAccuracy, res.Losses, res.Accuracies, res.Ambiguity, res.Discrepancy, res.Disagreement)
		if math.Abs(res.BaseLoss-want) > 1e-5 || res.BaseAccuracy != 1 {
			t.Errorf("base loss %.6f (scorer %.6f), accuracy %g", res.BaseLoss, want, res.BaseAccuracy)
		}
		if len(res.Set) != 6 || res.LossMin > res.LossMax {
			t.Errorf("epsilon 1e9: set %v, spread %g..%g", res.Set, res.LossMin, res.LossMax)
		}
		means = append(means, mean64(res.Losses))
		// Ambiguity: the fraction of examples some mask in the set gets
		// otherwise than the base model.
		flips := 0
		for i := range ex {
			for _, c := range res.Correct {
				if c[i] != res.BaseCorrect[i] {
					flips++
					break
				}
			}
		}
		if amb := float64(flips) / float64(len(ex)); res.Ambiguity != amb || res.Ambiguity < res.Discrepancy {
			t.Errorf("ambiguity %g, want %g; discrepancy %g", res.Ambiguity, amb, res.Discrepancy)
		}
	}
	if !(means[1] > means[0]) {
		t.Errorf("mean mask loss %.4f at rate 0.02, %.4f at 0.3", means[0], means[1])
	}
	// A zero tolerance keeps only masks at least as good as the best.
	r, _ := NewRashomon(m, b, RashomonOptions{Masks: 6, Rate: 0.3, Epsilon: 1e-12, Seed: 1})
	res, err := r.Evaluate(context.Background(), ex)
	if err != nil {
		t.Fatal(err)
	}
	best := res.BaseLoss
	for _, l := range res.Losses {
		best = math.Min(best, l)
	}
	for _, k := range res.Set {
		if res.Losses[k] > best+1e-12 {
			t.Errorf("mask %d (loss %g) in the set, best %g", k, res.Losses[k], best)
		}
	}
}
