package distill

import (
	"fmt"
	"math"
	"math/rand/v2"
	"sort"
	"sync"
	"testing"

	"github.com/gomlx/compute"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"

	"github.com/lethe-ml/lethe/internal/backend"
)

var (
	backendOnce sync.Once
	testB       compute.Backend
	testBErr    error
)

func testBackend(tb testing.TB) compute.Backend {
	tb.Helper()
	backendOnce.Do(func() { testB, _, testBErr = backend.New("go:ops_sequential") })
	if testBErr != nil {
		tb.Fatal(testBErr)
	}
	return testB
}

// run executes fn on args in a graph and returns its output.
func run(tb testing.TB, fn func(in []*Node) *Node, args ...any) *tensors.Tensor {
	tb.Helper()
	return MustExecOnce(testBackend(tb), fn, args...)
}

func scalar(tb testing.TB, fn func(in []*Node) *Node, args ...any) float64 {
	tb.Helper()
	return float64(tensors.ToScalar[float32](run(tb, fn, args...)))
}

func flat[T any](t *tensors.Tensor) []T {
	var out []T
	t.MustConstFlatData(func(f any) { out = append(out, f.([]T)...) })
	return out
}

func f32s(x []float64) []float32 {
	out := make([]float32, len(x))
	for i, v := range x {
		out[i] = float32(v)
	}
	return out
}

func near(got, want, tol float64) bool {
	return math.Abs(got-want) <= tol*math.Max(1, math.Abs(want))
}

// fixture is a step of B=2 rows, T=3 positions and V=5 tokens with random
// student and teacher logits and labels that ignore some positions.
type fixture struct {
	B, T, V int
	s, z    []float64 // logits [B, T, V]
	labels  []int32   // [B, T]
}

func newFixture(seed uint64) *fixture {
	rng := rand.New(rand.NewPCG(seed, 7))
	f := &fixture{B: 2, T: 3, V: 5}
	for range f.B * f.T * f.V {
		f.s = append(f.s, 2*rng.NormFloat64())
		f.z = append(f.z, 2*rng.NormFloat64())
	}
	// Mask: row 0 [1, 1, 0], row 1 [0, 1, 0]; targets: row 0 [4, 1, 0], row 1 [0, 3, 0].
	f.labels = []int32{2, 4, 1, 0, IgnoreIndex, 3}
	return f
}

func (f *fixture) mask() []float64 {
	m := make([]float64, f.B*f.T)
	for b := range f.B {
		for t := 0; t+1 < f.T; t++ {
			if f.labels[b*f.T+t+1] != IgnoreIndex {
				m[b*f.T+t] = 1
			}
		}
	}
	return m
}

func (f *fixture) targets() []int32 {
	y := make([]int32, f.B*f.T)
	for b := range f.B {
		for t := 0; t+1 < f.T; t++ {
			if l := f.labels[b*f.T+t+1]; l >= 0 {
				y[b*f.T+t] = l
			}
		}
	}
	return y
}

func (f *fixture) row(x []float64, b, t int) []float64 { return x[(b*f.T+t)*f.V : (b*f.T+t+1)*f.V] }

// mean averages perToken over the counted positions.
func (f *fixture) mean(perToken func(b, t int) float64) float64 {
	m := f.mask()
	s, n := 0.0, 0.0
	for b := range f.B {
		for t := range f.T {
			if m[b*f.T+t] != 0 {
				s += perToken(b, t)
				n++
			}
		}
	}
	return s / n
}

func (f *fixture) inputs() []any {
	return []any{
		tensors.FromFlatDataAndDimensions(f32s(f.s), f.B, f.T, f.V),
		tensors.FromFlatDataAndDimensions(f32s(f.z), f.B, f.T, f.V),
		tensors.FromFlatDataAndDimensions(f32s(f.mask()), f.B, f.T),
		tensors.FromFlatDataAndDimensions(f.targets(), f.B, f.T),
	}
}

// eval runs a full loss on the fixture: in = student, teacher, mask, targets.
func (f *fixture) eval(tb testing.TB, fn func(in []*Node) *Node) float64 {
	tb.Helper()
	return scalar(tb, fn, f.inputs()...)
}

// cache is a sparse teacher built on the host from the fixture's teacher.
type cache struct {
	K   int
	ids []int32   // [B, T, K]
	lps []float32 // [B, T, K], log-probs at temperature 1
}

