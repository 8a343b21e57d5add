package hints

import (
	"math"
	"math/rand/v2"
	"testing"

	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/ml/model"
)

// hostExpm is exp(a) in float64: Taylor of degree 24 on a/2^s, squared.
func hostExpm(a *mat) *mat {
	var norm float64
	for _, v := range a.d {
		norm += v * v
	}
	s := max(0, int(math.Ceil(math.Log2(math.Sqrt(norm))))+4)
	x := newMat(a.r, a.c)
	for i, v := range a.d {
		x.d[i] = v / math.Exp2(float64(s))
	}
	eye := newMat(a.r, a.c)
	for i := 0; i < a.r; i++ {
		eye.set(i, i, 1)
	}
	p := eye
	for k := 24; k >= 1; k-- {
		xp := mul(x, p)
		next := newMat(a.r, a.c)
		for i := range next.d {
			next.d[i] = eye.d[i] + xp.d[i]/float64(k)
		}
		p = next
	}
	for range s {
		p = mul(p, p)
	}
	return p
}

// skewOf is S − Sᵀ.
func skewOf(s *mat) *mat {
	st := transpose(s)
	out := newMat(s.r, s.c)
	for i := range out.d {
		out.d[i] = s.d[i] - st.d[i]
	}
	return out
}

func maxAbsDiff(a *mat, b []float64) float64 {
	worst := 0.0
	for i, v := range a.d {
		worst = math.Max(worst, math.Abs(v-b[i]))
	}
	return worst
}

// TestExpSkew checks the matrix exponential of skew-symmetric matrices of
// growing norm (no squaring up to several) against float64, and that the
// results are orthogonal to 1e-5.
func TestExpSkew(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	const n = 6
	for _, scale := range []float64{0, 0.02, 0.3, 2, 10} {
		a := skewOf(randMat(rng, n, n, scale))
		want := hostExpm(a)
		out := run(t, model.NewStore(), func(g *Graph) []*Node {
			return []*Node{expSkew(constant(g, a.d, n, n))}
		})
		got := &mat{n, n, out[0]}
		if d := maxAbsDiff(want, got.d); d > 1e-5 {
			t.Errorf("scale %v: exp differs from float64 by %.2g", scale, d)
		}
		if e := orthoError(got); e > 1e-5 {
			t.Errorf("scale %v: exp(A) is orthogonal only to %.2g", scale, e)
		}
	}
}

// TestVkDProjection checks that V_kD's projection is (semi-)orthogonal at
// initialisation and after gradient steps large enough to need squarings,
// that it equals B·exp(S − Sᵀ), and that its gradient matches finite
// differences.
func TestVkDProjection(t *testing.T) {
	for _, dims := range [][2]int{{4, 4}, {3, 5}, {6, 4}} {
		hs, ht := dims[0], dims[1]
		n := max(hs, ht)
		rng := rand.New(rand.NewPCG(uint64(hs), uint64(ht)))
		y := newToy(rng, 2, 4, hs, ht)
		store := model.NewStore()
		h, err := New(store, Config{Kind: KindVkD, Pairs: []Pair{{1, 1}}, Seed: 11}, Side{1, hs}, Side{1, ht})
		if err != nil {
			t.Fatal(err)
		}
		skew := h.pairs[0].skew
		projection := newExec(t, store, func(g *Graph) []*Node { return []*Node{h.Projection(g, 0)} })
		p0 := &mat{hs, ht, projection()[0]}
		if e := orthoError(p0); e > 1e-5 {
			t.Errorf("%dx%d: initial projection orthogonal only to %.2g", hs, ht, e)
		}

		const lr = 5.0
		step := newExec(t, store, func(g *Graph) []*Node {
			s, te := y.hidden(g, y.s, y.t)
			loss := h.Loss(s, te, y.maskNode(g))
			sv := skew.NodeValue(g)
			skew.SetNodeValue(Sub(sv, MulScalar(Gradient(loss, sv)[0], lr)))
			return []*Node{loss}
		})
		first := step()[0][0]
		var last float64
		for range 20 {
			last = step()[0][0]
		}
		sv := &mat{n, n, flat(skew.MustValue())}
		a := skewOf(sv)
		var norm float64
		for _, v := range a.d {
			norm += v * v
		}
		p := &mat{hs, ht, projection()[0]}
		if e := orthoError(p); e > 1e-5 {
			t.Errorf("%dx%d: projection after training orthogonal only to %.2g", hs, ht, e)
		}
		base := &mat{n, n, flat(h.pairs[0].base.MustValue())}
		if d := maxAbsDiff(block(mul(base, hostExpm(a)), hs, ht), p.d); d > 1e-5 {
			t.Errorf("%dx%d: projection differs from B·exp(S−Sᵀ) by %.2g", hs, ht, d)
		}
		t.Logf("%dx%d: loss %.4f → %.4f, ‖S−Sᵀ‖ = %.2f", hs, ht, first, last, math.Sqrt(norm))
		if !(last < first) || math.Sqrt(norm) < 2 {
			t.Errorf("%dx%d: training moved the loss %.4f → %.4f and ‖S−Sᵀ‖ to %.2f; want a decrease and a norm ≥ 2 (squarings)", hs, ht, first, last, math.Sqrt(norm))
		}

		// Finite differences along a random direction D of S.
		dir := randMat(rng, n, n, 1)
		loss := func(shift float64) float64 {
			moved := make([]float64, len(sv.d))
			for i := range moved {
				moved[i] = sv.d[i] + shift*dir.d[i]
			}
			setVar(t, skew, moved, n, n)
			out := run(t, store, func(g *Graph) []*Node {
				s, te := y.hidden(g, y.s, y.t)
				l := h.Loss(s, te, y.maskNode(g))
				return []*Node{l, Gradient(l, skew.NodeValue(g))[0]}
			})
			if shift != 0 {
				return out[0][0]
			}
			var dot float64
			for i, gv := range out[1] {
				dot += gv * dir.d[i]
			}
			return dot
		}
		const eps = 1e-2
		numeric := (loss(eps) - loss(-eps)) / (2 * eps)
		analytic := loss(0)
		t.Logf("%dx%d: directional derivative %.6f, finite differences %.6f", hs, ht, analytic, numeric)
		if math.Abs(numeric-analytic) > 2e-3*math.Max(1, math.Abs(numeric)) {
			t.Errorf("%dx%d: directional derivative %.6f, finite differences %.6f", hs, ht, analytic, numeric)
		}
	}
}

