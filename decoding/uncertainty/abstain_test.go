package uncertainty

import (
	"math"
	"slices"
	"testing"
)

// Five examples; sorted by uncertainty they are
// 0.1 right, 0.2 right, 0.35 wrong, 0.4 right, 0.8 wrong,
// so the selective accuracies at k = 1..5 are 1, 1, 2/3, 3/4, 3/5.
var (
	handScores  = []float64{0.1, 0.4, 0.35, 0.8, 0.2}
	handCorrect = []bool{true, true, false, false, true}
)

func TestAbstain(t *testing.T) {
	got := Abstain(handScores, 0.35)
	if want := []bool{false, true, false, true, false}; !slices.Equal(got, want) {
		t.Errorf("Abstain = %v, want %v", got, want)
	}
	if got := Abstain([]float64{math.NaN(), 1}, math.Inf(1)); !slices.Equal(got, []bool{true, false}) {
		t.Errorf("Abstain(NaN) = %v", got)
	}
}

func TestRiskCoverage(t *testing.T) {
	got, err := RiskCoverage(handScores, handCorrect)
	if err != nil {
		t.Fatal(err)
	}
	want := []CoveragePoint{
		{0.1, 0.2, 1, 0},
		{0.2, 0.4, 1, 0},
		{0.35, 0.6, 2.0 / 3, 1.0 / 3},
		{0.4, 0.8, 0.75, 0.25},
		{0.8, 1, 0.6, 0.4},
	}
	if len(got) != len(want) {
		t.Fatalf("RiskCoverage = %v", got)
	}
	for i := range want {
		g, w := got[i], want[i]
		if g.Threshold != w.Threshold || !closeTo(g.Coverage, w.Coverage, 1e-15) || !closeTo(g.Accuracy, w.Accuracy, 1e-15) || !closeTo(g.Risk, w.Risk, 1e-15) {
			t.Errorf("point %d = %+v, want %+v", i, g, w)
		}
	}
	// (0 + 0 + 1/3 + 1/4 + 2/5) / 5 = 59/300.
	if got, err := AURC(handScores, handCorrect); err != nil || !closeTo(got, 59.0/300, 1e-15) {
		t.Errorf("AURC = %v, %v; want 59/300", got, err)
	}
	for _, c := range []struct{ cov, want float64 }{
		{0.5, 2.0 / 3}, // ⌈2.5⌉ = 3 examples
		{0.8, 0.75},
		{1, 0.6},
		{0.2, 1},
		{0.01, 1},
	} {
		if got, err := AccuracyAtCoverage(handScores, handCorrect, c.cov); err != nil || !closeTo(got, c.want, 1e-15) {
			t.Errorf("AccuracyAtCoverage(%v) = %v, %v; want %v", c.cov, got, err, c.want)
		}
	}
	// Wrong answers {0.35, 0.8} against right {0.1, 0.2, 0.4}: 0.35 beats
	// two, 0.8 beats three: 5/6.
	if got, err := SelectiveAUROC(handScores, handCorrect); err != nil || !closeTo(got, 5.0/6, 1e-15) {
		t.Errorf("SelectiveAUROC = %v, %v; want 5/6", got, err)
	}
}

func TestRiskCoverageExtremes(t *testing.T) {
	correct := []bool{true, true, true, false, false}
	good := []float64{1, 2, 3, 4, 5} // every wrong answer last
	bad := []float64{5, 4, 3, 2, 1}  // every wrong answer first
	g, _ := AURC(good, correct)
	b, _ := AURC(bad, correct)
	// Good: risks 0, 0, 0, 1/4, 2/5. Bad: 1, 1, 2/3, 2/4, 2/5.
	if !closeTo(g, (0.25+0.4)/5, 1e-15) || !closeTo(b, (1+1+2.0/3+0.5+0.4)/5, 1e-15) {
		t.Errorf("AURC good %v, bad %v", g, b)
	}
	if a, _ := SelectiveAUROC(good, correct); a != 1 {
		t.Errorf("SelectiveAUROC(good) = %v", a)
	}
	if a, _ := SelectiveAUROC(bad, correct); a != 0 {
		t.Errorf("SelectiveAUROC(bad) = %v", a)
	}
}