// sparse keeps, at every position, the teacher's k most probable tokens
// (k = V: all of them) in an order shuffled by seed, with their log-probs.
func (f *fixture) sparse(k int, seed uint64) cache {
	rng := rand.New(rand.NewPCG(seed, 3))
	c := cache{K: k}
	for b := range f.B {
		for t := range f.T {
			lp := logSoftmax(f.row(f.z, b, t), 1)
			order := byDescending(lp)[:k]
			rng.Shuffle(k, func(i, j int) { order[i], order[j] = order[j], order[i] })
			for _, v := range order {
				c.ids = append(c.ids, int32(v))
				c.lps = append(c.lps, float32(lp[v]))
			}
		}
	}
	return c
}

func (c cache) entries(f *fixture, b, t int) (ids []int, lps []float64) {
	for k := range c.K {
		i := (b*f.T+t)*c.K + k
		ids = append(ids, int(c.ids[i]))
		lps = append(lps, float64(c.lps[i]))
	}
	return ids, lps
}

// evalSparse runs a loss with a sparse teacher: in = student, teacher,
// mask, targets, ids, log-probs.
func (f *fixture) evalSparse(tb testing.TB, c cache, fn func(in []*Node) *Node) float64 {
	tb.Helper()
	args := append(f.inputs(),
		tensors.FromFlatDataAndDimensions(c.ids, f.B, f.T, c.K),
		tensors.FromFlatDataAndDimensions(c.lps, f.B, f.T, c.K))
	return scalar(tb, fn, args...)
}

func sparseOf(in []*Node) Sparse { return Sparse{IDs: in[4], LogProbs: in[5]} }

func logSoftmax(row []float64, temp float64) []float64 {
	mx := math.Inf(-1)
	for _, v := range row {
		mx = math.Max(mx, v/temp)
	}
	s := 0.0
	for _, v := range row {
		s += math.Exp(v/temp - mx)
	}
	out := make([]float64, len(row))
	for i, v := range row {
		out[i] = v/temp - mx - math.Log(s)
	}
	return out
}

// byDescending are the indices of x by descending value, ties by index.
func byDescending(x []float64) []int {
	idx := make([]int, len(x))
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(a, b int) bool { return x[idx[a]] > x[idx[b]] })
	return idx
}

func hostKL(lp, lq []float64) float64 {
	s := 0.0
	for i := range lp {
		s += math.Exp(lp[i]) * (lp[i] - lq[i])
	}
	return s
}

// hostMixKL is KL(p ‖ a·p + (1−a)·q).
func hostMixKL(lp, lq []float64, a float64) float64 {
	s := 0.0
	for i := range lp {
		p, q := math.Exp(lp[i]), math.Exp(lq[i])
		s += p * (lp[i] - math.Log(a*p+(1-a)*q))
	}
	return s
}

func hostJSD(ls, lt []float64, beta float64) float64 {
	switch beta {
	case 0:
		return hostKL(lt, ls)
	case 1:
		return hostKL(ls, lt)
	}
	s := 0.0
	for i := range ls {
		ps, pt := math.Exp(ls[i]), math.Exp(lt[i])
		m := math.Log((1-beta)*ps + beta*pt)
		s += beta*pt*(lt[i]-m) + (1-beta)*ps*(ls[i]-m)
	}
	return s
}

func hostTVD(ls, lt []float64) float64 {
	s := 0.0
	for i := range ls {
		s += math.Abs(math.Exp(lt[i]) - math.Exp(ls[i]))
	}
	return s / 2
}

// hostPLD is Σ_k w[π_k]·(−s[π_k] + log Σ_{j≥k} exp s[π_j]) with π the gold
// first, then the others by descending teacher logit.
func hostPLD(s, z []float64, gold int, w []float64) float64 {
	var pi []int
	pi = append(pi, gold)
	for _, v := range byDescending(z) {
		if v != gold {
			pi = append(pi, v)
		}
	}
	loss := 0.0
	for k := range pi {
		mx := math.Inf(-1)
		for _, j := range pi[k:] {
			mx = math.Max(mx, s[j])
		}
		sum := 0.0
		for _, j := range pi[k:] {
			sum += math.Exp(s[j] - mx)
		}
		loss += w[pi[k]] * (-s[pi[k]] + mx + math.Log(sum))
	}
	return loss
}

func softmax(row []float64, temp float64) []float64 {
	lp := logSoftmax(row, temp)
	for i := range lp {
		lp[i] = math.Exp(lp[i])
	}
	return lp
}

var temps = []float64{1, 2}

