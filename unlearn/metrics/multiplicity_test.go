package metrics

import (
	"math"
	"testing"
)

func TestMultiplicity(t *testing.T) {
	ref := []int{0, 1, 1, 0, 1}
	alts := [][]int{
		{0, 1, 0, 0, 1}, // differs on example 2
		{1, 1, 0, 0, 1}, // differs on 0 and 2
		{0, 1, 1, 0, 0}, // differs on 4
	}
	// Examples 0, 2, 4 have a dissenting alternative: 3/5.
	if got, err := Ambiguity(ref, alts); err != nil || got != 0.6 {
		t.Errorf("Ambiguity = %v, %v; want 0.6", got, err)
	}
	// Per alternative 1/5, 2/5, 1/5: the maximum is 2/5.
	if got, err := Discrepancy(ref, alts); err != nil || got != 0.4 {
		t.Errorf("Discrepancy = %v, %v; want 0.4", got, err)
	}
	// Among the alternatives alone: example 0 (0,1,0), 2 (0,0,1), 4 (1,1,0).
	if got, err := Disagreement(alts); err != nil || got != 0.6 {
		t.Errorf("Disagreement = %v, %v; want 0.6", got, err)
	}
	// With the reference included, the same examples: 3/5.
	if got, err := Disagreement(append([][]int{ref}, alts...)); err != nil || got != 0.6 {
		t.Errorf("Disagreement(with ref) = %v, %v; want 0.6", got, err)
	}
	same := [][]int{ref, ref}
	if a, _ := Ambiguity(ref, same); a != 0 {
		t.Errorf("Ambiguity of identical models = %v", a)
	}
	if d, _ := Disagreement([][]int{ref}); d != 0 {
		t.Errorf("Disagreement of one model = %v", d)
	}
	for name, err := range map[string]error{
		"ambiguity length":  func() error { _, err := Ambiguity(ref, [][]int{{1}}); return err }(),
		"no alternatives":   func() error { _, err := Discrepancy(ref, nil); return err }(),
		"no examples":       func() error { _, err := Ambiguity(nil, [][]int{{}}); return err }(),
		"no models":         func() error { _, err := Disagreement(nil); return err }(),
		"disagreement size": func() error { _, err := Disagreement([][]int{{1, 2}, {1}}); return err }(),
	} {
		if err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

func TestRashomonCapacity(t *testing.T) {
	h := func(p float64) float64 { return -p*math.Log2(p) - (1-p)*math.Log2(1-p) }
	for _, c := range []struct {
		name  string
		probs [][]float64
		want  float64
	}{
		{"agree", [][]float64{{0.7, 0.3}, {0.7, 0.3}}, 1},
		{"disjoint", [][]float64{{1, 0}, {0, 1}}, 2},
		{"three disjoint of four classes", [][]float64{{1, 0, 0, 0}, {0, 1, 0, 0}, {0, 0, 0, 1}}, 3},
		// Z channel with crossover ½: C = log2(1 + ½·½^1) = log2 1.25.
		{"Z channel", [][]float64{{1, 0}, {0.5, 0.5}}, 1.25},
		// Binary symmetric channel: C = 1 − H(0.1) bits.
		{"BSC", [][]float64{{0.9, 0.1}, {0.1, 0.9}}, math.Exp2(1 - h(0.1))},
	} {
		got, err := RashomonCapacity(c.probs)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if math.Abs(got-c.want) > 1e-9 {
			t.Errorf("%s: RashomonCapacity = %.15g, want %.15g", c.name, got, c.want)
		}
	}
	for _, bad := range [][][]float64{nil, {{0.5, 0.4}}, {{1, 0}, {1}}, {{-0.5, 1.5}}} {
		if _, err := RashomonCapacity(bad); err == nil {
			t.Errorf("RashomonCapacity(%v): no error", bad)
		}
	}
}
