package unlearn

import (
	"context"
	"testing"

	"github.com/lethe-ml/lethe/models"
)

func TestSensitiveNeurons(t *testing.T) {
	forget := [][]float64{{1, 4, 2, 0.1}, {3, 3, 3, 3}}
	retain := [][]float64{{1, 1, 4, 0.1}, {1, 3, 6, 0.5}}
	// ratios: layer 0: 1, 4, 0.5, 1 → top 2 (fraction 0.5): 1 and then 0 (stable order);
	// layer 1: 3, 1, 0.5, 6 → 3 and 0.
	got, err := SensitiveNeurons(forget, retain, 0.5)
	if err != nil {
		t.Fatal(err)
	}
	want := [][]int{{0, 1}, {0, 3}}
	for l := range want {
		if len(got[l]) != 2 || got[l][0] != want[l][0] || got[l][1] != want[l][1] {
			t.Errorf("layer %d: %v, want %v", l, got[l], want[l])
		}
	}
	if _, err := SensitiveNeurons(forget, retain, 1); err == nil {
		t.Error("fraction 1: no error")
	}
}

// TestDropNeurons: NeuronActivity has one positive mean magnitude per
// neuron and layer; a dropped neuron's row of the down projection (stored
// [neurons, hidden]) is zero, so it no longer writes to the residual
// stream, and the other rows are untouched.
func TestDropNeurons(t *testing.T) {
	b := testBackend(t)
	m, err := models.Load("../models/testdata/hf/llama", models.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	act, err := NeuronActivity(context.Background(), m, b, [][]int{{5, 9, 12, 40}, {7, 8}})
	if err != nil {
		t.Fatal(err)
	}
	if len(act) != m.Config.NumLayers || len(act[0]) != m.Config.IntermediateSize || act[0][0] <= 0 {
		t.Fatalf("activity shape %d×%d, first %g", len(act), len(act[0]), act[0][0])
	}
	if err := DropNeurons(m, [][]int{{3, 7}, {}}); err != nil {
		t.Fatal(err)
	}
	name := "model.layers.0.mlp.down_proj.weight"
	v, _ := m.Param(name)
	var w []float32
	v.MustValue().MustConstFlatData(func(f any) { w = append(w, f.([]float32)...) })
	dims := v.Shape().Dimensions // [intermediate, hidden]: stored [in, out]
	for _, k := range []int{3, 7} {
		for j := range dims[1] {
			if w[k*dims[1]+j] != 0 {
				t.Fatalf("neuron %d still writes %g", k, w[k*dims[1]+j])
			}
		}
	}
	nonzero := 0
	for _, x := range w[4*dims[1] : 5*dims[1]] {
		if x != 0 {
			nonzero++
		}
	}
	if nonzero == 0 {
		t.Error("a neuron that was not dropped lost its weights")
	}
}

// TestManyPromptLengths: prompts of 40 different lengths share a few
// padded graphs (the exec cache holds 32), and padding does not change a
// prompt's features.
func TestManyPromptLengths(t *testing.T) {
	b := testBackend(t)
	m, err := models.Load("../models/testdata/hf/llama", models.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var prompts [][]int
	for n := 1; n <= 40; n++ {
		p := make([]int, n)
		for i := range p {
			p[i] = (7*i + n) % 300
		}
		prompts = append(prompts, p)
	}
	if _, err := NeuronActivity(context.Background(), m, b, prompts); err != nil {
		t.Fatal(err)
	}
	d, err := NewKeySpaceDetector(context.Background(), m, b, models.Hooks{}, 1, prompts[:20], prompts[20:], 0)
	if err != nil {
		t.Fatal(err)
	}
	s, err := d.Scores(context.Background(), prompts[:3])
	if err != nil {
		t.Fatal(err)
	}
	for i, v := range s {
		if v < 1-1e-5 {
			t.Errorf("forget prompt %d scores %.6f against itself, want 1", i, v)
		}
	}
}