// TestLossesMatchHost checks every full-teacher loss against its formula
// computed on the host in float64.
func TestLossesMatchHost(t *testing.T) {
	f := newFixture(1)
	type tc struct {
		name  string
		graph func(in []*Node, T float64) *Node
		host  func(ls, lt []float64, T float64) float64 // per token, log-probs at T
	}
	cases := []tc{
		{"ForwardKL", func(in []*Node, T float64) *Node { return ForwardKL(in[0], in[1], in[2], T) },
			func(ls, lt []float64, T float64) float64 { return T * T * hostKL(lt, ls) }},
		{"ReverseKL", func(in []*Node, T float64) *Node { return ReverseKL(in[0], in[1], in[2], T) },
			func(ls, lt []float64, T float64) float64 { return T * T * hostKL(ls, lt) }},
		{"SymmetricKL", func(in []*Node, T float64) *Node { return SymmetricKL(in[0], in[1], in[2], T) },
			func(ls, lt []float64, T float64) float64 { return T * T * (hostKL(lt, ls) + hostKL(ls, lt)) }},
		{"TVD", func(in []*Node, T float64) *Node { return TVD(in[0], in[1], in[2], T) },
			func(ls, lt []float64, _ float64) float64 { return hostTVD(ls, lt) }},
	}
	for _, beta := range []float64{0, 0.1, 0.5, 0.9, 1} {
		cases = append(cases, tc{fmt.Sprintf("GeneralizedJSD(β=%g)", beta),
			func(in []*Node, T float64) *Node { return GeneralizedJSD(in[0], in[1], in[2], beta, T) },
			func(ls, lt []float64, _ float64) float64 { return hostJSD(ls, lt, beta) }})
	}
	for _, alpha := range []float64{0, 0.1, 0.5, 1} {
		cases = append(cases,
			tc{fmt.Sprintf("SkewForwardKL(α=%g)", alpha),
				func(in []*Node, T float64) *Node { return SkewForwardKL(in[0], in[1], in[2], alpha, T) },
				func(ls, lt []float64, _ float64) float64 { return hostMixKL(lt, ls, alpha) }},
			tc{fmt.Sprintf("SkewReverseKL(α=%g)", alpha),
				func(in []*Node, T float64) *Node { return SkewReverseKL(in[0], in[1], in[2], alpha, T) },
				func(ls, lt []float64, _ float64) float64 { return hostMixKL(ls, lt, alpha) }})
	}
	for _, c := range cases {
		for _, T := range temps {
			got := f.eval(t, func(in []*Node) *Node { return c.graph(in, T) })
			want := f.mean(func(b, p int) float64 {
				return c.host(logSoftmax(f.row(f.s, b, p), T), logSoftmax(f.row(f.z, b, p), T), T)
			})
			if !near(got, want, 1e-5) {
				t.Errorf("%s at T=%g: %.7f, host %.7f", c.name, T, got, want)
			}
		}
	}
}

