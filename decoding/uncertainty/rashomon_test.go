package uncertainty

import (
	"math"
	"slices"
	"testing"
)

func TestRashomon(t *testing.T) {
	losses := []float64{0.50, 0.52, 0.60, 0.49, 0.55}
	preds := [][]int{
		{1, 1, 1, 1}, // member
		{0, 1, 0, 0}, // member
		{1, 0, 0, 1}, // loss 0.60: out
		{0, 1, 1, 1}, // best, the reference
		{1, 1, 1, 1}, // loss 0.55: out
	}
	got, err := Rashomon(losses, 0.05, preds, nil)
	if err != nil {
		t.Fatal(err)
	}
	// Bound 0.49 + 0.05: masks 0, 1, 3. Their losses deviate from the
	// mean 151/300 by −1/300, 5/300, −4/300: std = √(42/3)/300 = √14/300.
	if !slices.Equal(got.Members, []int{0, 1, 3}) || got.Best != 3 {
		t.Errorf("Members %v, Best %d; want [0 1 3], 3", got.Members, got.Best)
	}
	if got.MinLoss != 0.49 || got.MaxLoss != 0.52 || !closeTo(got.StdLoss, math.Sqrt(14)/300, 1e-12) {
		t.Errorf("losses min %v max %v std %v; want 0.49 0.52 %v", got.MinLoss, got.MaxLoss, got.StdLoss, math.Sqrt(14)/300)
	}
	// Against mask 3 = (0,1,1,1): mask 0 differs on example 0, mask 1 on
	// examples 2 and 3. Ambiguity 3/4, discrepancy 2/4. Among the three
	// members examples 0, 2 and 3 are not unanimous: 3/4.
	if got.Ambiguity != 0.75 || got.Discrepancy != 0.5 || got.Disagreement != 0.75 {
		t.Errorf("ambiguity %v discrepancy %v disagreement %v; want 0.75 0.5 0.75", got.Ambiguity, got.Discrepancy, got.Disagreement)
	}

	// An outside reference (the model without dropout): every member is
	// an alternative. Against (1,1,1,1): mask 0 agrees, mask 1 differs on
	// examples 0, 2, 3 and mask 3 on 0: ambiguity and discrepancy 3/4.
	withRef, err := Rashomon(losses, 0.05, preds, []int{1, 1, 1, 1})
	if err != nil {
		t.Fatal(err)
	}
	if withRef.Ambiguity != 0.75 || withRef.Discrepancy != 0.75 || withRef.Disagreement != 0.75 {
		t.Errorf("with reference: %+v", withRef)
	}

	// ε = 0: the best mask alone, no multiplicity.
	alone, err := Rashomon(losses, 0, preds, nil)
	if err != nil || !slices.Equal(alone.Members, []int{3}) || alone.StdLoss != 0 || alone.Ambiguity != 0 || alone.Discrepancy != 0 || alone.Disagreement != 0 {
		t.Errorf("ε = 0: %+v, %v", alone, err)
	}
	// Without predictions: the set and its losses only.
	lossOnly, err := Rashomon(losses, 0.1, nil, nil)
	if err != nil || len(lossOnly.Members) != 4 || lossOnly.MaxLoss != 0.55 || !math.IsNaN(lossOnly.Ambiguity) {
		t.Errorf("no predictions: %+v, %v", lossOnly, err)
	}

	for name, c := range map[string]struct {
		losses []float64
		eps    float64
		preds  [][]int
		ref    []int
	}{
		"no masks":     {nil, 0.1, nil, nil},
		"negative eps": {losses, -1, nil, nil},
		"NaN loss":     {[]float64{0.5, math.NaN()}, 0.1, nil, nil},
		"rows":         {losses, 0.1, preds[:2], nil},
		"ref only":     {losses, 0.1, nil, []int{1}},
		"ragged":       {[]float64{1, 1}, 0.1, [][]int{{1, 2}, {1}}, nil},
		"ref length":   {losses, 0.1, preds, []int{1}},
		"no examples":  {[]float64{1, 1}, 0.1, [][]int{{}, {}}, nil},
	} {
		if _, err := Rashomon(c.losses, c.eps, c.preds, c.ref); err == nil {
			t.Errorf("Rashomon(%s): no error", name)
		}
	}
}

func TestRashomonCapacities(t *testing.T) {
	probs := [][][]float64{
		{{1, 0}, {0.7, 0.3}},
		{{0, 1}, {0.7, 0.3}},
		{{0.5, 0.5}, {0, 1}}, // not a member
	}
	got, err := RashomonCapacities(probs, []int{0, 1})
	if err != nil {
		t.Fatal(err)
	}
	// Disjoint predictions: 2 classes' worth; identical ones: 1.
	if len(got) != 2 || math.Abs(got[0]-2) > 1e-9 || math.Abs(got[1]-1) > 1e-9 {
		t.Errorf("RashomonCapacities = %v, want [2 1]", got)
	}
	for name, members := range map[string][]int{"none": nil, "out of range": {0, 3}} {
		if _, err := RashomonCapacities(probs, members); err == nil {
			t.Errorf("RashomonCapacities(%s): no error", name)
		}
	}
	if _, err := RashomonCapacities([][][]float64{{{1, 0}}, {}}, []int{0, 1}); err == nil {
		t.Error("RashomonCapacities(ragged): no error")
	}
	if _, err := RashomonCapacities([][][]float64{{{0.5, 0.4}}}, []int{0}); err == nil {
		t.Error("RashomonCapacities(not a distribution): no error")
	}
}