// TestStandardize checks zero mean and unit variance over the counted
// tokens, and the values against float64.
func TestStandardize(t *testing.T) {
	rng := rand.New(rand.NewPCG(8, 9))
	y := newToy(rng, 3, 5, 2, 4)
	for i := range y.t.d {
		y.t.d[i] = 3*y.t.d[i] + float64(i%4) // per-feature offsets
	}
	out := run(t, model.NewStore(), func(g *Graph) []*Node {
		return []*Node{Standardize(constant(g, y.t.d, y.B, y.T, y.Ht), y.maskNode(g))}
	})
	got := &mat{y.B * y.T, y.Ht, out[0]}
	if d := maxAbsDiff(hostStandardize(y.t, y.mask), got.d); d > 1e-5 {
		t.Errorf("standardized values differ from float64 by %.2g", d)
	}
	for j := 0; j < y.Ht; j++ {
		var n, mu, v float64
		for i := 0; i < got.r; i++ {
			if y.mask[i] != 0 {
				n++
				mu += got.at(i, j)
				v += got.at(i, j) * got.at(i, j)
			}
		}
		mu /= n
		v = v/n - mu*mu
		if math.Abs(mu) > 1e-5 || math.Abs(v-1) > 1e-4 {
			t.Errorf("feature %d: mean %.2g, variance %.6f over the counted tokens", j, mu, v)
		}
	}
}

// TestVkDLossZero sets the projection to the inverse of an orthogonal map
// applied to the standardised teacher: the loss is then zero.
func TestVkDLossZero(t *testing.T) {
	for _, c := range []struct {
		hs, ht int
		loss   string
	}{{5, 5, LossMSE}, {6, 4, LossMSE}, {5, 5, LossCosine}} {
		n := max(c.hs, c.ht)
		rng := rand.New(rand.NewPCG(uint64(c.hs), 10))
		y := newToy(rng, 2, 6, c.hs, c.ht)
		r := &mat{n, n, make([]float64, n*n)}
		for i, v := range randomOrthogonal(rng, n) {
			r.d[i] = float64(v)
		}
		p := block(r, c.hs, c.ht) // Pᵀ·P = I
		// student = norm(teacher)·Pᵀ, so student·P = norm(teacher).
		student := mul(hostStandardize(y.t, y.mask), transpose(p))
		store := model.NewStore()
		h, err := New(store, Config{Kind: KindVkD, Loss: c.loss, Pairs: []Pair{{1, 1}}}, Side{1, c.hs}, Side{1, c.ht})
		if err != nil {
			t.Fatal(err)
		}
		setVar(t, h.pairs[0].base, r.d, n, n)
		out := run(t, store, func(g *Graph) []*Node {
			s, te := y.hidden(g, student, y.t)
			return []*Node{h.Loss(s, te, y.maskNode(g))}
		})
		if got := out[0][0]; math.Abs(got) > 1e-6 {
			t.Errorf("%dx%d %s: loss %.3g, want 0", c.hs, c.ht, c.loss, got)
		}
		// Another rotation: the loss is then clearly positive.
		other := randomOrthogonal(rng, n)
		otherD := make([]float64, len(other))
		for i, v := range other {
			otherD[i] = float64(v)
		}
		setVar(t, h.pairs[0].base, otherD, n, n)
		out = run(t, store, func(g *Graph) []*Node {
			s, te := y.hidden(g, student, y.t)
			return []*Node{h.Loss(s, te, y.maskNode(g))}
		})
		if got := out[0][0]; got < 0.1 {
			t.Errorf("%dx%d %s: loss %.3g with another rotation, want it clearly positive", c.hs, c.ht, c.loss, got)
		}
	}
}