// TestClosedForms checks the divergences' known values and relations.
func TestClosedForms(t *testing.T) {
	f := newFixture(2)
	same := &fixture{B: f.B, T: f.T, V: f.V, s: f.z, z: f.z, labels: f.labels}
	zero := map[string]func(in []*Node) *Node{
		"ForwardKL":     func(in []*Node) *Node { return ForwardKL(in[0], in[1], in[2], 2) },
		"ReverseKL":     func(in []*Node) *Node { return ReverseKL(in[0], in[1], in[2], 2) },
		"SymmetricKL":   func(in []*Node) *Node { return SymmetricKL(in[0], in[1], in[2], 1) },
		"JSD(0)":        func(in []*Node) *Node { return GeneralizedJSD(in[0], in[1], in[2], 0, 1) },
		"JSD(0.3)":      func(in []*Node) *Node { return GeneralizedJSD(in[0], in[1], in[2], 0.3, 2) },
		"JSD(1)":        func(in []*Node) *Node { return GeneralizedJSD(in[0], in[1], in[2], 1, 1) },
		"TVD":           func(in []*Node) *Node { return TVD(in[0], in[1], in[2], 1) },
		"SkewForwardKL": func(in []*Node) *Node { return SkewForwardKL(in[0], in[1], in[2], 0.1, 1) },
		"SkewReverseKL": func(in []*Node) *Node { return SkewReverseKL(in[0], in[1], in[2], 0.1, 2) },
	}
	for name, fn := range zero {
		if got := same.eval(t, fn); math.Abs(got) > 1e-6 {
			t.Errorf("%s of identical distributions = %g, want 0", name, got)
		}
	}

	type rel struct {
		name   string
		a, b   func(in []*Node) *Node
		factor float64 // a = factor·b
	}
	for _, r := range []rel{
		{"JSD(β=0) = ForwardKL at T=1",
			func(in []*Node) *Node { return GeneralizedJSD(in[0], in[1], in[2], 0, 1) },
			func(in []*Node) *Node { return ForwardKL(in[0], in[1], in[2], 1) }, 1},
		{"JSD(β=0) = ForwardKL/T² at T=2",
			func(in []*Node) *Node { return GeneralizedJSD(in[0], in[1], in[2], 0, 2) },
			func(in []*Node) *Node { return ForwardKL(in[0], in[1], in[2], 2) }, 0.25},
		{"JSD(β=1) = ReverseKL at T=1",
			func(in []*Node) *Node { return GeneralizedJSD(in[0], in[1], in[2], 1, 1) },
			func(in []*Node) *Node { return ReverseKL(in[0], in[1], in[2], 1) }, 1},
		{"SkewForwardKL(α=0) = ForwardKL/T² at T=2",
			func(in []*Node) *Node { return SkewForwardKL(in[0], in[1], in[2], 0, 2) },
			func(in []*Node) *Node { return ForwardKL(in[0], in[1], in[2], 2) }, 0.25},
		{"SkewReverseKL(α=0) = ReverseKL at T=1",
			func(in []*Node) *Node { return SkewReverseKL(in[0], in[1], in[2], 0, 1) },
			func(in []*Node) *Node { return ReverseKL(in[0], in[1], in[2], 1) }, 1},
		{"SymmetricKL = ForwardKL + ReverseKL at T=2",
			func(in []*Node) *Node { return SymmetricKL(in[0], in[1], in[2], 2) },
			func(in []*Node) *Node {
				return Add(ForwardKL(in[0], in[1], in[2], 2), ReverseKL(in[0], in[1], in[2], 2))
			}, 1},
		{"Combine(λ=0.25) = 0.75·CE + 0.25·KD",
			func(in []*Node) *Node {
				return Combine(Const(in[0].Graph(), float32(2)), ForwardKL(in[0], in[1], in[2], 1), 0.25)
			},
			func(in []*Node) *Node { return AddScalar(MulScalar(ForwardKL(in[0], in[1], in[2], 1), 0.25), 1.5) }, 1},
	} {
		a, b := f.eval(t, r.a), f.eval(t, r.b)
		if b == 0 || !near(a, r.factor*b, 1e-5) {
			t.Errorf("%s: %.7f vs %g·%.7f", r.name, a, r.factor, b)
		}
	}

	// Bounds: 0 ≤ JSD(0.5) ≤ ln 2 and 0 ≤ TVD ≤ 1, reached for disjoint distributions.
	jsd := func(in []*Node) *Node { return GeneralizedJSD(in[0], in[1], in[2], 0.5, 1) }
	tvd := func(in []*Node) *Node { return TVD(in[0], in[1], in[2], 1) }
	for _, T := range temps {
		g1 := f.eval(t, func(in []*Node) *Node { return GeneralizedJSD(in[0], in[1], in[2], 0.5, T) })
		g2 := f.eval(t, func(in []*Node) *Node { return TVD(in[0], in[1], in[2], T) })
		if g1 <= 0 || g1 > math.Ln2 || g2 <= 0 || g2 > 1 {
			t.Errorf("T=%g: JSD(0.5) = %g, want in (0, ln 2]; TVD = %g, want in (0, 1]", T, g1, g2)
		}
	}
	far := &fixture{B: 1, T: 2, V: 3, s: []float64{40, 0, 0, 0, 0, 0}, z: []float64{0, 40, 0, 0, 0, 0}, labels: []int32{0, 1}}
	if got := far.eval(t, jsd); got > math.Ln2+1e-6 || got < math.Ln2-1e-4 {
		t.Errorf("JSD(0.5) of disjoint distributions = %.7f, want ln 2 = %.7f", got, math.Ln2)
	}
	if got := far.eval(t, tvd); got > 1+1e-6 || got < 1-1e-4 {
		t.Errorf("TVD of disjoint distributions = %.7f, want 1", got)
	}
}

// TestNothingCounts: with every position masked out every loss is 0, even
// where the logits are not finite.
func TestNothingCounts(t *testing.T) {
	f := newFixture(3)
	f.labels = []int32{1, IgnoreIndex, IgnoreIndex, 2, IgnoreIndex, IgnoreIndex}
	f.s[0] = math.NaN()
	c := f.sparse(3, 1)
	for name, fn := range map[string]func(in []*Node) *Node{
		"ForwardKL":       func(in []*Node) *Node { return ForwardKL(in[0], in[1], in[2], 2) },
		"GeneralizedJSD":  func(in []*Node) *Node { return GeneralizedJSD(in[0], in[1], in[2], 0.5, 1) },
		"TVD":             func(in []*Node) *Node { return TVD(in[0], in[1], in[2], 1) },
		"SparseForwardKL": func(in []*Node) *Node { return SparseForwardKL(in[0], sparseOf(in), in[2], 1, TailSymmetricUniform) },
		"HingeRank":       func(in []*Node) *Node { return HingeRank(in[0], sparseOf(in), in[2], 1) },
		"PLD":             func(in []*Node) *Node { return PLD(in[0], in[1], in[3], in[2], 1) },
		"SparsePLD":       func(in []*Node) *Node { return SparsePLD(in[0], sparseOf(in), in[3], in[2], 1) },
	} {
		if got := f.evalSparse(t, c, fn); got != 0 {
			t.Errorf("%s with no counted position = %g, want 0", name, got)
		}
	}
}