func TestRiskCoverageTies(t *testing.T) {
	scores := []float64{2, 1, 2, 1}
	correct := []bool{true, true, true, false}
	pts, err := RiskCoverage(scores, correct)
	if err != nil {
		t.Fatal(err)
	}
	want := []CoveragePoint{{1, 0.5, 0.5, 0.5}, {2, 1, 0.75, 0.25}}
	if !slices.Equal(pts, want) {
		t.Errorf("RiskCoverage = %v, want %v", pts, want)
	}
	// Each tie group takes its step's risk: (2/4)·1/2 + (2/4)·1/4.
	if got, _ := AURC(scores, correct); got != 0.375 {
		t.Errorf("AURC = %v, want 0.375", got)
	}
	// Reordering tied examples changes nothing.
	if got, _ := AURC([]float64{1, 1, 2, 2}, []bool{false, true, true, true}); got != 0.375 {
		t.Errorf("AURC(reordered) = %v, want 0.375", got)
	}
	// One example of the first group (half right): 1/2. Three examples:
	// (1 + 1·1)/3.
	for _, c := range []struct{ cov, want float64 }{{0.25, 0.5}, {0.5, 0.5}, {0.75, 2.0 / 3}, {1, 0.75}} {
		if got, _ := AccuracyAtCoverage(scores, correct, c.cov); !closeTo(got, c.want, 1e-15) {
			t.Errorf("AccuracyAtCoverage(%v) = %v, want %v", c.cov, got, c.want)
		}
	}
	// Ties count one half: wrong {1} vs right {2, 1, 2}: (0 + 1/2)/3.
	if got, _ := SelectiveAUROC(scores, correct); !closeTo(got, 0.5/3, 1e-15) {
		t.Errorf("SelectiveAUROC = %v", got)
	}
	// 0.7·10 is 7.000000000000001 in float64: still 7 examples.
	ten := []float64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}
	tc := []bool{true, true, true, true, true, true, true, false, false, false}
	if got, _ := AccuracyAtCoverage(ten, tc, 0.7); got != 1 {
		t.Errorf("AccuracyAtCoverage(0.7) = %v, want 1", got)
	}
}

func TestThresholds(t *testing.T) {
	for _, c := range []struct {
		target float64
		want   CoveragePoint
		ok     bool
	}{
		{0.75, CoveragePoint{0.4, 0.8, 0.75, 0.25}, true},
		{0.8, CoveragePoint{0.2, 0.4, 1, 0}, true},
		{1, CoveragePoint{0.2, 0.4, 1, 0}, true},
		{0.5, CoveragePoint{0.8, 1, 0.6, 0.4}, true},
	} {
		got, ok, err := ThresholdForAccuracy(handScores, handCorrect, c.target)
		if err != nil || ok != c.ok || got.Threshold != c.want.Threshold || !closeTo(got.Coverage, c.want.Coverage, 1e-15) || !closeTo(got.Accuracy, c.want.Accuracy, 1e-15) {
			t.Errorf("ThresholdForAccuracy(%v) = %+v, %v, %v; want %+v", c.target, got, ok, err, c.want)
		}
	}
	// Every answer wrong: no threshold reaches 0.5.
	got, ok, err := ThresholdForAccuracy([]float64{1, 2}, []bool{false, false}, 0.5)
	if err != nil || ok || !math.IsInf(got.Threshold, -1) || got.Coverage != 0 {
		t.Errorf("ThresholdForAccuracy(unreachable) = %+v, %v, %v", got, ok, err)
	}
	for _, c := range []struct{ target, threshold, coverage float64 }{
		{0.5, 0.35, 0.6}, {0.6, 0.35, 0.6}, {0.2, 0.1, 0.2}, {1, 0.8, 1}, {0.01, 0.1, 0.2},
	} {
		got, err := ThresholdForCoverage(handScores, handCorrect, c.target)
		if err != nil || got.Threshold != c.threshold || !closeTo(got.Coverage, c.coverage, 1e-15) {
			t.Errorf("ThresholdForCoverage(%v) = %+v, %v; want threshold %v coverage %v", c.target, got, err, c.threshold, c.coverage)
		}
		// Abstaining at that threshold answers that fraction.
		answered := 0
		for _, a := range Abstain(handScores, got.Threshold) {
			if !a {
				answered++
			}
		}
		if float64(answered)/5 != got.Coverage {
			t.Errorf("threshold %v answers %d of 5, coverage %v", got.Threshold, answered, got.Coverage)
		}
	}
}

