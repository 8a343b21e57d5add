package unlearn

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/gomlx/compute"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"

	"github.com/lethe-ml/lethe/internal/backend"
	"github.com/lethe-ml/lethe/models"
)

func testBackend(t testing.TB) compute.Backend {
	t.Helper()
	b, _, err := backend.New("go:ops_sequential")
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// toy is a step of B=5 rows (2 forget, 1 retain, 2 alternate), T=4, V=5,
// with random logits for the model and its reference, hidden states of one
// layer (H=3), and labels with ignored positions.
type toy struct {
	B, T, V, H int
	cur, ref   []float64 // logits [B, T, V]
	hCur, hRef []float64 // hidden [B, T, H], layer 0's output
	labels     []int32
	layout     Layout
}

func newToy(seed uint64) *toy {
	rng := rand.New(rand.NewPCG(seed, 1))
	t := &toy{B: 5, T: 4, V: 5, H: 3, layout: Layout{2, 1, 2}}
	for range t.B * t.T * t.V {
		t.cur = append(t.cur, 2*rng.NormFloat64())
		t.ref = append(t.ref, 2*rng.NormFloat64())
	}
	for range t.B * t.T * t.H {
		t.hCur = append(t.hCur, rng.NormFloat64())
		t.hRef = append(t.hRef, rng.NormFloat64())
	}
	t.labels = []int32{
		-100, 1, 2, 3,
		-100, -100, 4, 0,
		-100, 2, 2, 1,
		-100, 3, 0, -100,
		-100, -100, 1, 1,
	}
	return t
}

// logp is log softmax(logits)[b, t, y] on the host.
func (t *toy) logp(logits []float64, b, pos, y int) float64 {
	row := logits[(b*t.T+pos)*t.V : (b*t.T+pos+1)*t.V]
	mx := math.Inf(-1)
	for _, v := range row {
		mx = math.Max(mx, v)
	}
	s := 0.0
	for _, v := range row {
		s += math.Exp(v - mx)
	}
	return row[y] - mx - math.Log(s)
}

// rows returns the rows of a part.
func (t *toy) rows(p Part) []int {
	start, n := t.layout.rows(p)
	var out []int
	for i := range n {
		out = append(out, start+i)
	}
	return out
}

// tokens calls f for every predicted (row, position, label) of part p.
func (t *toy) tokens(p Part, f func(b, pos, y int)) {
	for _, b := range t.rows(p) {
		for pos := 0; pos+1 < t.T; pos++ {
			if y := t.labels[b*t.T+pos+1]; y >= 0 {
				f(b, pos, int(y))
			}
		}
	}
}

func (t *toy) nll(logits []float64, p Part) float64 {
	s, n := 0.0, 0
	t.tokens(p, func(b, pos, y int) { s -= t.logp(logits, b, pos, y); n++ })
	return s / float64(n)
}

func (t *toy) seqLogProb(logits []float64, b int) (sum float64, n int) {
	for pos := 0; pos+1 < t.T; pos++ {
		if y := t.labels[b*t.T+pos+1]; y >= 0 {
			sum += t.logp(logits, b, pos, int(y))
			n++
		}
	}
	return sum, n
}

func logSigmoid(x float64) float64 { return -math.Log1p(math.Exp(-x)) }

// graphLoss evaluates method m's loss on the toy in a graph.
func (t *toy) graphLoss(tb testing.TB, m *Method) float64 {
	tb.Helper()
	toF32 := func(x []float64) []float32 {
		out := make([]float32, len(x))
		for i, v := range x {
			out[i] = float32(v)
		}
		return out
	}
	cur := tensors.FromFlatDataAndDimensions(toF32(t.cur), t.B, t.T, t.V)
	ref := tensors.FromFlatDataAndDimensions(toF32(t.ref), t.B, t.T, t.V)
	hc := tensors.FromFlatDataAndDimensions(toF32(t.hCur), t.B, t.T, t.H)
	hr := tensors.FromFlatDataAndDimensions(toF32(t.hRef), t.B, t.T, t.H)
	lab := tensors.FromFlatDataAndDimensions(t.labels, t.B, t.T)
	out := MustExecOnce(testBackend(tb), func(cur, ref, hc, hr, lab *Node) *Node {
		pc := newPassFromOutputs(models.Outputs{Logits: cur, Hidden: []*Node{hc, hc}}, lab, t.layout)
		pr := newPassFromOutputs(models.Outputs{Logits: ref, Hidden: []*Node{hr, hr}}, lab, t.layout)
		return m.Loss(pc, pr)
	}, cur, ref, hc, hr, lab)
	return float64(tensors.ToScalar[float32](out))
}

func ptr[T any](v T) *T { return &v }

// TestMethodLosses checks every objective against its formula computed on
// the host in float64.
func TestMethodLosses(t *testing.T) {
	ty := newToy(1)
	steer := steeringVector(ty.H, 2, 7)
	cases := []struct {
		cfg  MethodConfig
		want func() float64
	}{
		{MethodConfig{Name: "grad_ascent"}, func() float64 { return -ty.nll(ty.cur, Forget) }},
		{MethodConfig{Name: "task_vector"}, func() float64 { return ty.nll(ty.cur, Forget) }},
		{MethodConfig{Name: "stochastic_teacher", Alpha: ptr(0.5)}, func() float64 {
			kl, n := 0.0, 0
			ty.tokens(Forget, func(b, pos, _ int) {
				for v := range ty.V {
					lp, lq := ty.logp(ty.ref, b, pos, v), ty.logp(ty.cur, b, pos, v)
					kl += math.Exp(lp) * (lp - lq)
				}
				n++
			})
			return kl/float64(n) + 0.5*ty.nll(ty.cur, Retain)
		}},
		{MethodConfig{Name: "grad_diff", Gamma: ptr(0.5), Alpha: ptr(2.0)}, func() float64 {
			return -0.5*ty.nll(ty.cur, Forget) + 2*ty.nll(ty.cur, Retain)
		}},
		{MethodConfig{Name: "grad_diff", RetainLoss: "kl"}, func() float64 {
			kl, n := 0.0, 0
			ty.tokens(Retain, func(b, pos, _ int) {
				for v := range ty.V {
					lp, lq := ty.logp(ty.ref, b, pos, v), ty.logp(ty.cur, b, pos, v)
					kl += math.Exp(lp) * (lp - lq)
				}
				n++
			})
			return -ty.nll(ty.cur, Forget) + kl/float64(n)
		}},
		{MethodConfig{Name: "npo", Beta: 0.5}, func() float64 {
			s := 0.0
			for _, b := range ty.rows(Forget) {
				c, _ := ty.seqLogProb(ty.cur, b)
				r, _ := ty.seqLogProb(ty.ref, b)
				s += logSigmoid(-0.5 * (c - r))
			}
			return -2/0.5*s/2 + ty.nll(ty.cur, Retain)
		}},
		{MethodConfig{Name: "simnpo", Beta: 2, Delta: 0.3, Alpha: ptr(0.0)}, func() float64 {
			s := 0.0
			for _, b := range ty.rows(Forget) {
				c, n := ty.seqLogProb(ty.cur, b)
				s += logSigmoid(-2*c/float64(n) - 0.3)
			}
			return -2.0 / 2 * s / 2
		}},
		{MethodConfig{Name: "dpo", Beta: 0.2, Alpha: ptr(0.0)}, func() float64 {
			s := 0.0
			for i, b := range ty.rows(Forget) {
				a := ty.rows(Alternate)[i]
				cw, _ := ty.seqLogProb(ty.cur, a)
				rw, _ := ty.seqLogProb(ty.ref, a)
				cl, _ := ty.seqLogProb(ty.cur, b)
				rl, _ := ty.seqLogProb(ty.ref, b)
				s += logSigmoid(0.2 * ((cw - rw) - (cl - rl)))
			}
			return -2 / 0.2 * s / 2
		}},
		{MethodConfig{Name: "undial", Beta: 3, Alpha: ptr(0.0)}, func() float64 {
			s, n := 0.0, 0
			ty.tokens(Forget, func(b, pos, y int) {
				row := make([]float64, ty.V)
				mx := math.Inf(-1)
				for v := range ty.V {
					row[v] = ty.ref[(b*ty.T+pos)*ty.V+v]
					if v == y {
						row[v] -= 3
					}
					mx = math.Max(mx, row[v])
				}
				z := 0.0
				for v := range row {
					z += math.Exp(row[v] - mx)
				}
				for v := range ty.V {
					s -= math.Exp(row[v]-mx) / z * ty.logp(ty.cur, b, pos, v)
				}
				n++
			})
			return s / float64(n)
		}},
		{MethodConfig{Name: "wga", Beta: 0.7, Alpha: ptr(0.0)}, func() float64 {
			s, n := 0.0, 0
			ty.tokens(Forget, func(b, pos, y int) {
				lp := ty.logp(ty.cur, b, pos, y)
				s += math.Pow(math.Exp(lp), 0.7) * lp
				n++
			})
			return s / float64(n)
		}},
		{MethodConfig{Name: "rmu", Layer: ptr(0), SteeringCoef: 2}, func() float64 {
			mse := func(rows []int, target func(b, pos, k int) float64) float64 {
				s, n := 0.0, 0
				for _, b := range rows {
					for pos := range ty.T {
						if ty.labels[b*ty.T+pos] < 0 {
							continue
						}
						n += ty.H
						for k := range ty.H {
							d := ty.hCur[(b*ty.T+pos)*ty.H+k] - target(b, pos, k)
							s += d * d
						}
					}
				}
				return s / float64(n)
			}
			f := mse(ty.rows(Forget), func(_, _, k int) float64 { return float64(steer[k]) })
			r := mse(ty.rows(Retain), func(b, pos, k int) float64 { return ty.hRef[(b*ty.T+pos)*ty.H+k] })
			return f + r
		}},
	}
	for _, tc := range cases {
		m, err := NewMethod(tc.cfg, 1, ty.H, 7)
		if err != nil {
			t.Fatalf("%+v: %v", tc.cfg, err)
		}
		got, want := ty.graphLoss(t, m), tc.want()
		if math.Abs(got-want) > 1e-5*math.Max(1, math.Abs(want)) {
			t.Errorf("%s: loss %.7f, formula %.7f", m.Name(), got, want)
		}
	}
}

// TestClosedForms: at the reference (cur = ref) NPO and DPO lose
// (2/β)·log 2; KL of identical distributions is 0; RMU's forget term is 0
// on activations equal to c·u, and u has norm c.
func TestClosedForms(t *testing.T) {
	ty := newToy(2)
	ty.ref = ty.cur
	for _, name := range []string{"npo", "dpo"} {
		m, err := NewMethod(MethodConfig{Name: name, Beta: 0.25, Alpha: ptr(0.0)}, 1, ty.H, 1)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := ty.graphLoss(t, m), 2/0.25*math.Ln2; math.Abs(got-want) > 1e-5 {
			t.Errorf("%s at the reference: %.7f, want (2/β)·log 2 = %.7f", name, got, want)
		}
	}
	m, _ := NewMethod(MethodConfig{Name: "grad_diff", RetainLoss: "kl", Gamma: ptr(0.0)}, 1, ty.H, 1)
	if got := ty.graphLoss(t, m); math.Abs(got) > 1e-6 {
		t.Errorf("KL(p‖p) = %g", got)
	}
	steer := steeringVector(ty.H, 6.5, 3)
	norm := 0.0
	for i, v := range steer {
		norm += float64(v) * float64(v)
		if v <= 0 {
			t.Errorf("u[%d] = %g, want positive (uniform [0,1) draw)", i, v)
		}
	}
	if math.Abs(math.Sqrt(norm)-6.5) > 1e-5 {
		t.Errorf("|c·u| = %g, want 6.5", math.Sqrt(norm))
	}
	ty.hCur = nil
	for range ty.B * ty.T {
		for _, v := range steeringVector(ty.H, 2, 9) {
			ty.hCur = append(ty.hCur, float64(v))
		}
	}
	m, _ = NewMethod(MethodConfig{Name: "rmu", Layer: ptr(0), Alpha: ptr(0.0)}, 1, ty.H, 9)
	if got := ty.graphLoss(t, m); math.Abs(got) > 1e-6 {
		t.Errorf("rmu forget term at c·u: %g", got)
	}
}

func TestMethodConfigErrors(t *testing.T) {
	for _, tc := range []struct {
		cfg  MethodConfig
		want string
	}{
		{MethodConfig{}, "method.name: required"},
		{MethodConfig{Name: "gradient_descent"}, "not one of"},
		{MethodConfig{Name: "npo", Beta: -1}, "method.beta"},
		{MethodConfig{Name: "grad_diff", RetainLoss: "mse"}, "method.retain_loss"},
		{MethodConfig{Name: "rmu", Layer: ptr(4)}, "method.layer"},
		{MethodConfig{Name: "npo", Saliency: 1.5}, "method.saliency"},
	} {
		if _, err := NewMethod(tc.cfg, 2, 8, 1); err == nil || !contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v, want %q", tc.cfg, err, tc.want)
		}
	}
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }

// TestPaddingRows: a row without answer tokens (a short part padded to the
// step's layout) counts for nothing in sequence-level objectives.
func TestPaddingRows(t *testing.T) {
	ty := newToy(3)
	for pos := range ty.T {
		ty.labels[1*ty.T+pos] = -100 // forget row 1: padding
	}
	m, err := NewMethod(MethodConfig{Name: "npo", Beta: 0.5, Alpha: ptr(0.0)}, 1, ty.H, 1)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := ty.seqLogProb(ty.cur, 0)
	r, _ := ty.seqLogProb(ty.ref, 0)
	want := -2 / 0.5 * logSigmoid(-0.5*(c-r))
	if got := ty.graphLoss(t, m); math.Abs(got-want) > 1e-5 {
		t.Errorf("npo with a padding row: %.7f, want %.7f (the real row alone)", got, want)
	}
}

// TestMaskedGradients: for linear terms the gradients are their
// coefficients; MUDMAN keeps the forget coefficient where the signs agree
// and scales each tensor to unit RMS.
func TestMaskedGradients(t *testing.T) {
	w := tensors.FromFlatDataAndDimensions([]float32{0.5, -1, 2, 3}, 4)
	out := MustExecOnce(testBackend(t), func(w *Node) *Node {
		g := w.Graph()
		cf := Const(g, []float32{2, -1, 3, -4})
		cr := Const(g, []float32{1, 1, -5, -2})
		f := ReduceAllSum(Mul(cf, w))
		r := ReduceAllSum(Mul(cr, w))
		return MaskedGradients(f, r, []*Node{w})[0]
	}, w)
	var got []float32
	out.MustConstFlatData(func(f any) { got = append(got, f.([]float32)...) })
	// Kept: 2 (both +) and -4 (both -); RMS of [2, 0, 0, -4] = sqrt(20/4).
	rms := math.Sqrt(20.0 / 4)
	want := []float64{2 / rms, 0, 0, -4 / rms}
	for i := range want {
		if math.Abs(float64(got[i])-want[i]) > 1e-6 {
			t.Fatalf("masked gradient %v, want %v", got, want)
		}
	}
}
