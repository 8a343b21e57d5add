package dropout

import (
	"encoding/json"
	"math"
	"slices"
	"testing"

	"github.com/gomlx/compute/dtypes"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"

	"github.com/lethe-ml/lethe/models"
)

// TestLayerDrop checks LayerDrop (Fan et al. 2019) on the llama and gpt2
// fixtures: rate 1 skips every layer, giving the logits of the model with
// no layer (embeddings → final norm → head, built by PrunedModel); rate 0
// is bitwise the identity.
func TestLayerDrop(t *testing.T) {
	for _, arch := range []string{"llama", "gpt2"} {
		t.Run(arch, func(t *testing.T) {
			m := loadModel(t, arch)
			b := fixtureBatch(t, arch)
			plain, _ := plainLogits(t, m, b)
			none, err := PrunedModel(m, nil)
			if err != nil {
				t.Fatal(err)
			}
			embedOnly, _ := plainLogits(t, none, b)
			reg, err := New(m, Config{LayerDrop: LayerDropConfig{Rate: 1}, Schedule: ScheduleConfig{Name: ScheduleLate, Steps: 1}})
			if err != nil {
				t.Fatal(err)
			}
			exec := forwardExec(t, m, models.Options{Hooks: reg.Hooks()})
			for _, tc := range []struct {
				step int
				want []float32
				what string
			}{{0, plain, "rate 0: all layers"}, {1, embedOnly, "rate 1: no layer"}} {
				if err := reg.SetStep(tc.step, 10); err != nil {
					t.Fatal(err)
				}
				out, _ := run(t, exec, idsTensor(b))
				if d := maxAbsDiff(out[0], tc.want); d != 0 {
					t.Errorf("%s: logits differ by %g", tc.what, d)
				}
			}
			if d := maxAbsDiff(plain, embedOnly); d < 1e-3 {
				t.Errorf("the layers change nothing (%g): the test proves nothing", d)
			}
		})
	}
}

// TestDropLayerRate checks that DropLayer skips a layer with probability
// p: over N = 2000 independent draws the fraction skipped is p within 5σ.
func TestDropLayerRate(t *testing.T) {
	const N = 2000
	store := model.NewStore()
	if err := store.SetRNGStateFromSeed(3); err != nil {
		t.Fatal(err)
	}
	exec, err := model.NewExec(testBackend(t), store, func(_ *model.Scope, rate *Node) *Node {
		g := rate.Graph()
		in, out := Scalar(g, dtypes.Float32, 0), Scalar(g, dtypes.Float32, 1)
		var kept []*Node
		for range N {
			kept = append(kept, InsertAxes(DropLayer(store, in, out, rate), 0))
		}
		return ReduceAllSum(Concatenate(kept, 0))
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []float64{0, 0.2, 0.5, 1} {
		out, _ := run(t, exec, tensors.FromScalar(float32(p)))
		skipped := 1 - float64(out[0][0])/N
		if sd := math.Sqrt(p * (1 - p) / N); math.Abs(skipped-p) > 5*sd {
			t.Errorf("p=%g: skipped %.4f of the layers, want %g ± %.4f", p, skipped, p, 5*sd)
		}
	}
}

// TestEveryOther checks the "every other" pruning rule of Fan et al.:
// depth d (1-based) is dropped when d ≡ 0 (mod ⌊1/p⌋).
func TestEveryOther(t *testing.T) {
	tests := []struct {
		n    int
		p    float64
		want []int
	}{
		{12, 0.5, []int{0, 2, 4, 6, 8, 10}},
		{12, 0.25, []int{0, 1, 2, 4, 5, 6, 8, 9, 10}},
		{6, 0.3, []int{0, 1, 3, 4}},
		{6, 1.0 / 3, []int{0, 1, 3, 4}},
		{6, 0.34, []int{0, 2, 4}},
		{4, 0, []int{0, 1, 2, 3}},
	}
	for _, tc := range tests {
		if got := EveryOther(tc.n, tc.p); !slices.Equal(got, tc.want) {
			t.Errorf("EveryOther(%d, %g) = %v, want %v", tc.n, tc.p, got, tc.want)
		}
	}
}

// TestPruneEqualsKeptLayers checks inference pruning: the Prune hook that
// keeps some layers gives the logits of PrunedModel, a model holding only
// those layers' weights (within 1e-5), for each choice of layers; the
// pruned config says so.
func TestPruneEqualsKeptLayers(t *testing.T) {
	for _, arch := range []string{"llama", "qwen3", "gpt2"} {
		m := loadModel(t, arch)
		b := fixtureBatch(t, arch)
		for _, keep := range [][]int{{0}, {1}, {0, 1}} {
			layer, err := Prune(m.Config.NumLayers, keep)
			if err != nil {
				t.Fatal(err)
			}
			out, _ := run(t, forwardExec(t, m, models.Options{Hooks: models.Hooks{Layer: layer}}), idsTensor(b))
			pm, err := PrunedModel(m, keep)
			if err != nil {
				t.Fatal(err)
			}
			want, _ := plainLogits(t, pm, b)
			if d := maxAbsDiff(out[0], want); d > 1e-5 {
				t.Errorf("%s keep %v: pruned logits differ from the kept layers' model by %g", arch, keep, d)
			}
			var n int
			key := "num_hidden_layers"
			if arch == "gpt2" {
				key = "n_layer"
			}
			if err := json.Unmarshal(pm.Config.Raw[key], &n); err != nil || n != len(keep) || pm.Config.NumLayers != len(keep) {
				t.Errorf("%s keep %v: pruned config has %s %s, NumLayers %d", arch, keep, key, pm.Config.Raw[key], pm.Config.NumLayers)
			}
		}
		if _, err := Prune(m.Config.NumLayers, []int{1, 0}); err == nil {
			t.Errorf("Prune accepted layers out of order")
		}
		if _, err := PrunedModel(m, []int{0, 5}); err == nil {
			t.Errorf("PrunedModel accepted a missing layer")
		}
	}
}

// TestInferenceHooks checks that layer_drop.keep reaches InferenceHooks.
func TestInferenceHooks(t *testing.T) {
	m := loadModel(t, "llama")
	b := fixtureBatch(t, "llama")
	reg, err := New(m, Config{LayerDrop: LayerDropConfig{Rate: 0.1, Keep: []int{1}}})
	if err != nil {
		t.Fatal(err)
	}
	out, _ := run(t, forwardExec(t, m, models.Options{Hooks: reg.InferenceHooks()}), idsTensor(b))
	pm, err := PrunedModel(m, []int{1})
	if err != nil {
		t.Fatal(err)
	}
	want, _ := plainLogits(t, pm, b)
	if d := maxAbsDiff(out[0], want); d > 1e-5 {
		t.Errorf("inference hooks differ from the pruned model by %g", d)
	}
	if _, err := New(m, Config{LayerDrop: LayerDropConfig{Keep: []int{0, 2}}}); err == nil {
		t.Errorf("New accepted layer 2 of a 2-layer model")
	}
}