func TestECE(t *testing.T) {
	for _, c := range []struct {
		name    string
		conf    []float64
		correct []bool
		bins    int
		want    float64
	}{
		// Bins (0.9,1]: {0.95 ✓} gap 0.05; (0.8,0.9]: {0.85 ✗} gap 0.85;
		// (0.2,0.3]: {0.3 ✓, 0.25 ✗} acc 1/2, conf 0.275, gap 0.225 ×2;
		// (0,0.1]: {0.05 ✗} gap 0.05. (0.05+0.85+0.45+0.05)/5 = 0.28.
		{"ten bins", []float64{0.95, 0.85, 0.3, 0.25, 0.05}, []bool{true, false, true, false, false}, 0, 0.28},
		// One bin: |accuracy − mean confidence| = |2/5 − 0.48|.
		{"one bin", []float64{0.95, 0.85, 0.3, 0.25, 0.05}, []bool{true, false, true, false, false}, 1, 0.08},
		{"perfect", []float64{1, 1, 0, 0}, []bool{true, true, false, false}, 10, 0},
		// 0 falls in the first bin, 1 in the last.
		{"ends", []float64{0, 1}, []bool{true, false}, 10, 1},
		// Two bins: (0,0.5] {0.5 ✓} gap 0.5; (0.5,1] {0.75 ✓, 0.75 ✗} gap 0.25 ×2.
		{"two bins", []float64{0.5, 0.75, 0.75}, []bool{true, true, false}, 2, 1.0 / 3},
	} {
		got, err := ECE(c.conf, c.correct, c.bins)
		if err != nil || !closeTo(got, c.want, 1e-15) {
			t.Errorf("%s: ECE = %.17g, %v; want %v", c.name, got, err, c.want)
		}
	}
	for name, conf := range map[string][]float64{"above 1": {1.5}, "negative": {-0.1}, "NaN": {math.NaN()}} {
		if _, err := ECE(conf, []bool{true}, 10); err == nil {
			t.Errorf("ECE(%s): no error", name)
		}
	}
}

func TestSelectiveErrors(t *testing.T) {
	for name, c := range map[string]struct {
		scores  []float64
		correct []bool
	}{
		"empty":  {nil, nil},
		"length": {[]float64{1, 2}, []bool{true}},
		"NaN":    {[]float64{1, math.NaN()}, []bool{true, false}},
	} {
		if _, err := RiskCoverage(c.scores, c.correct); err == nil {
			t.Errorf("RiskCoverage(%s): no error", name)
		}
		if v, err := AURC(c.scores, c.correct); err == nil || !math.IsNaN(v) {
			t.Errorf("AURC(%s) = %v, %v", name, v, err)
		}
		if _, err := SelectiveAUROC(c.scores, c.correct); err == nil {
			t.Errorf("SelectiveAUROC(%s): no error", name)
		}
		if _, err := ECE(c.scores, c.correct, 10); err == nil {
			t.Errorf("ECE(%s): no error", name)
		}
	}
	if _, err := SelectiveAUROC([]float64{1, 2}, []bool{true, true}); err == nil {
		t.Error("SelectiveAUROC(all right): no error")
	}
	for _, cov := range []float64{0, -0.5, 1.5, math.NaN()} {
		if _, err := AccuracyAtCoverage(handScores, handCorrect, cov); err == nil {
			t.Errorf("AccuracyAtCoverage(%v): no error", cov)
		}
		if cov != 0 {
			if _, _, err := ThresholdForAccuracy(handScores, handCorrect, cov); err == nil {
				t.Errorf("ThresholdForAccuracy(%v): no error", cov)
			}
		}
		if _, err := ThresholdForCoverage(handScores, handCorrect, cov); err == nil {
			t.Errorf("ThresholdForCoverage(%v): no error", cov)
		}
	}
}
