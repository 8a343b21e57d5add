package eval

import (
	"context"
	"testing"

	"github.com/lethe-ml/lethe/data/tokenizer"
	"github.com/lethe-ml/lethe/internal/backend"
	"github.com/lethe-ml/lethe/models"
	"github.com/lethe-ml/lethe/unlearn/facts"
)

// TestDropoutMultiplicity on the shipped facts model: at rate 0 every
// sample answers as the model does (no multiplicity); at a high rate the
// samples disagree with it on some questions.
func TestDropoutMultiplicity(t *testing.T) {
	const dir = "../quickstart/models/full"
	b, _, err := backend.New("go:ops_sequential")
	if err != nil {
		t.Fatal(err)
	}
	ex, err := facts.Read("../quickstart/models/facts.parquet")
	if err != nil {
		t.Fatal(err)
	}
	var items []Item
	for _, e := range facts.Split(ex, facts.SplitRetain)[:24] {
		items = append(items, Item{Prompt: e.Prompt(), Answer: e.Completion(), Short: e.Answer})
	}
	for _, tc := range []struct {
		rate    float64
		atLeast float64
	}{{0, 0}, {0.3, 0.05}} {
		m, err := models.Load(dir, models.LoadOptions{})
		if err != nil {
			t.Fatal(err)
		}
		tok, err := tokenizer.Load(dir)
		if err != nil {
			t.Fatal(err)
		}
		em := &Model{M: m, Tokenizer: tok, Backend: b}
		mul, err := em.DropoutMultiplicity(context.Background(), items, Options{Correct: facts.Correct}, tc.rate, 3, 1)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("rate %g: %+v", tc.rate, mul)
		if tc.rate == 0 && (mul.Ambiguity != 0 || mul.Discrepancy != 0 || mul.Disagreement != 0) {
			t.Errorf("rate 0: %+v, want no multiplicity", mul)
		}
		if tc.rate > 0 && mul.Ambiguity < tc.atLeast {
			t.Errorf("rate %g: ambiguity %.3f, want at least %.2f", tc.rate, mul.Ambiguity, tc.atLeast)
		}
	}
}
