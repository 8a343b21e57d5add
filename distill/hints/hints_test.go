package hints

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/gomlx/compute/dtypes"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"
)

// toy is a batch of hidden states of a one-layer student and teacher:
// B rows of T tokens, the last state of each paired (Pairs {1, 1}).
type toy struct {
	B, T, Hs, Ht int
	s, t         *mat // [B·T, Hs], [B·T, Ht]: the last hidden states
	mask         []int32
}

func newToy(rng *rand.Rand, b, tk, hs, ht int) *toy {
	y := &toy{B: b, T: tk, Hs: hs, Ht: ht, s: randMat(rng, b*tk, hs, 1), t: randMat(rng, b*tk, ht, 1.5)}
	y.mask = make([]int32, b*tk)
	for i := range y.mask {
		if i%3 != 2 { // every third token is ignored
			y.mask[i] = 1
		}
	}
	return y
}

// hidden returns the hidden-state lists (embeddings, last) of student and
// teacher in g, the embeddings random noise that no pair reads.
func (y *toy) hidden(g *Graph, s, t *mat) (student, teacher []*Node) {
	noiseS := make([]float64, y.B*y.T*y.Hs)
	noiseT := make([]float64, y.B*y.T*y.Ht)
	for i := range noiseS {
		noiseS[i] = float64(i % 7)
	}
	student = []*Node{constant(g, noiseS, y.B, y.T, y.Hs), constant(g, s.d, y.B, y.T, y.Hs)}
	teacher = []*Node{constant(g, noiseT, y.B, y.T, y.Ht), constant(g, t.d, y.B, y.T, y.Ht)}
	return student, teacher
}

func (y *toy) maskNode(g *Graph) *Node {
	return Const(g, tensors.FromFlatDataAndDimensions(y.mask, y.B, y.T))
}

// hostStandardize standardises t's columns over the counted rows.
func hostStandardize(t *mat, mask []int32) *mat {
	out := newMat(t.r, t.c)
	for j := 0; j < t.c; j++ {
		var n, mu, v float64
		for i := 0; i < t.r; i++ {
			if mask[i] != 0 {
				n++
				mu += t.at(i, j)
			}
		}
		mu /= n
		for i := 0; i < t.r; i++ {
			if mask[i] != 0 {
				v += (t.at(i, j) - mu) * (t.at(i, j) - mu)
			}
		}
		v /= n
		for i := 0; i < t.r; i++ {
			out.set(i, j, (t.at(i, j)-mu)/math.Sqrt(v+StandardizeEps))
		}
	}
	return out
}

// hostLoss is the masked mean over tokens of MSE or 1 − cos between rows.
func hostLoss(kind string, p, t *mat, mask []int32) float64 {
	var sum, n float64
	for i := 0; i < p.r; i++ {
		if mask[i] == 0 {
			continue
		}
		var e, dot, pp, tt float64
		for j := 0; j < p.c; j++ {
			d := p.at(i, j) - t.at(i, j)
			e += d * d
			dot += p.at(i, j) * t.at(i, j)
			pp += p.at(i, j) * p.at(i, j)
			tt += t.at(i, j) * t.at(i, j)
		}
		if kind == LossCosine {
			sum += 1 - dot/math.Sqrt(pp*tt)
		} else {
			sum += e / float64(p.c)
		}
		n++
	}
	return sum / n
}

func setVar(t testing.TB, v *model.Variable, data []float64, dims ...int) {
	t.Helper()
	if err := v.SetValue(tensors.FromFlatDataAndDimensions(f32(data), dims...)); err != nil {
		t.Fatal(err)
	}
}

