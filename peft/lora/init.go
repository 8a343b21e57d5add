package lora

import (
	"fmt"
	"math"
	"math/rand/v2"
	"sort"
	"strconv"
	"strings"

	"github.com/lethe-ml/lethe/models"
	"github.com/lethe-ml/lethe/peft/internal/host"
)

// initialize sets A, B (and DoRA's magnitude) as PEFT's update_layer does:
//
//	default  A ~ U(±1/√in) (kaiming_uniform with a = √5), B = 0
//	random   A ~ U(±1/√in), B ~ U(±1/√r) (nn.Linear's own init)
//	gaussian A ~ N(0, (1/r)²), B = 0
//	pissa    A, B from the top-r SVD of W, and W ← W − scale·B·A
//
// then, for DoRA, magnitude = ‖W + scale·B·A‖ per output row.
func (l *layer) initialize(m *models.Model, init Init, rng *rand.Rand) error {
	in, r, out := l.mod.In, l.r, l.mod.Out
	var a, b []float32 // [in, r], [r, out]
	switch {
	case init == InitDefault:
		a = host.Uniform(rng, in*r, 1/math.Sqrt(float64(in)))
		b = make([]float32, r*out)
	case init == InitRandom:
		a = host.Uniform(rng, in*r, 1/math.Sqrt(float64(in)))
		b = host.Uniform(rng, r*out, 1/math.Sqrt(float64(r)))
	case init == InitGaussian:
		a = make([]float32, in*r)
		for i := range a {
			a[i] = float32(rng.NormFloat64() / float64(r))
		}
		b = make([]float32, r*out)
	case init == InitPiSSA || strings.HasPrefix(string(init), "pissa_niter_"):
		if l.mod.Tied {
			return fmt.Errorf("PiSSA would change a head tied to the input embeddings")
		}
		iters := 32
		if s, ok := strings.CutPrefix(string(init), "pissa_niter_"); ok {
			n, err := strconv.Atoi(s)
			if err != nil || n < 0 {
				return fmt.Errorf("init_lora_weights %q: want pissa_niter_<iterations>", init)
			}
			iters = n
		}
		w, err := readBase(m, l.mod)
		if err != nil {
			return err
		}
		am, bm := pissa(w, r, l.scale, iters, rng)
		a, b = am.Data, bm.Data
		// W ← W − scale·A·B (in [in, out]).
		d := host.MatMul(am, bm)
		for i := range w.Data {
			w.Data[i] -= float32(l.scale) * d.Data[i]
		}
		if err := writeBase(m, l.mod, w); err != nil {
			return err
		}
	default:
		return fmt.Errorf("init_lora_weights %q is not supported (lethe has true, false, \"gaussian\", \"pissa\", \"pissa_niter_N\")", init)
	}
	if err := host.Write(l.a, a); err != nil {
		return err
	}
	if err := host.Write(l.b, b); err != nil {
		return err
	}
	if l.mag != nil {
		return l.initMagnitude(m)
	}
	return nil
}

// initMagnitude sets DoRA's magnitude to ‖W + scale·B·A‖ per output row
// (PEFT's DoraLinearLayer.update_layer).
func (l *layer) initMagnitude(m *models.Model) error {
	w, err := readBase(m, l.mod)
	if err != nil {
		return err
	}
	d, err := l.delta()
	if err != nil {
		return err
	}
	for i := range w.Data {
		w.Data[i] += d.Data[i]
	}
	return host.Write(l.mag, columnNorms(w))
}

