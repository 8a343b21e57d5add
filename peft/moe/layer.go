package moe

import (
	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/shapes"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/ml/model"

	"github.com/lethe-ml/lethe/peft"
)

// layer is one adapted module: its router and experts.
//
// Shapes: x [..., in], y [..., out], flattened to S tokens. lethe stores
// the router [in, N], the experts' A stacked [N, in, r] and B stacked
// [N, r, out] (the file's lora_router.weight [N, in], lora_A.experts.E.weight
// [r, in] and lora_B.experts.E.weight [out, r] transposed, as LoRA's); a
// shared A is [in, r], a shared B [r, out].
type layer struct {
	mod    peft.Module
	scale  float64
	router *model.Variable
	a, b   *model.Variable
}

// paramName is the trainer's name of one of the layer's tensors.
func (l *layer) paramName(adapter, kind string) string {
	return peft.KeyPrefix + l.mod.Name + "." + kind + "." + adapter + ".weight"
}

// key returns a file key of the layer ("lora_router.weight", ...).
func (l *layer) key(suffix string) string { return peft.KeyPrefix + l.mod.Name + "." + suffix }

// forward adds the mixture's update to y for input x (see the package
// documentation), in float32:
//
//	y + s · Σₑ gₑ · (dropout(x)·Aₑ)·Bₑ
//
// with the gates g from the router on x. The experts run batched: h = x·A
// [S, N, r] (or [S, r] for a shared A, broadcast over the experts), scaled
// by the gates, then one product with B seen as [N·r, out] (or, for a
// shared B, the gated sum over the experts times B).
func (l *layer) forward(a *Adapter, x, y *Node, train bool) *Node {
	g := x.Graph()
	cfg := &a.cfg
	N, r := cfg.Experts, cfg.R
	in, out := l.mod.In, l.mod.Out
	lead := x.Shape().Dimensions[:x.Rank()-1]
	S := prod(lead)
	x32 := Reshape(ConvertDType(x, dtypes.Float32), S, in)

	logits := MatMul(x32, l.router.NodeValue(g)) // [S, N]
	rt := route(logits, cfg.TopK, cfg.capacity(S))
	gates := rt.gates
	if train {
		a.record(g, balanceLoss(rt, cfg.TopK))
		if cfg.ExpertDropout > 0 {
			gates = expertDropout(a.m.Store, gates, cfg.ExpertDropout)
		}
	}

	xd := x32
	if train && cfg.Dropout > 0 {
		xd = dropout(a.m.Store, x32, cfg.Dropout)
	}
	A := l.a.NodeValue(g)
	B := l.b.NodeValue(g)
	if train && cfg.SharedDropout > 0 {
		switch cfg.Share {
		case ShareA:
			A = dropout(a.m.Store, A, cfg.SharedDropout)
		case ShareB:
			B = dropout(a.m.Store, B, cfg.SharedDropout)
		}
	}
	gate3 := BroadcastToDims(InsertAxes(gates, -1), S, N, r) // [S, N, r]
	var upd *Node
	switch cfg.Share {
	case ShareA:
		h := MatMul(xd, A)                             // [S, r]
		h = BroadcastToDims(InsertAxes(h, 1), S, N, r) // [S, N, r]
		upd = MatMul(Reshape(Mul(h, gate3), S, N*r), Reshape(B, N*r, out))
	case ShareB:
		h := DotGeneral(xd, []int{1}, nil, A, []int{1}, nil) // [S, N, r]
		upd = MatMul(ReduceSum(Mul(h, gate3), 1), B)         // [S, r]·[r, out]
	default:
		h := DotGeneral(xd, []int{1}, nil, A, []int{1}, nil) // [S, N, r]
		upd = MatMul(Reshape(Mul(h, gate3), S, N*r), Reshape(B, N*r, out))
	}
	upd = Reshape(MulScalar(upd, l.scale), append(append([]int{}, lead...), out)...)
	y32 := ConvertDType(y, dtypes.Float32)
	return ConvertDType(Add(y32, upd), y.DType())
}

// dropout is inverted dropout with the store's random generator.
func dropout(store *model.Store, x *Node, p float64) *Node {
	keep := store.RandomBernoulli(Scalar(x.Graph(), dtypes.Float32, 1-p), shapes.Make(x.DType(), x.Shape().Dimensions...))
	return MulScalar(Mul(x, keep), 1/(1-p))
}