// TestFitNetsLoss checks FitNets' losses with a known regressor against
// float64 host math.
func TestFitNetsLoss(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	y := newToy(rng, 2, 3, 3, 4)
	w := randMat(rng, y.Hs, y.Ht, 0.7)
	bias := randMat(rng, 1, y.Ht, 0.3)
	project := func(withBias bool) *mat {
		p := mul(y.s, w)
		if withBias {
			for i := 0; i < p.r; i++ {
				for j := 0; j < p.c; j++ {
					p.d[i*p.c+j] += bias.d[j]
				}
			}
		}
		return p
	}
	scaled := project(true)
	for i := range scaled.d {
		scaled.d[i] *= 2.5 // same directions as the projection
	}
	cases := []struct {
		name    string
		cfg     Config
		teacher *mat
		want    float64
	}{
		{"mse", Config{Loss: LossMSE}, y.t, hostLoss(LossMSE, project(false), y.t, y.mask)},
		{"mse bias", Config{Loss: LossMSE, Bias: true}, y.t, hostLoss(LossMSE, project(true), y.t, y.mask)},
		{"cosine", Config{Loss: LossCosine}, y.t, hostLoss(LossCosine, project(false), y.t, y.mask)},
		{"cosine bias", Config{Loss: LossCosine, Bias: true}, y.t, hostLoss(LossCosine, project(true), y.t, y.mask)},
		{"mse standardized", Config{Normalize: NormStandardize}, y.t, hostLoss(LossMSE, project(false), hostStandardize(y.t, y.mask), y.mask)},
		{"cosine same direction", Config{Loss: LossCosine, Bias: true}, scaled, 0},
	}
	for _, c := range cases {
		store := model.NewStore()
		c.cfg.Pairs = []Pair{{1, 1}}
		h, err := New(store, c.cfg, Side{1, y.Hs}, Side{1, y.Ht})
		if err != nil {
			t.Fatal(err)
		}
		setVar(t, h.Vars()["/distill_hints/s1-t1/weight"], w.d, y.Hs, y.Ht)
		if c.cfg.Bias {
			setVar(t, h.Vars()["/distill_hints/s1-t1/bias"], bias.d, y.Ht)
		}
		out := run(t, store, func(g *Graph) []*Node {
			s, te := y.hidden(g, y.s, c.teacher)
			zero := ZerosLike(y.maskNode(g))
			return []*Node{h.Loss(s, te, y.maskNode(g)), h.Loss(s, te, zero)}
		})
		if got := out[0][0]; !near(got, c.want, 1e-5) {
			t.Errorf("%s: loss %.7f, want %.7f", c.name, got, c.want)
		}
		if got := out[1][0]; got != 0 {
			t.Errorf("%s: loss over no tokens %v, want 0", c.name, got)
		}
	}
}

// TestFitNetsBFloat16 feeds bf16 hidden states (a bf16 model's): the loss
// is computed in float32 from the rounded states.
func TestFitNetsBFloat16(t *testing.T) {
	rng := rand.New(rand.NewPCG(12, 13))
	y := newToy(rng, 2, 3, 3, 4)
	w := randMat(rng, y.Hs, y.Ht, 0.7)
	store := model.NewStore()
	h, err := New(store, Config{Pairs: []Pair{{1, 1}}}, Side{1, y.Hs}, Side{1, y.Ht})
	if err != nil {
		t.Fatal(err)
	}
	setVar(t, h.Vars()["/distill_hints/s1-t1/weight"], w.d, y.Hs, y.Ht)
	out := run(t, store, func(g *Graph) []*Node {
		s, te := y.hidden(g, y.s, y.t)
		for i := range s {
			s[i] = ConvertDType(s[i], dtypes.BFloat16)
			te[i] = ConvertDType(te[i], dtypes.BFloat16)
		}
		l := h.Loss(s, te, y.maskNode(g))
		if l.DType() != dtypes.Float32 {
			t.Errorf("loss dtype %s, want float32", l.DType())
		}
		return []*Node{l}
	})
	want := hostLoss(LossMSE, mul(y.s, w), y.t, y.mask)
	if got := out[0][0]; !near(got, want, 2e-2) {
		t.Errorf("bf16 loss %.5f, want %.5f (to bf16 rounding)", got, want)
	}
}

// TestFitNetsConverges trains a regressor by plain gradient descent on a
// teacher that is a fixed linear map of the student.
func TestFitNetsConverges(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	y := newToy(rng, 4, 8, 4, 3)
	a := randMat(rng, y.Hs, y.Ht, 1)
	teacher := mul(y.s, a)
	store := model.NewStore()
	h, err := New(store, Config{Pairs: []Pair{{1, 1}}, Seed: 7}, Side{1, y.Hs}, Side{1, y.Ht})
	if err != nil {
		t.Fatal(err)
	}
	wv := h.Vars()[h.Params()[0]]
	const lr = 1.0
	step := newExec(t, store, func(g *Graph) []*Node {
		s, te := y.hidden(g, y.s, teacher)
		loss := h.Loss(s, te, y.maskNode(g))
		w := wv.NodeValue(g)
		grad := Gradient(loss, w)[0]
		wv.SetNodeValue(Sub(w, MulScalar(grad, lr)))
		return []*Node{loss}
	})
	first := step()[0][0]
	var last float64
	for range 300 {
		last = step()[0][0]
	}
	t.Logf("FitNets MSE: %.4g at first, %.3g after 300 steps", first, last)
	if first < 0.1 || last > 1e-3 {
		t.Errorf("loss %.4g at first, %.3g after 300 steps: want it below 1e-3", first, last)
	}
	// The regressor is then the teacher's map.
	got := flat(wv.MustValue())
	for i, want := range a.d {
		if !near(got[i], want, 1e-2) {
			t.Errorf("W[%d] = %.4f, want %.4f", i, got[i], want)
		}
	}
}