// TestForwardKLGradient: ∂ForwardKL/∂student = T·(p_s − p_t)/N at each of the
// N counted positions (p at temperature T), 0 at the others.
func TestForwardKLGradient(t *testing.T) {
	f := newFixture(4)
	m := f.mask()
	n := 0.0
	for _, v := range m {
		n += v
	}
	for _, T := range temps {
		got := flat[float32](run(t, func(in []*Node) *Node {
			return Gradient(ForwardKL(in[0], in[1], in[2], T), in[0])[0]
		}, f.inputs()...))
		for b := range f.B {
			for p := range f.T {
				ps, pt := softmax(f.row(f.s, b, p), T), softmax(f.row(f.z, b, p), T)
				for v := range f.V {
					want := 0.0
					if m[b*f.T+p] != 0 {
						want = T * (ps[v] - pt[v]) / n
					}
					if g := float64(got[(b*f.T+p)*f.V+v]); math.Abs(g-want) > 1e-6 {
						t.Errorf("T=%g: ∂/∂s[%d,%d,%d] = %.7f, want %.7f", T, b, p, v, g, want)
					}
				}
			}
		}
	}
}

// hostSparseKL is SparseForwardKL's formula on the host for one position.
func hostSparseKL(s []float64, ids []int, lps []float64, T float64, tail TailMode) float64 {
	ls := logSoftmax(s, T)
	a := make([]float64, len(lps))
	sumA, sumP, sumS := 0.0, 0.0, 0.0
	for i, lp := range lps {
		a[i] = lp / T
		sumA += math.Exp(a[i])
		sumP += math.Exp(lp)
		sumS += math.Exp(ls[ids[i]])
	}
	z, tailKL := math.Log(sumA), 0.0
	if m := 1 - sumP; tail == TailSymmetricUniform && m > tailEps {
		mt := math.Pow(m, 1/T)
		z = math.Log(sumA + mt)
		qt := mt / math.Exp(z)
		tailKL = qt * math.Log(qt/(1-sumS))
	}
	kl := tailKL
	for i := range a {
		q := a[i] - z
		kl += math.Exp(q) * (q - ls[ids[i]])
	}
	return T * T * kl
}

// TestSparseForwardKL: with k = V the sparse loss is ForwardKL for every tail
// mode and temperature; with k < V each mode matches its formula, and the
// modes differ.
func TestSparseForwardKL(t *testing.T) {
	f := newFixture(5)
	for _, T := range temps {
		full := f.eval(t, func(in []*Node) *Node { return ForwardKL(in[0], in[1], in[2], T) })
		for _, tail := range []TailMode{TailZero, TailSymmetricUniform} {
			got := f.evalSparse(t, f.sparse(f.V, uint64(10*T)), func(in []*Node) *Node {
				return SparseForwardKL(in[0], sparseOf(in), in[2], T, tail)
			})
			if math.Abs(got-full) > 1e-6*math.Max(1, full) {
				t.Errorf("k=V, T=%g, %v: %.8f, ForwardKL %.8f", T, tail, got, full)
			}
		}
		c := f.sparse(3, uint64(T))
		var byMode [2]float64
		for _, tail := range []TailMode{TailZero, TailSymmetricUniform} {
			got := f.evalSparse(t, c, func(in []*Node) *Node {
				return SparseForwardKL(in[0], sparseOf(in), in[2], T, tail)
			})
			want := f.mean(func(b, p int) float64 {
				ids, lps := c.entries(f, b, p)
				return hostSparseKL(f.row(f.s, b, p), ids, lps, T, tail)
			})
			if !near(got, want, 1e-5) {
				t.Errorf("k=3, T=%g, %v: %.7f, host %.7f", T, tail, got, want)
			}
			byMode[tail] = got
		}
		if math.Abs(byMode[0]-byMode[1]) < 1e-3 {
			t.Errorf("k=3, T=%g: zero %.6f and symmetric_uniform %.6f should differ", T, byMode[0], byMode[1])
		}
	}

	// The gradients agree with ForwardKL's too at k = V (the tail guards
	// must not leak NaNs into them).
	for _, tail := range []TailMode{TailZero, TailSymmetricUniform} {
		c := f.sparse(f.V, 9)
		args := append(f.inputs(),
			tensors.FromFlatDataAndDimensions(c.ids, f.B, f.T, c.K),
			tensors.FromFlatDataAndDimensions(c.lps, f.B, f.T, c.K))
		out := flat[float32](run(t, func(in []*Node) *Node {
			a := Gradient(SparseForwardKL(in[0], sparseOf(in), in[2], 2, tail), in[0])[0]
			b := Gradient(ForwardKL(in[0], in[1], in[2], 2), in[0])[0]
			return Sub(a, b)
		}, args...))
		for i, d := range out {
			if !(math.Abs(float64(d)) < 1e-6) {
				t.Fatalf("%v: gradient differs from ForwardKL's by %g at %d", tail, d, i)
			}
		}
	}
}

