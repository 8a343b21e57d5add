package moe

import (
	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/shapes"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/ml/model"
)

// routing is the router's decision for S tokens and N experts.
type routing struct {
	probs    *Node // [S, N] softmax of the router logits
	assigned *Node // [S, N] 1 for the top-k experts of each token
	gates    *Node // [S, N] weights of the experts' outputs
}

// route turns router logits [S, N] (float32) into gates: top-k of the
// softmax (ties: the lower expert index first), renormalised over the k,
// then capacity (0: none): an expert keeps the first `capacity` tokens
// routed to it, in token order, and the later ones get gate 0.
func route(logits *Node, k, capacity int) routing {
	g := logits.Graph()
	N := logits.Shape().Dimensions[1]
	p := Softmax(logits, -1)
	pe := InsertAxes(p, -1) // [S, N, 1]: expert e
	pj := InsertAxes(p, -2) // [S, 1, N]: competitor j
	jIdx := Iota(g, shapes.Make(dtypes.Int32, N, N), 1)
	eIdx := Iota(g, shapes.Make(dtypes.Int32, N, N), 0)
	earlier := ExpandLeftToRank(LessThan(jIdx, eIdx), 3)
	beats := Or(GreaterThan(pj, pe), And(Equal(pj, pe), earlier)) // [S, N, N]
	rank := ReduceSum(ConvertDType(beats, dtypes.Int32), -1)      // [S, N]
	// The selection is piecewise constant: no gradient flows through it.
	assigned := StopGradient(ConvertDType(LessThan(rank, Scalar(g, dtypes.Int32, k)), dtypes.Float32))
	kept := Mul(p, assigned)
	gates := Div(kept, ReduceAndKeep(kept, ReduceSum, -1))
	if capacity > 0 {
		pos := CumSum(assigned, 0) // [S, N] 1-based position of the token in its expert's queue
		within := StopGradient(ConvertDType(LessOrEqual(pos, Scalar(g, dtypes.Float32, float64(capacity))), dtypes.Float32))
		gates = Mul(gates, within)
	}
	return routing{probs: p, assigned: assigned, gates: gates}
}

// expertDropout drops each gate with probability p, scaling the kept ones
// by 1/(1−p).
func expertDropout(store *model.Store, gates *Node, p float64) *Node {
	keep := store.RandomBernoulli(Scalar(gates.Graph(), dtypes.Float32, 1-p), gates.Shape())
	return MulScalar(Mul(gates, keep), 1/(1-p))
}

// balanceLoss is Switch Transformer's load-balancing loss N·Σₑ fₑ·Pₑ, with
// fₑ the fraction of the k·S routing slots that went to e (before capacity)
// and Pₑ the mean router probability of e. It is 1 for uniform routing.
func balanceLoss(r routing, k int) *Node {
	dims := r.probs.Shape().Dimensions
	S, N := dims[0], dims[1]
	f := DivScalar(ReduceSum(r.assigned, 0), float64(k*S)) // [N]
	P := ReduceMean(r.probs, 0)                            // [N]
	return MulScalar(ReduceAllSum(Mul(StopGradient(f), P)), float64(N))
}
