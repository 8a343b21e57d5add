package hints

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/gomlx/compute/dtypes"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/ml/model"
)

// mixOnce evaluates Mix on constant losses (u nil: the store's draws).
func mixOnce(t *testing.T, losses, weights []float64, drop DropConfig, u []float64) (loss float64, kept []float64) {
	t.Helper()
	out := run(t, model.NewStore(), func(g *Graph) []*Node {
		ls := make([]*Node, len(losses))
		for i, l := range losses {
			ls[i] = Scalar(g, ls0DType, l)
		}
		var un *Node
		if u != nil {
			un = constant(g, u, len(u))
		}
		l, k := Mix(ls, weights, drop, un)
		return []*Node{l, k}
	})
	return out[0][0], out[1]
}

func TestMix(t *testing.T) {
	cases := []struct {
		name            string
		losses, weights []float64
		drop            DropConfig
		u               []float64
		want            float64
		kept            []float64
	}{
		{"weighted mean", []float64{1, 3, 5}, []float64{1, 1, 2}, DropConfig{}, nil, (1 + 3 + 10) / 4.0, []float64{1, 1, 1}},
		{"weights normalise", []float64{1, 3, 5}, []float64{10, 10, 20}, DropConfig{}, nil, (1 + 3 + 10) / 4.0, []float64{1, 1, 1}},
		{"one teacher", []float64{2.5}, []float64{3}, DropConfig{Prob: 0.5}, nil, 2.5, []float64{1}},
		// Teacher 1 has the highest loss: kept whatever its draw; teacher
		// 0 drawn below 0.5 is dropped, teacher 2 above is kept.
		{"drop", []float64{2, 7, 4}, []float64{1, 2, 3}, DropConfig{Prob: 0.5}, []float64{0.2, 0.1, 0.9}, (2*7 + 3*4) / 5.0, []float64{0, 1, 1}},
		{"drop all but worst", []float64{2, 7, 4}, []float64{1, 2, 3}, DropConfig{Prob: 0.5}, []float64{0.1, 0.1, 0.1}, 7, []float64{0, 1, 0}},
		{"keep all", []float64{2, 7, 4}, []float64{1, 2, 3}, DropConfig{Prob: 0.5}, []float64{0.5, 0.6, 0.7}, (2 + 14 + 12) / 6.0, []float64{1, 1, 1}},
	}
	for _, c := range cases {
		got, kept := mixOnce(t, c.losses, c.weights, c.drop, c.u)
		if !near(got, c.want, 1e-6) || !slices.Equal(kept, c.kept) {
			t.Errorf("%s: Mix = %.6f kept %v, want %.6f kept %v", c.name, got, kept, c.want, c.kept)
		}
	}
}

// TestMixGradient checks that the gradient reaches the kept losses only,
// with their normalised weights.
func TestMixGradient(t *testing.T) {
	out := run(t, model.NewStore(), func(g *Graph) []*Node {
		ls := []*Node{Scalar(g, ls0DType, 2), Scalar(g, ls0DType, 7), Scalar(g, ls0DType, 4)}
		l, _ := Mix(ls, []float64{1, 2, 3}, DropConfig{Prob: 0.5}, constant(g, []float64{0.2, 0.1, 0.9}, 3))
		return Gradient(l, ls...)
	})
	want := []float64{0, 2.0 / 5, 3.0 / 5}
	for i, w := range want {
		if !near(out[i][0], w, 1e-6) {
			t.Errorf("dL/dL_%d = %.6f, want %.6f", i, out[i][0], w)
		}
	}
}

// TestMixDropSeeded draws from the store's generator: a seed reproduces
// the dropped sets, which always keep the worst-matched teacher.
func TestMixDropSeeded(t *testing.T) {
	losses := []float64{3, 1, 2, 0.5}
	const steps = 64
	draw := func(seed int64) []string {
		store := model.NewStore()
		if err := store.SetRNGStateFromSeed(seed); err != nil {
			t.Fatal(err)
		}
		step := newExec(t, store, func(g *Graph) []*Node {
			ls := make([]*Node, len(losses))
			for i, l := range losses {
				ls[i] = Scalar(g, ls0DType, l)
			}
			l, k := Mix(ls, []float64{1, 1, 1, 1}, DropConfig{Prob: 0.5}, nil)
			return []*Node{l, k}
		})
		var sets []string
		for range steps {
			out := step()
			kept := out[1]
			if kept[0] != 1 {
				t.Fatalf("seed %d: the teacher of highest loss was dropped: kept %v", seed, kept)
			}
			var sum, n float64
			for i, k := range kept {
				sum += k * losses[i]
				n += k
			}
			if !near(out[0][0], sum/n, 1e-6) {
				t.Fatalf("seed %d: Mix %.6f with kept %v, want %.6f", seed, out[0][0], kept, sum/n)
			}
			sets = append(sets, fmt.Sprint(kept))
		}
		return sets
	}
	a, b, c := draw(42), draw(42), draw(43)
	if !slices.Equal(a, b) {
		t.Errorf("seed 42 drew different dropped sets:\n%v\n%v", a, b)
	}
	if slices.Equal(a, c) {
		t.Errorf("seeds 42 and 43 drew the same dropped sets")
	}
	// Each of the 3 other teachers is dropped about half the time.
	dropped := 0
	for _, s := range a {
		dropped += strings.Count(s, "0")
	}
	if frac := float64(dropped) / (3 * steps); frac < 0.3 || frac > 0.7 {
		t.Errorf("dropped %.2f of the droppable terms, want about 0.5", frac)
	}
}

func TestMixErrors(t *testing.T) {
	cases := []struct {
		name    string
		weights []float64
		drop    DropConfig
		want    string
	}{
		{"lengths", []float64{1}, DropConfig{}, "2 losses with 1 weights"},
		{"zero weight", []float64{1, 0}, DropConfig{}, "weight 1 is 0"},
		{"prob", []float64{1, 1}, DropConfig{Prob: 1}, "drop probability 1 is outside [0, 1)"},
	}
	for _, c := range cases {
		_, err := model.ExecOnce(testBackend(t), model.NewStore(), func(scope *model.Scope, g *Graph) *Node {
			l, _ := Mix([]*Node{Scalar(g, ls0DType, 1), Scalar(g, ls0DType, 2)}, c.weights, c.drop, nil)
			return l
		})
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want one containing %q", c.name, err, c.want)
		}
	}
}

// ls0DType is the dtype of the test losses.
var ls0DType = dtypes.Float32
