package hints

import (
	"math"
	"math/rand/v2"

	"github.com/gomlx/compute/dtypes"
	. "github.com/gomlx/gomlx/core/graph"
)

// The matrix exponential of expSkew: a Taylor polynomial of degree
// taylorDegree on A/2^s, squared s times, with s the smallest integer such
// that ‖A‖₂/2^s ≤ 1 (by an upper bound of ‖A‖₂), up to maxSquarings. For
// ‖X‖₂ ≤ 1 the truncation error is below Σ_{k>12} 1/k! ≈ 1.7e-10, so the
// result is orthogonal to float32 rounding while ‖A‖₂ ≤ 2^maxSquarings.
const (
	taylorDegree = 12
	maxSquarings = 8
)

// expSkew returns exp(A) for a skew-symmetric A [n, n] (Aᵀ = −A), an
// orthogonal matrix, differentiably: the scaling s is chosen without
// gradient (exp(A) does not depend on it) and the squarings a data-dependent
// s calls for are selected with Where, so the graph is static.
//
// The bound on ‖A‖₂ is the smaller of the Frobenius norm and √‖A²‖∞ (for
// a skew-symmetric A, ‖A‖₂² = ‖AᵀA‖₂ = ‖A²‖₂ ≤ ‖A²‖∞, the largest absolute
// row sum), which for wide random matrices is much tighter.
func expSkew(a *Node) *Node {
	g := a.Graph()
	n := a.Shape().Dimensions[0]
	eye := DiagonalWithValue(ScalarOne(g, a.DType()), n)
	fixed := StopGradient(a)
	frob := Sqrt(ReduceAllSum(Square(fixed)))
	rows := Sqrt(ReduceAllMax(ReduceSum(Abs(MatMul(fixed, fixed)), 1)))
	bound := Min(frob, rows)
	// s = clamp(ceil(log2(bound)), 0, maxSquarings).
	s := Ceil(DivScalar(Log(MaxScalar(bound, 1)), math.Ln2))
	s = StopGradient(MinScalar(s, maxSquarings))
	x := Mul(a, Exp(MulScalar(s, -math.Ln2))) // A/2^s: still skew-symmetric
	// Horner: I + X(I + X/2(I + X/3(… (I + X/m)))).
	p := eye
	for k := taylorDegree; k >= 1; k-- {
		p = Add(eye, DivScalar(MatMul(x, p), float64(k)))
	}
	for i := 0; i < maxSquarings; i++ {
		p = Where(GreaterThan(s, Scalar(g, a.DType(), i)), MatMul(p, p), p)
	}
	return p
}

// semiOrthogonal returns the [rows, cols] top-left block of an orthogonal
// matrix q [n, n], n = max(rows, cols): its rows are orthonormal when
// rows ≤ cols (P·Pᵀ = I), its columns when rows ≥ cols (Pᵀ·P = I).
func semiOrthogonal(q *Node, rows, cols int) *Node {
	n := q.Shape().Dimensions[0]
	if rows < n {
		q = SliceAxis(q, 0, AxisRange(0, rows))
	}
	if cols < n {
		q = SliceAxis(q, 1, AxisRange(0, cols))
	}
	return q
}

// randomOrthogonal returns a random orthogonal n×n matrix, row-major: the
// Gram-Schmidt orthonormalisation (in float64) of a standard normal matrix.
func randomOrthogonal(rng *rand.Rand, n int) []float32 {
	rows := make([][]float64, n)
	for i := range rows {
		rows[i] = make([]float64, n)
		for j := range rows[i] {
			rows[i][j] = rng.NormFloat64()
		}
	}
	for i := 0; i < n; i++ {
		// Twice is enough (Kahan): re-orthogonalise against rounding.
		for pass := 0; pass < 2; pass++ {
			for k := 0; k < i; k++ {
				var dot float64
				for j := range rows[i] {
					dot += rows[i][j] * rows[k][j]
				}
				for j := range rows[i] {
					rows[i][j] -= dot * rows[k][j]
				}
			}
		}
		var norm float64
		for _, v := range rows[i] {
			norm += v * v
		}
		norm = math.Sqrt(norm)
		for j := range rows[i] {
			rows[i][j] /= norm
		}
	}
	out := make([]float32, 0, n*n)
	for _, r := range rows {
		for _, v := range r {
			out = append(out, float32(v))
		}
	}
	return out
}

// float32Of converts a node to float32 (a no-op when it already is).
func float32Of(x *Node) *Node {
	if x.DType() == dtypes.Float32 {
		return x
	}
	return ConvertDType(x, dtypes.Float32)
}