// pissa returns A [in, r] and B [r, out] from the top r singular triplets
// of w ([in, out] = torch's Wᵀ), as PEFT's pissa_init: with W = V·S·Uh,
// A = diag(√(S/scale))·Uh and B = V·diag(√(S/scale)) (here transposed). The
// triplets come from subspace iteration (iters rounds, r+8 columns), which
// for PEFT's exact "pissa" converges to the same subspace up to signs.
func pissa(w *host.Matrix, r int, scale float64, iters int, rng *rand.Rand) (*host.Matrix, *host.Matrix) {
	in, out := w.Rows, w.Cols
	p := min(r+8, min(in, out))
	// q [out, p] random, orthonormal.
	q := host.NewMatrix(out, p)
	for i := range q.Data {
		q.Data[i] = float32(rng.NormFloat64())
	}
	orthonormalize(q)
	var z *host.Matrix
	wt := w.T()
	for it := 0; it <= iters; it++ {
		z = host.MatMul(w, q) // [in, p]
		orthonormalize(z)
		q = host.MatMul(wt, z) // [out, p]
		orthonormalize(q)
	}
	// Small problem: c = zᵀ·w [p, out]; c·cᵀ = E·Λ·Eᵀ gives w ≈ (z·E)·Σ·(…)ᵀ.
	c := host.MatMul(z.T(), w)
	cct := host.MatMul(c, c.T())
	vals, vecs := symEigen(cct)
	u := host.MatMul(z, vecs) // [in, p] left singular vectors (columns)
	a := host.NewMatrix(in, r)
	b := host.NewMatrix(r, out)
	for k := 0; k < r; k++ {
		sigma := math.Sqrt(math.Max(vals[k], 0))
		root := math.Sqrt(sigma / scale)
		// right singular vector v_k = wᵀ·u_k / σ_k.
		for i := 0; i < in; i++ {
			a.Data[i*r+k] = float32(float64(u.Data[i*p+k]) * root)
		}
		if sigma == 0 {
			continue
		}
		for o := 0; o < out; o++ {
			var s float64
			for i := 0; i < in; i++ {
				s += float64(w.Data[i*out+o]) * float64(u.Data[i*p+k])
			}
			b.Data[k*out+o] = float32(s / sigma * root)
		}
	}
	return a, b
}

// orthonormalize makes the columns of m orthonormal (modified Gram-Schmidt
// in float64).
func orthonormalize(m *host.Matrix) {
	rows, cols := m.Rows, m.Cols
	col := make([][]float64, cols)
	for j := range col {
		col[j] = make([]float64, rows)
		for i := 0; i < rows; i++ {
			col[j][i] = float64(m.Data[i*cols+j])
		}
	}
	for j := 0; j < cols; j++ {
		for k := 0; k < j; k++ {
			var dot float64
			for i := range col[j] {
				dot += col[j][i] * col[k][i]
			}
			for i := range col[j] {
				col[j][i] -= dot * col[k][i]
			}
		}
		var n float64
		for _, v := range col[j] {
			n += v * v
		}
		n = math.Sqrt(n)
		for i := range col[j] {
			if n > 0 {
				col[j][i] /= n
			}
		}
	}
	for j := range col {
		for i := 0; i < rows; i++ {
			m.Data[i*cols+j] = float32(col[j][i])
		}
	}
}

// symEigen returns the eigenvalues of a symmetric matrix in descending order
// and the matching eigenvectors as the columns of a matrix (cyclic Jacobi).
func symEigen(s *host.Matrix) ([]float64, *host.Matrix) {
	n := s.Rows
	a := make([][]float64, n)
	v := make([][]float64, n)
	for i := range a {
		a[i] = make([]float64, n)
		v[i] = make([]float64, n)
		v[i][i] = 1
		for j := range a[i] {
			a[i][j] = float64(s.Data[i*n+j])
		}
	}
	for sweep := 0; sweep < 100; sweep++ {
		off := 0.0
		for i := 0; i < n; i++ {
			for j := i + 1; j < n; j++ {
				off += a[i][j] * a[i][j]
			}
		}
		if off < 1e-22 {
			break
		}
		for p := 0; p < n; p++ {
			for q := p + 1; q < n; q++ {
				if math.Abs(a[p][q]) < 1e-300 {
					continue
				}
				theta := (a[q][q] - a[p][p]) / (2 * a[p][q])
				t := math.Copysign(1, theta) / (math.Abs(theta) + math.Sqrt(theta*theta+1))
				c := 1 / math.Sqrt(t*t+1)
				sn := t * c
				for k := 0; k < n; k++ {
					akp, akq := a[k][p], a[k][q]
					a[k][p] = c*akp - sn*akq
					a[k][q] = sn*akp + c*akq
				}
				for k := 0; k < n; k++ {
					apk, aqk := a[p][k], a[q][k]
					a[p][k] = c*apk - sn*aqk
					a[q][k] = sn*apk + c*aqk
				}
				for k := 0; k < n; k++ {
					vkp, vkq := v[k][p], v[k][q]
					v[k][p] = c*vkp - sn*vkq
					v[k][q] = sn*vkp + c*vkq
				}
			}
		}
	}
	idx := make([]int, n)
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(x, y int) bool { return a[idx[x]][idx[x]] > a[idx[y]][idx[y]] })
	vals := make([]float64, n)
	vecs := host.NewMatrix(n, n)
	for j, k := range idx {
		vals[j] = a[k][k]
		for i := 0; i < n; i++ {
			vecs.Data[i*n+j] = float32(v[i][k])
		}
	}
	return vals, vecs
}