func TestTailModeNames(t *testing.T) {
	for _, m := range []TailMode{TailZero, TailSymmetricUniform} {
		got, err := ParseTailMode(m.String())
		if err != nil || got != m {
			t.Errorf("ParseTailMode(%q) = %v, %v", m.String(), got, err)
		}
	}
	if m, err := ParseTailMode(""); err != nil || m != TailZero {
		t.Errorf("ParseTailMode(\"\") = %v, %v, want the default zero", m, err)
	}
	if _, err := ParseTailMode("uniform"); err == nil {
		t.Error("ParseTailMode(\"uniform\") should fail")
	}
}

// rankCase is one position (B=T=1) with V=5 and a teacher top-4 whose last
// entry (p < 1e-9) takes part in no pair.
func rankCase(tb testing.TB, s []float64, fn func(in []*Node) *Node) float64 {
	tb.Helper()
	ids := []int32{3, 2, 0, 4} // teacher order: 2 > 0 > 3; 4 unsupported
	lps := []float32{-2.5, -0.5, -1.5, -30}
	return scalar(tb, fn,
		tensors.FromFlatDataAndDimensions(f32s(s), 1, 1, 5),
		tensors.FromFlatDataAndDimensions([]float32{1}, 1, 1),
		tensors.FromFlatDataAndDimensions(ids, 1, 1, 4),
		tensors.FromFlatDataAndDimensions(lps, 1, 1, 4))
}

func TestRankingLosses(t *testing.T) {
	hinge := func(margin float64) func(in []*Node) *Node {
		return func(in []*Node) *Node { return HingeRank(in[0], Sparse{in[2], in[3]}, in[1], margin) }
	}
	logistic := func(in []*Node) *Node { return LogisticRank(in[0], Sparse{in[2], in[3]}, in[1]) }
	sp := func(x float64) float64 { return math.Log1p(math.Exp(x)) }
	for _, c := range []struct {
		name string
		s    []float64 // student logits of tokens 0..4
		fn   func(in []*Node) *Node
		want float64
	}{
		// Same order as the teacher, gaps 5, 10, 5 ≥ margin 1; token 4 would violate but is unsupported.
		{"hinge, teacher's order", []float64{5, -7, 10, 0, 50}, hinge(1), 0},
		// Reversed: gaps s2−s0 = −1, s2−s3 = −2, s0−s3 = −1: (2 + 3 + 2)/3.
		{"hinge, reversed", []float64{1, -7, 0, 2, 50}, hinge(1), 7.0 / 3},
		{"hinge, reversed, margin 0", []float64{1, -7, 0, 2, 50}, hinge(0), 4.0 / 3},
		{"logistic, reversed", []float64{1, -7, 0, 2, 50}, logistic, (2*sp(1) + sp(2)) / 3},
		{"logistic, teacher's order", []float64{5, -7, 10, 0, 50}, logistic, (2*sp(-5) + sp(-10)) / 3},
	} {
		if got := rankCase(t, c.s, c.fn); math.Abs(got-c.want) > 1e-6 {
			t.Errorf("%s: %.7f, want %.7f", c.name, got, c.want)
		}
	}

	// On the fixture: per-token pair means, averaged over counted tokens.
	f := newFixture(6)
	c := f.sparse(4, 2)
	pairs := func(b, p int, loss func(d float64) float64) float64 {
		ids, lps := c.entries(f, b, p)
		s, n := 0.0, 0
		for i := range ids {
			for j := range ids {
				if lps[i] > lps[j] {
					s += loss(f.row(f.s, b, p)[ids[i]] - f.row(f.s, b, p)[ids[j]])
					n++
				}
			}
		}
		return s / float64(n)
	}
	gotH := f.evalSparse(t, c, func(in []*Node) *Node { return HingeRank(in[0], sparseOf(in), in[2], 0.5) })
	wantH := f.mean(func(b, p int) float64 { return pairs(b, p, func(d float64) float64 { return math.Max(0, 0.5-d) }) })
	gotL := f.evalSparse(t, c, func(in []*Node) *Node { return LogisticRank(in[0], sparseOf(in), in[2]) })
	wantL := f.mean(func(b, p int) float64 { return pairs(b, p, func(d float64) float64 { return sp(-d) }) })
	if !near(gotH, wantH, 1e-5) || !near(gotL, wantL, 1e-5) {
		t.Errorf("hinge %.7f (host %.7f), logistic %.7f (host %.7f)", gotH, wantH, gotL, wantL)
	}
}

