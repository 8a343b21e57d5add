package hints

import (
	"fmt"
	"math"

	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/shapes"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/ml/model"
)

// DropConfig configures UNIC's teacher dropping (Sarıyıldız, Weinzaepfel,
// Lucas, Larlus, Kalantidis, "UNIC: Universal Classification Models via
// Multi-teacher Distillation", ECCV 2024): at each step every teacher's
// term but the one with the highest loss is dropped with probability Prob,
// so the teacher the student matches worst is always kept and the others'
// influence is balanced (naver/unic, modeling/teacher_dropping.py; UNIC
// uses 0.5).
type DropConfig struct {
	// Prob is the probability of dropping each teacher but the worst
	// matched one; 0 disables dropping.
	Prob float64
}

// Mix combines per-teacher losses (float scalars, one per teacher) into
// the multi-teacher objective of UNIC:
//
//	L = Σ_i c_i·w_i·L_i / Σ_i c_i·w_i
//
// with weights w_i > 0 (normalised, so only their ratios matter) and keep
// coefficients c_i ∈ {0, 1}: all 1 without dropping (L is then the
// weighted mean), otherwise c_i = 1 for the teacher with the highest L_i
// (the first of ties) and for every other teacher whose uniform draw
// u_i ≥ drop.Prob. At least one teacher is always kept. The coefficients
// carry no gradient.
//
// u [K] holds the K uniform draws in [0, 1) of this step; nil draws them
// from the graph's store random generator (model.GetStore(g)), which
// train.NewTrainer seeds from TrainerOptions.Seed, so a seeded run drops
// the same teachers at the same steps. Give u explicitly (e.g. from a
// seeded host generator, as a graph input) to control the draws.
//
// Mix returns the loss (float32) and the coefficients c [K] (float32), for
// logging. It panics (inside graph building) on mismatched lengths,
// non-positive weights or a probability outside [0, 1).
func Mix(losses []*Node, weights []float64, drop DropConfig, u *Node) (loss, kept *Node) {
	k := len(losses)
	if k == 0 {
		panic(fmt.Errorf("hints: Mix of no losses"))
	}
	if len(weights) != k {
		panic(fmt.Errorf("hints: Mix of %d losses with %d weights", k, len(weights)))
	}
	w := make([]float32, k)
	for i, x := range weights {
		if !(x > 0) || math.IsInf(x, 0) {
			panic(fmt.Errorf("hints: Mix: weight %d is %v; weights must be positive and finite", i, x))
		}
		w[i] = float32(x)
	}
	if !(drop.Prob >= 0 && drop.Prob < 1) {
		panic(fmt.Errorf("hints: Mix: drop probability %v is outside [0, 1)", drop.Prob))
	}
	g := losses[0].Graph()
	ls := make([]*Node, k)
	for i, l := range losses {
		if l.Shape().Rank() != 0 {
			panic(fmt.Errorf("hints: Mix: loss %d has shape %s, want a scalar", i, l.Shape()))
		}
		ls[i] = float32Of(l)
	}
	all := Stack(ls, 0) // [K]
	kept = Ones(g, shapeF32(k))
	if drop.Prob > 0 && k > 1 {
		if u == nil {
			store := model.GetStore(g)
			if store == nil {
				panic(fmt.Errorf("hints: Mix: no uniform draws given and the graph has no store to draw them from"))
			}
			u = store.RandomUniform(g, shapes.Make(dtypes.Float32, k))
		}
		if d := u.Shape().Dimensions; len(d) != 1 || d[0] != k {
			panic(fmt.Errorf("hints: Mix: uniform draws have shape %v, want [%d]", d, k))
		}
		top := ArgMax(StopGradient(all), 0, dtypes.Int32)
		isTop := Equal(Iota(g, shapes.Make(dtypes.Int32, k), 0), top)
		keep := Or(isTop, GreaterOrEqual(float32Of(u), Scalar(g, dtypes.Float32, drop.Prob)))
		kept = ConvertDType(keep, dtypes.Float32)
	}
	kept = StopGradient(kept)
	c := Mul(kept, Const(g, w))
	loss = Div(ReduceAllSum(Mul(c, all)), ReduceAllSum(c))
	return loss, kept
}
