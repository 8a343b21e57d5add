package models

import (
	"context"
	"math"
	"testing"

	"github.com/gomlx/gomlx/core/tensors"
)

// TestScoreMatchesLoss checks that per-token log-probabilities reproduce
// transformers' loss (the mean NLL over all 22 predicted tokens), that
// labels select the scored tokens, and that batching changes nothing.
func TestScoreMatchesLoss(t *testing.T) {
	b := testBackend(t)
	for _, arch := range []string{"llama", "gpt2", "mixtral"} {
		m := loadFixture(t, arch)
		exp := loadExpected(t, arch)
		ids32, shape := exp.ints(t, "input_ids")
		ids := [][]int{toInts(ids32[:shape[1]]), toInts(ids32[shape[1]:])}
		s := NewScorer(m, b)
		scores, err := s.Score(context.Background(), ids, nil)
		if err != nil {
			t.Fatal(err)
		}
		sum, n := 0.0, 0
		for _, sc := range scores {
			if sc.Tokens != 11 || len(sc.LogProbs) != 11 {
				t.Fatalf("%s: %d tokens scored, want 11", arch, sc.Tokens)
			}
			for _, lp := range sc.LogProbs {
				sum -= lp
			}
			n += sc.Tokens
		}
		want := float64(exp.floats(t, "loss")[0])
		if got := sum / float64(n); math.Abs(got-want) > 1e-5 {
			t.Errorf("%s: mean NLL %.7f, transformers' loss %.7f", arch, got, want)
		}
		// One sequence at a time, and only the second half scored.
		s.BatchSize = 1
		labels := make([][]int, 2)
		for r := range ids {
			labels[r] = append([]int(nil), ids[r]...)
			for j := 0; j < 6; j++ {
				labels[r][j] = IgnoreIndex
			}
		}
		half, err := s.Score(context.Background(), ids, labels)
		if err != nil {
			t.Fatal(err)
		}
		for r := range ids {
			if half[r].Tokens != 6 {
				t.Fatalf("%s: %d tokens with labels, want 6", arch, half[r].Tokens)
			}
			for j, lp := range half[r].LogProbs {
				if d := math.Abs(lp - scores[r].LogProbs[5+j]); d > 1e-5 {
					t.Errorf("%s: row %d token %d: %g alone vs %g in a batch", arch, r, j, lp, scores[r].LogProbs[5+j])
				}
			}
		}
	}
}

// TestWeightsChanged checks that a Scorer compiled before a weight change
// sees the new weights once WeightsChanged is called (the Go backend embeds
// weights in compiled graphs).
func TestWeightsChanged(t *testing.T) {
	m := loadFixture(t, "llama")
	s := NewScorer(m, testBackend(t))
	ids := [][]int{{5, 6, 7, 8}}
	before, err := s.Score(context.Background(), ids, nil)
	if err != nil {
		t.Fatal(err)
	}
	v, _ := m.Param("lm_head.weight")
	v.MustSetValue(tensors.FromFlatDataAndDimensions(make([]float32, 320*64), v.Shape().Dimensions...))
	m.WeightsChanged()
	after, err := s.Score(context.Background(), ids, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := -math.Log(320) // zero logits: uniform over the vocabulary
	for i, lp := range after[0].LogProbs {
		if math.Abs(lp-want) > 1e-5 || math.Abs(before[0].LogProbs[i]-want) < 1e-3 {
			t.Errorf("token %d: log-prob %g before, %g after, want %g after", i, before[0].LogProbs[i], lp, want)
		}
	}
}

// TestScoreTokenStats checks Mean, Std and Top against transformers'
// logits: μ = Σ p log p, σ² = Σ p (log p)² − μ², and whether the label is
// the argmax.
func TestScoreTokenStats(t *testing.T) {
	b := testBackend(t)
	m := loadFixture(t, "llama")
	exp := loadExpected(t, "llama")
	ids32, shape := exp.ints(t, "input_ids")
	T := shape[1]
	logits := exp.floats(t, "logits")
	V := len(logits) / (shape[0] * T)
	s := NewScorer(m, b)
	s.TokenStats = true
	sc, err := s.Score(context.Background(), [][]int{toInts(ids32[:T])}, nil)
	if err != nil {
		t.Fatal(err)
	}
	tops := 0
	for pos := 0; pos+1 < T; pos++ {
		row := logits[pos*V : (pos+1)*V]
		mx := math.Inf(-1)
		arg := 0
		for i, v := range row {
			if float64(v) > mx {
				mx, arg = float64(v), i
			}
		}
		z := 0.0
		for _, v := range row {
			z += math.Exp(float64(v) - mx)
		}
		mu, m2 := 0.0, 0.0
		for _, v := range row {
			lp := float64(v) - mx - math.Log(z)
			mu += math.Exp(lp) * lp
			m2 += math.Exp(lp) * lp * lp
		}
		sd := math.Sqrt(m2 - mu*mu)
		if math.Abs(sc[0].Mean[pos]-mu) > 1e-4 || math.Abs(sc[0].Std[pos]-sd) > 1e-4 {
			t.Errorf("token %d: mean %.6f std %.6f, want %.6f %.6f", pos, sc[0].Mean[pos], sc[0].Std[pos], mu, sd)
		}
		if want := arg == int(ids32[pos+1]); sc[0].Top[pos] != want {
			t.Errorf("token %d: top %v, want %v", pos, sc[0].Top[pos], want)
		}
		if sc[0].Top[pos] {
			tops++
		}
	}
	t.Logf("%d of %d tokens are the argmax", tops, T-1)
}
