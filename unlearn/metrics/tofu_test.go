package metrics

import (
	"math"
	"testing"
)

func TestProbability(t *testing.T) {
	for _, c := range []struct{ nll, want float64 }{
		{0, 1},
		{math.Ln2, 0.5},
		{2 * math.Ln2, 0.25},
		{math.Inf(1), 0},
	} {
		if got := Probability(c.nll); math.Abs(got-c.want) > 1e-15 {
			t.Errorf("Probability(%v) = %v, want %v", c.nll, got, c.want)
		}
	}
	// (0.5 + 0.25)/2
	if got := MeanProbability([]float64{math.Ln2, 2 * math.Ln2}); math.Abs(got-0.375) > 1e-15 {
		t.Errorf("MeanProbability = %v, want 0.375", got)
	}
	if got := MeanProbability(nil); !math.IsNaN(got) {
		t.Errorf("MeanProbability(nil) = %v, want NaN", got)
	}
}

func TestNormalizedProbability(t *testing.T) {
	// p_c = 0.5, wrong 0.25 + 0.25: 0.5/(1 + 1e-10).
	got := NormalizedProbability(math.Ln2, []float64{2 * math.Ln2, 2 * math.Ln2})
	if want := 0.5 / (1 + 1e-10); math.Abs(got-want) > 1e-16 {
		t.Errorf("NormalizedProbability = %.17g, want %.17g", got, want)
	}
	// No wrong options: p_c/(p_c + 1e-10).
	got = NormalizedProbability(0, nil)
	if want := 1 / (1 + 1e-10); math.Abs(got-want) > 1e-16 {
		t.Errorf("NormalizedProbability(no options) = %.17g, want %.17g", got, want)
	}
}

func TestTruthRatio(t *testing.T) {
	for _, c := range []struct {
		name string
		para float64
		pert []float64
		want float64
	}{
		// Perturbed NLLs ln2 and ln8 average to 2·ln2, so the numerator is
		// the geometric mean of 0.5 and 0.125, 0.25; the paraphrase has 0.5.
		{"geometric", math.Ln2, []float64{math.Ln2, 3 * math.Ln2}, 0.25 / (0.5 + 1e-10)},
		{"equal", 1.5, []float64{1.5, 1.5, 1.5}, math.Exp(-1.5) / (math.Exp(-1.5) + 1e-10)},
		{"prefers wrong", 2 * math.Ln2, []float64{0}, 1 / (0.25 + 1e-10)},
	} {
		if got := TruthRatio(c.para, c.pert); math.Abs(got-c.want) > 1e-15*c.want {
			t.Errorf("%s: TruthRatio = %.17g, want %.17g", c.name, got, c.want)
		}
	}
	if got := TruthRatio(1, nil); !math.IsNaN(got) {
		t.Errorf("TruthRatio(no perturbed) = %v, want NaN", got)
	}
}

func TestTruthRatioAggregators(t *testing.T) {
	tr := []float64{0.5, 2, 1}
	// min(0.5, 1/0.5) = 0.5, min(2, 1/2) = 0.5, min(1, 1/(1+1e-10)).
	want := (0.5 + 1/(2+1e-10) + 1/(1+1e-10)) / 3
	if got := TruthRatioCloserTo1(tr); math.Abs(got-want) > 1e-16 {
		t.Errorf("TruthRatioCloserTo1 = %.17g, want %.17g", got, want)
	}
	// max(0, 1−0.5) = 0.5, max(0, 1−2) = 0, max(0, 1−0.25) = 0.75.
	if got, want := TruthRatioTrueBetter([]float64{0.5, 2, 0.25}), 1.25/3; math.Abs(got-want) > 1e-16 {
		t.Errorf("TruthRatioTrueBetter = %.17g, want %.17g", got, want)
	}
	if !math.IsNaN(TruthRatioCloserTo1(nil)) || !math.IsNaN(TruthRatioTrueBetter(nil)) {
		t.Error("aggregators of nothing should be NaN")
	}
}

func TestModelUtility(t *testing.T) {
	for _, c := range []struct {
		values []float64
		want   float64
	}{
		{[]float64{1, 0.5, 0.25}, 3.0 / 7}, // 3/(1+2+4)
		{[]float64{0.4}, 0.4},
		{[]float64{0.9, 0, 0.8}, 0}, // a zero component gives 0, as scipy.stats.hmean
		{[]float64{0.6, 0.6, 0.6, 0.6}, 0.6},
	} {
		got, err := ModelUtility(c.values...)
		if err != nil {
			t.Fatalf("ModelUtility(%v): %v", c.values, err)
		}
		if math.Abs(got-c.want) > 1e-15 {
			t.Errorf("ModelUtility(%v) = %.17g, want %.17g", c.values, got, c.want)
		}
	}
	for _, bad := range [][]float64{nil, {0.5, -0.1}, {math.NaN()}} {
		if _, err := ModelUtility(bad...); err == nil {
			t.Errorf("ModelUtility(%v): no error", bad)
		}
	}
}

func TestMean(t *testing.T) {
	if got := Mean([]float64{1, 2, 3, 4}); got != 2.5 {
		t.Errorf("Mean = %v, want 2.5", got)
	}
	if !math.IsNaN(Mean(nil)) {
		t.Error("Mean(nil) should be NaN")
	}
}
