package mc

import (
	"context"
	"math"
	"testing"

	"github.com/lethe-ml/lethe/internal/backend"
	"github.com/lethe-ml/lethe/models"
	"github.com/lethe-ml/lethe/train/dropout"
)

func load(t *testing.T) *models.Model {
	t.Helper()
	m, err := models.Load("../../models/testdata/hf/llama", models.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// TestZeroRateGivesZeroMI is the acceptance line: with dropout rate 0 the
// K passes agree and the mutual information is exactly 0; the predictive
// entropy then equals the expected entropy, which equals the entropy of
// the model's own next-token distribution, and every pass gives the
// model's log-probability of the token (models.Scorer).
func TestZeroRateGivesZeroMI(t *testing.T) {
	b, _, err := backend.New("go:ops_sequential")
	if err != nil {
		t.Fatal(err)
	}
	m := load(t)
	s, err := NewScorer(m, b, Options{Passes: 4, NoDropout: true})
	if err != nil {
		t.Fatal(err)
	}
	prompt, completion := []int{1, 17, 42, 99}, []int{7, 250, 3}
	seq, err := s.Score(context.Background(), prompt, completion)
	if err != nil {
		t.Fatal(err)
	}
	ref, err := models.NewScorer(m, b).Score(context.Background(), [][]int{append(append([]int{}, prompt...), completion...)}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i, tok := range seq.Tokens {
		if tok.MutualInformation != 0 || tok.PredictiveEntropy != tok.ExpectedEntropy {
			t.Errorf("token %d: MI %g, PE %g, EE %g", i, tok.MutualInformation, tok.PredictiveEntropy, tok.ExpectedEntropy)
		}
		want := ref[0].LogProbs[len(prompt)-1+i]
		for k, lp := range tok.LogProbs {
			if math.Abs(lp-want) > 1e-5 {
				t.Errorf("token %d pass %d: log-prob %.6f, the model's %.6f", i, k, lp, want)
			}
		}
	}
	if seq.MeanMI != 0 || seq.LogProbStd > 1e-6 {
		t.Errorf("mean MI %g, log-prob std %g", seq.MeanMI, seq.LogProbStd)
	}
}

// TestDropoutGivesPositiveMI: with dropout the passes differ, the mutual
// information is positive and grows with the rate, PE = EE + MI, and a
// seed reproduces the scores.
func TestDropoutGivesPositiveMI(t *testing.T) {
	b, _, err := backend.New("go:ops_sequential")
	if err != nil {
		t.Fatal(err)
	}
	m := load(t)
	prompt, completion := []int{1, 17, 42, 99}, []int{7, 250, 3}
	var last float64
	for _, rate := range []float64{0.1, 0.4} {
		s, err := NewScorer(m, b, Options{Passes: 8, Dropout: dropout.Config{Residual: rate}, Seed: 3})
		if err != nil {
			t.Fatal(err)
		}
		a, err := s.Score(context.Background(), prompt, completion)
		if err != nil {
			t.Fatal(err)
		}
		c, err := s.Score(context.Background(), prompt, completion)
		if err != nil {
			t.Fatal(err)
		}
		if a.MeanMI != c.MeanMI {
			t.Errorf("rate %g: the same seed gave MI %g and %g", rate, a.MeanMI, c.MeanMI)
		}
		for i, tok := range a.Tokens {
			if !(tok.MutualInformation > 0) || math.Abs(tok.PredictiveEntropy-tok.ExpectedEntropy-tok.MutualInformation) > 1e-12 {
				t.Errorf("rate %g token %d: %+v", rate, i, tok)
			}
		}
		if !(a.MeanMI > last) {
			t.Errorf("rate %g: mean MI %g, not above %g at the lower rate", rate, a.MeanMI, last)
		}
		last = a.MeanMI
	}
}
