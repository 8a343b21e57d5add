package hints

import (
	"fmt"

	"github.com/gomlx/compute/dtypes"
	. "github.com/gomlx/gomlx/core/graph"
)

// StandardizeEps is the ε of Standardize, BatchNorm's default.
const StandardizeEps = 1e-5

// Standardize returns x [B, T, H] with each feature standardised over the
// tokens that mask [B, T] counts (nil: all), as a BatchNorm without affine
// parameters in training mode:
//
//	x̂[b,t,j] = (x[b,t,j] − μ_j) / √(σ²_j + ε),
//	μ_j = Σ m·x_j / N,  σ²_j = Σ m·(x_j − μ_j)² / N,  N = max(Σ m, 1),
//
// with the biased variance and ε = StandardizeEps. Uncounted positions are
// transformed too (with the same μ, σ); the losses of this package ignore
// them. The result is float32. V_kD (Miles et al., CVPR 2024) normalises
// the teacher's features this way before the loss; Hints stops the
// gradient before it, so nothing flows into the teacher.
func Standardize(x, mask *Node) *Node {
	x = float32Of(x)
	m := tokenMask(x, mask) // [B, T]
	n := countTokens(m)     // scalar
	w := InsertAxes(m, -1)  // [B, T, 1]
	h := x.Shape().Dimensions[2]
	mu := Reshape(Div(ReduceSum(Mul(x, w), 0, 1), n), 1, 1, h)
	d := Sub(x, mu)
	variance := Reshape(Div(ReduceSum(Mul(Square(d), w), 0, 1), n), 1, 1, h)
	return Div(d, Sqrt(AddScalar(variance, StandardizeEps)))
}

// tokenMask returns mask as float32 1/0 (1 where mask ≠ 0), or ones
// [B, T] for x's first two axes when mask is nil.
func tokenMask(x, mask *Node) *Node {
	dims := x.Shape().Dimensions
	if mask == nil {
		return Ones(x.Graph(), shapeF32(dims[0], dims[1]))
	}
	if md := mask.Shape().Dimensions; len(md) != 2 || md[0] != dims[0] || md[1] != dims[1] {
		panic(fmt.Errorf("hints: mask has shape %v, want [%d, %d] for states %v", md, dims[0], dims[1], dims))
	}
	return ConvertDType(NotEqual(mask, ZerosLike(mask)), dtypes.Float32)
}

// countTokens is max(Σ m, 1): the divisor of the per-token means (an empty
// mask gives 0, not NaN).
func countTokens(m *Node) *Node { return MaxScalar(ReduceAllSum(m), 1) }

// maskedMean is Σ m·e / max(Σ m, 1) for per-token values e [B, T].
func maskedMean(e, m *Node) *Node { return Div(ReduceAllSum(Mul(e, m)), countTokens(m)) }

// mseLoss is the mean over counted tokens of the mean squared error over
// the features: (1/N) Σ_{b,t} m·(1/H) Σ_j (p − t)².
func mseLoss(p, t, m *Node) *Node {
	return maskedMean(ReduceMean(Square(Sub(p, t)), -1), m)
}

// cosineEps bounds the norms' product from below in cosineLoss, as
// torch's cosine_similarity (eps 1e-8).
const cosineEps = 1e-8

// cosineLoss is the mean over counted tokens of 1 − cos(p, t), with
// cos = p·t / max(‖p‖·‖t‖, 1e-8).
func cosineLoss(p, t, m *Node) *Node {
	dot := ReduceSum(Mul(p, t), -1)
	norms := Sqrt(MaxScalar(Mul(ReduceSum(Square(p), -1), ReduceSum(Square(t), -1)), cosineEps*cosineEps))
	return maskedMean(OneMinus(Div(dot, norms)), m)
}