// TestPLDHandComputed: V=3, teacher logits (2, 1, 0), gold 1, so π = (1, 0, 2)
// and the weights are softmax(2, 1, 0) = (0.665, 0.245, 0.090).
func TestPLDHandComputed(t *testing.T) {
	w := softmax([]float64{2, 1, 0}, 1)
	for _, c := range []struct {
		s    []float64
		want float64
	}{
		// Uniform student: each step picks among 3, 2, 1 equal scores.
		{[]float64{0, 0, 0}, w[1]*math.Log(3) + w[0]*math.Log(2)}, // ≈ 0.7299716
		// Student (1, 3, 0): step 1 picks 1 among {0,1,2}, step 2 picks 0 among {0,2}, step 3 is certain.
		{[]float64{1, 3, 0}, w[1]*(-3+math.Log(math.E+math.Exp(3)+1)) + w[0]*(-1+math.Log(math.E+1))},
	} {
		got := scalar(t, func(in []*Node) *Node { return PLD(in[0], in[1], in[2], in[3], 1) },
			tensors.FromFlatDataAndDimensions(f32s(c.s), 1, 1, 3),
			tensors.FromFlatDataAndDimensions([]float32{2, 1, 0}, 1, 1, 3),
			tensors.FromFlatDataAndDimensions([]int32{1}, 1, 1),
			tensors.FromFlatDataAndDimensions([]float32{1}, 1, 1))
		if math.Abs(got-c.want) > 1e-6 {
			t.Errorf("PLD(student %v) = %.7f, want %.7f", c.s, got, c.want)
		}
	}
	if want := w[1]*math.Log(3) + w[0]*math.Log(2); math.Abs(want-0.7299716) > 1e-6 {
		t.Errorf("hand value %.7f", want)
	}
}

