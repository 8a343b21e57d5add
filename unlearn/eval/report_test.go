package eval

import (
	"math"
	"testing"
)

// TestSummarize checks a report against values computed by hand.
func TestSummarize(t *testing.T) {
	forget := &SplitResult{Correct: []bool{true, true, false, true}, AnswerNLL: []float64{0.1, 0.2, 0.3, 0.4},
		RougeRecall: []float64{1, 1, 0, 1}, TruthRatio: []float64{0.5, 2, math.NaN(), 1},
		Loss: []float64{0.1, 0.2, 0.3, 0.4}, Zlib: []float64{1, 2, 3, 4}, MinK: []float64{1, 2, 3, 4}, MinKPP: []float64{1, 2, 3, 4},
		Memorised: []float64{1, 0.5, 0, 1}}
	holdout := &SplitResult{Correct: []bool{false, false}, AnswerNLL: []float64{2, 3}, RougeRecall: []float64{0, 0},
		TruthRatio: []float64{1, 1}, Loss: []float64{0.25, 3}, Zlib: []float64{5, 6}, MinK: []float64{0, 0}, MinKPP: []float64{2.5, 2.5}}
	retain := &SplitResult{Correct: []bool{true, false}, AnswerNLL: []float64{math.Log(2), math.Log(4)},
		RougeRecall: []float64{1, 0.5}, TruthRatio: []float64{0.5, 0.25}}
	r := Summarize(forget, retain, holdout, nil, ReportOptions{Bootstrap: 200, Confidence: 0.9, Seed: 1})
	// MIA AUC = P(holdout score > forget score): holdout 0.25 beats 0.1 and
	// 0.2 (2 of 4), 3 beats all 4: 6/8.
	prob := (0.5 + 0.25) / 2
	rouge := 0.75
	tr := (0.5 + 0.75) / 2
	hm := 3 / (1/prob + 1/rouge + 1/tr)
	for _, c := range []struct {
		name      string
		got, want float64
	}{
		{"forget_accuracy", r.ForgetAccuracy, 0.75}, {"retain_accuracy", r.RetainAccuracy, 0.5}, {"holdout_accuracy", r.HoldoutAccuracy, 0},
		{"mia_auc", r.MIAAUC, 0.75}, {"model_utility", r.ModelUtility, hm},
		{"forget_truth_ratio", r.Extra["forget_truth_ratio"], (0.5 + 0.5 + 1) / 3},
		{"mia_zlib_auc", r.Extra["mia_zlib_auc"], 1}, {"mia_min_k_auc", r.Extra["mia_min_k_auc"], 0},
		{"mia_min_k_plus_plus_auc", r.Extra["mia_min_k_plus_plus_auc"], 0.5}, {"forget_exact_memorization", r.Extra["forget_exact_memorization"], 0.625},
	} {
		if math.Abs(c.got-c.want) > 1e-9 {
			t.Errorf("%s = %.6f, want %.6f", c.name, c.got, c.want)
		}
	}
	if r.ForgetQuality != nil {
		t.Errorf("forget quality without a reference: %v", *r.ForgetQuality)
	}
	if ci := r.CI["forget_accuracy"]; !(ci[0] <= 0.75 && 0.75 <= ci[1]) {
		t.Errorf("forget accuracy CI %v", ci)
	}
	ref := &SplitResult{TruthRatio: []float64{0.5, 2, 1}}
	if r := Summarize(forget, retain, holdout, ref, ReportOptions{}); r.ForgetQuality == nil || math.Abs(*r.ForgetQuality-1) > 1e-12 {
		t.Errorf("forget quality of identical truth ratios: %v, want 1", r.ForgetQuality)
	}
}
