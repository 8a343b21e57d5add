package uncertainty

import (
	"math"
	"testing"
)

func TestSequence(t *testing.T) {
	tokens := []TokenScores{
		{PredictiveEntropy: 1.0, ExpectedEntropy: 0.75, MutualInformation: 0.25},
		{PredictiveEntropy: 0.5, ExpectedEntropy: 0.5, MutualInformation: 0},
		{PredictiveEntropy: 2.25, ExpectedEntropy: 1.25, MutualInformation: 1.0},
	}
	got, err := Sequence(tokens)
	if err != nil {
		t.Fatal(err)
	}
	want := SequenceScores{
		Tokens:                3,
		MeanPredictiveEntropy: 3.75 / 3, MaxPredictiveEntropy: 2.25,
		MeanExpectedEntropy: 2.5 / 3, MaxExpectedEntropy: 1.25,
		MeanMutualInformation: 1.25 / 3, MaxMutualInformation: 1.0,
	}
	if got != want {
		t.Errorf("Sequence = %+v\nwant %+v", got, want)
	}
	if _, err := Sequence(nil); err == nil {
		t.Error("Sequence(nil): no error")
	}
}

func TestLengthNormalizedLogProb(t *testing.T) {
	for _, c := range []struct {
		name   string
		passes [][]float64
		want   float64
	}{
		{"one pass", [][]float64{{-1, -2, -3}}, -2},
		// Per pass −2 and −0.5.
		{"two passes", [][]float64{{-1, -3}, {-0.5, -0.5}}, -1.25},
		{"certain", [][]float64{{0, 0}, {0, 0}}, 0},
		{"impossible token", [][]float64{{-1, math.Inf(-1)}, {-1, -1}}, math.Inf(-1)},
	} {
		got, err := LengthNormalizedLogProb(c.passes)
		if err != nil || got != c.want {
			t.Errorf("%s: LengthNormalizedLogProb = %v, %v; want %v", c.name, got, err, c.want)
		}
	}
	for name, passes := range map[string][][]float64{
		"none": nil, "no tokens": {{}}, "ragged": {{-1, -1}, {-1}}, "positive": {{0.5}}, "NaN": {{math.NaN()}},
	} {
		if _, err := LengthNormalizedLogProb(passes); err == nil {
			t.Errorf("LengthNormalizedLogProb(%s): no error", name)
		}
	}
}

func TestSequenceEntropy(t *testing.T) {
	// Three sampled answers with log P = −2, −4, −6 and 1, 2, 3 tokens.
	lp := []float64{-2, -4, -6}
	if got, err := SequenceEntropy(lp); err != nil || got != 4 {
		t.Errorf("SequenceEntropy = %v, %v; want 4", got, err)
	}
	if got, err := LengthNormalizedSequenceEntropy(lp, []int{1, 2, 3}); err != nil || got != 2 {
		t.Errorf("LengthNormalizedSequenceEntropy = %v, %v; want 2", got, err)
	}
	// The same answer every time, with probability 1/2: ln 2.
	if got, _ := SequenceEntropy([]float64{-math.Ln2, -math.Ln2}); got != math.Ln2 {
		t.Errorf("SequenceEntropy(repeated) = %v, want ln 2", got)
	}
	if _, err := SequenceEntropy(nil); err == nil {
		t.Error("SequenceEntropy(nil): no error")
	}
	if _, err := SequenceEntropy([]float64{0.1}); err == nil {
		t.Error("SequenceEntropy(positive): no error")
	}
	for name, c := range map[string]struct {
		lp []float64
		n  []int
	}{
		"none": {nil, nil}, "lengths": {[]float64{-1}, []int{1, 2}}, "zero length": {[]float64{-1}, []int{0}}, "NaN": {[]float64{math.NaN()}, []int{1}},
	} {
		if _, err := LengthNormalizedSequenceEntropy(c.lp, c.n); err == nil {
			t.Errorf("LengthNormalizedSequenceEntropy(%s): no error", name)
		}
	}
}