// TestPLD checks PLD and SparsePLD against the host, SparsePLD with k = V
// against PLD (values and gradients), and that PLD prefers a student that
// ranks like the teacher.
func TestPLD(t *testing.T) {
	f := newFixture(7)
	y := f.targets()
	for _, T := range temps {
		got := f.eval(t, func(in []*Node) *Node { return PLD(in[0], in[1], in[3], in[2], T) })
		want := f.mean(func(b, p int) float64 {
			return hostPLD(f.row(f.s, b, p), f.row(f.z, b, p), int(y[b*f.T+p]), softmax(f.row(f.z, b, p), T))
		})
		if !near(got, want, 1e-5) {
			t.Errorf("PLD at T=%g: %.7f, host %.7f", T, got, want)
		}
		sparse := f.evalSparse(t, f.sparse(f.V, uint64(T)), func(in []*Node) *Node {
			return SparsePLD(in[0], sparseOf(in), in[3], in[2], T)
		})
		if !near(sparse, got, 1e-6) {
			t.Errorf("SparsePLD with k=V at T=%g: %.7f, PLD %.7f", T, sparse, got)
		}
		// k = 2 < V: PLD with the teacher's weights renormalised over its top-k, 0 elsewhere.
		c := f.sparse(2, uint64(5+T))
		trunc := f.evalSparse(t, c, func(in []*Node) *Node { return SparsePLD(in[0], sparseOf(in), in[3], in[2], T) })
		wantTrunc := f.mean(func(b, p int) float64 {
			ids, lps := c.entries(f, b, p)
			w := make([]float64, f.V)
			sum := 0.0
			for i, id := range ids {
				w[id] = math.Exp(lps[i] / T)
				sum += w[id]
			}
			for i := range w {
				w[i] /= sum
			}
			return hostPLD(f.row(f.s, b, p), f.row(f.z, b, p), int(y[b*f.T+p]), w)
		})
		if !near(trunc, wantTrunc, 1e-5) {
			t.Errorf("SparsePLD with k=2 at T=%g: %.7f, host %.7f", T, trunc, wantTrunc)
		}
	}

	c := f.sparse(f.V, 11)
	args := append(f.inputs(),
		tensors.FromFlatDataAndDimensions(c.ids, f.B, f.T, c.K),
		tensors.FromFlatDataAndDimensions(c.lps, f.B, f.T, c.K))
	diff := flat[float32](run(t, func(in []*Node) *Node {
		a := Gradient(PLD(in[0], in[1], in[3], in[2], 2), in[0])[0]
		b := Gradient(SparsePLD(in[0], sparseOf(in), in[3], in[2], 2), in[0])[0]
		return Concatenate([]*Node{Sub(a, b), a}, -1)
	}, args...))
	for i := 0; i < len(diff); i += 2 * f.V {
		for v := range f.V {
			if d, g := diff[i+v], diff[i+f.V+v]; !(math.Abs(float64(d)) < 1e-6) || math.IsNaN(float64(g)) {
				t.Fatalf("PLD gradient %g differs from SparsePLD's by %g", g, d)
			}
		}
	}

	// A student ranking tokens in π's order (gold first, then by teacher
	// logit) loses less than one ranking them in reverse.
	aligned, reversed := *f, *f
	aligned.s, reversed.s = make([]float64, len(f.s)), make([]float64, len(f.s))
	for b := range f.B {
		for p := range f.T {
			gold := int(y[b*f.T+p])
			rank := []int{gold}
			for _, v := range byDescending(f.row(f.z, b, p)) {
				if v != gold {
					rank = append(rank, v)
				}
			}
			for k, v := range rank {
				aligned.row(aligned.s, b, p)[v] = float64(2 * (f.V - k))
				reversed.row(reversed.s, b, p)[v] = float64(2 * k)
			}
		}
	}
	pld := func(in []*Node) *Node { return PLD(in[0], in[1], in[3], in[2], 1) }
	if a, r, o := aligned.eval(t, pld), reversed.eval(t, pld), f.eval(t, pld); !(a < o && o < r) {
		t.Errorf("PLD: aligned student %.4f, random %.4f, reversed %.4f; want aligned < random < reversed", a, o, r)
	}
}

func TestMaskAndTargets(t *testing.T) {
	for _, labels := range []any{
		[][]int32{{-100, 5, -100, 7}},
		[][]int64{{-100, 5, -100, 7}},
	} {
		out := MustExecOnceN(testBackend(t), func(l *Node) (*Node, *Node) { return Mask(l), Targets(l) }, labels)
		if m := flat[float32](out[0]); fmt.Sprint(m) != "[1 0 1 0]" {
			t.Errorf("Mask(%v) = %v, want [1 0 1 0]", labels, m)
		}
		if y := flat[int32](out[1]); fmt.Sprint(y) != "[5 0 7 0]" {
			t.Errorf("Targets(%v) = %v, want [5 0 7 0]", labels, y)
		}
	}

	// One token: nothing to predict.
	out := MustExecOnceN(testBackend(t), func(l *Node) (*Node, *Node) { return Mask(l), Targets(l) }, [][]int32{{5}, {-100}})
	if m, y := flat[float32](out[0]), flat[int32](out[1]); fmt.Sprint(m, y) != "[0 0] [0 0]" {
		t.Errorf("Mask, Targets of one token: %v %v, want zeros", m, y)
	}

	// The mask may be any numeric dtype: an int32 mask gives the float one's loss.
	f := newFixture(8)
	want := f.eval(t, func(in []*Node) *Node { return ForwardKL(in[0], in[1], in[2], 1) })
	args := f.inputs()
	m := f.mask()
	im := make([]int32, len(m))
	for i, v := range m {
		im[i] = int32(v)
	}
	args[2] = tensors.FromFlatDataAndDimensions(im, f.B, f.T)
	if got := scalar(t, func(in []*Node) *Node { return ForwardKL(in[0], in[1], in[2], 1) }, args...); got != want {
		t.Errorf("ForwardKL with an int32 mask %.7f, float32 mask %.7f", got, want)
	}
	// And Mask(labels) in the graph is the fixture's mask.
	args[2] = tensors.FromFlatDataAndDimensions(f.labels, f.B, f.T)
	if got := scalar(t, func(in []*Node) *Node { return ForwardKL(in[0], in[1], Mask(in[2]), 1) }, args...); got != want {
		t.Errorf("ForwardKL with Mask(labels) %.7f, host mask %.7f", got, want)
	}
}
