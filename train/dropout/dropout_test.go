package dropout

import (
	"math"
	"testing"

	"github.com/gomlx/compute/dtypes"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"

	"github.com/lethe-ml/lethe/models"
)

// TestApplyInvertedDropout draws R = 400 masks of a vector x of D = 256
// values (one [R, D] draw) and checks, for each rate, that the fraction of
// zeros is p within 5σ (σ = √(p(1-p)/(RD)) ≤ 0.0016), that kept entries
// are x/(1-p), that every entry's mean over the R masks is x within 6σ
// (σ = |x|·√(p/((1-p)R))) and the mean of all entries within 5σ of the
// mean of x; rate 0 is bitwise the identity.
func TestApplyInvertedDropout(t *testing.T) {
	const R, D = 400, 256
	xs := make([]float32, R*D)
	for i := range xs {
		xs[i] = float32(i%D+1) / D // x_j = (j+1)/D, the same in every row
	}
	store := model.NewStore()
	if err := store.SetRNGStateFromSeed(7); err != nil {
		t.Fatal(err)
	}
	exec, err := model.NewExec(testBackend(t), store, func(_ *model.Scope, x, rate *Node) *Node {
		return Apply(store, x, rate)
	})
	if err != nil {
		t.Fatal(err)
	}
	xT := tensors.FromFlatDataAndDimensions(xs, R, D)
	for _, p := range []float64{0, 0.1, 0.5, 0.9} {
		outs, _ := run(t, exec, xT, tensors.FromScalar(float32(p)))
		y := outs[0]
		zeros := 0
		colSum := make([]float64, D)
		total, want := 0.0, 0.0
		for i, v := range y {
			x := float64(xs[i])
			switch {
			case v == 0:
				zeros++
			case math.Abs(float64(v)-x/(1-p)) > 1e-6*x/(1-p):
				t.Fatalf("p=%g: kept entry %g, want x/(1-p) = %g", p, v, x/(1-p))
			}
			colSum[i%D] += float64(v)
			total += float64(v)
			want += x
		}
		if p == 0 {
			if d := maxAbsDiff(y, xs); d != 0 {
				t.Errorf("rate 0 is not the identity: max diff %g", d)
			}
			continue
		}
		frac := float64(zeros) / float64(R*D)
		if sd := math.Sqrt(p * (1 - p) / (R * D)); math.Abs(frac-p) > 5*sd {
			t.Errorf("p=%g: %.4f zeroed, want %g ± %.4f", p, frac, p, 5*sd)
		}
		for j := range D {
			x := float64(xs[j])
			sd := x * math.Sqrt(p/((1-p)*R))
			if mean := colSum[j] / R; math.Abs(mean-x) > 6*sd {
				t.Errorf("p=%g: entry %d mean %.4f over %d masks, want %.4f ± %.4f", p, j, mean, R, x, 6*sd)
			}
		}
		// All entries: relative deviation of the sum, σ² = Σx²·p/(1-p) / (Σx)².
		var sq float64
		for _, x := range xs {
			sq += float64(x) * float64(x)
		}
		sd := math.Sqrt(sq*p/(1-p)) / want
		t.Logf("p=%g: zeroed %.4f, mean ratio %.5f (5σ = %.4f)", p, frac, total/want, 5*sd)
		if math.Abs(total/want-1) > 5*sd {
			t.Errorf("p=%g: mean ratio %.5f, want 1 ± %.4f", p, total/want, 5*sd)
		}
	}
}

// allSites turns every in-graph variant on, with a late schedule (rates 0
// before step 10).
func allSites() Config {
	return Config{
		Attention: 0.1, Residual: 0.1, Embeddings: 0.1, Penultimate: 0.5,
		LayerDrop: LayerDropConfig{Rate: 0.3}, Mixout: MixoutConfig{Rate: 0.3}, TLM: TLMConfig{Rate: 0.2},
		Schedule: ScheduleConfig{Name: ScheduleLate, Steps: 10},
	}
}

// TestRatesInStoreNoRecompile checks on the llama fixture, with every
// variant on, that rates 0 (late schedule before its switch) make the
// training hooks bitwise the identity, that evaluation hooks are too, and
// that SetStep past the switch changes the outcome of the same compiled
// graph (no recompilation); back at rate 0 it is the identity again.
func TestRatesInStoreNoRecompile(t *testing.T) {
	m := loadModel(t, "llama")
	b := fixtureBatch(t, "llama")
	plain, plainLoss := plainLogits(t, m, b)
	reg, err := New(m, allSites())
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Store.SetRNGStateFromSeed(1); err != nil {
		t.Fatal(err)
	}
	evalOut, _ := run(t, forwardExec(t, m, models.Options{Hooks: reg.EvalHooks()}), idsTensor(b))
	if d := maxAbsDiff(evalOut[0], plain); d != 0 {
		t.Errorf("evaluation hooks change the logits by %g", d)
	}
	exec := forwardExec(t, m, models.Options{Hooks: reg.Hooks()})
	steps := []struct {
		step     int
		identity bool
	}{{0, true}, {9, true}, {10, false}, {50, false}, {0, true}}
	var g0 *Graph
	for _, s := range steps {
		if err := reg.SetStep(s.step, 100); err != nil {
			t.Fatal(err)
		}
		out, g := run(t, exec, idsTensor(b))
		if g0 == nil {
			g0 = g
		} else if g != g0 {
			t.Errorf("step %d: a new graph was compiled", s.step)
		}
		d := maxAbsDiff(out[0], plain)
		t.Logf("step %d: rates %+v, loss %.5f (plain %.5f), max |Δlogits| %.3g", s.step, reg.Rates(), out[1][0], plainLoss, d)
		if s.identity && d != 0 {
			t.Errorf("step %d: rates 0 change the logits by %g", s.step, d)
		}
		if !s.identity && d < 1e-3 {
			t.Errorf("step %d: dropout on changes the logits by only %g", s.step, d)
		}
	}
}

// TestScheduleFactor checks the rates of the schedules of Liu et al. (2023)
// at given steps, and that SetStep writes them.
func TestScheduleFactor(t *testing.T) {
	tests := []struct {
		s           ScheduleConfig
		step, total int
		want        float64
	}{
		{ScheduleConfig{}, 0, 100, 1},
		{ScheduleConfig{}, 99, 100, 1},
		{ScheduleConfig{Name: ScheduleEarly, Steps: 20}, 0, 100, 1},
		{ScheduleConfig{Name: ScheduleEarly, Steps: 20}, 19, 100, 1},
		{ScheduleConfig{Name: ScheduleEarly, Steps: 20}, 20, 100, 0},
		{ScheduleConfig{Name: ScheduleEarly, Steps: 20}, 99, 100, 0},
		{ScheduleConfig{Name: ScheduleEarly, Ratio: 0.25}, 24, 100, 1},
		{ScheduleConfig{Name: ScheduleEarly, Ratio: 0.25}, 25, 100, 0},
		{ScheduleConfig{Name: ScheduleLate, Steps: 20}, 0, 100, 0},
		{ScheduleConfig{Name: ScheduleLate, Steps: 20}, 19, 100, 0},
		{ScheduleConfig{Name: ScheduleLate, Steps: 20}, 20, 100, 1},
		{ScheduleConfig{Name: ScheduleLate, Ratio: 0.5}, 49, 100, 0},
		{ScheduleConfig{Name: ScheduleLate, Ratio: 0.5}, 50, 100, 1},
		{ScheduleConfig{Name: ScheduleLinear}, 0, 100, 1},
		{ScheduleConfig{Name: ScheduleLinear}, 25, 100, 0.75},
		{ScheduleConfig{Name: ScheduleLinear}, 100, 100, 0},
		{ScheduleConfig{Name: ScheduleLinear, Steps: 10}, 5, 100, 0.5},
		{ScheduleConfig{Name: ScheduleLinear, Steps: 10}, 60, 100, 0},
	}
	for _, tc := range tests {
		if got := tc.s.Factor(tc.step, tc.total); math.Abs(got-tc.want) > 1e-12 {
			t.Errorf("%+v at step %d/%d: factor %g, want %g", tc.s, tc.step, tc.total, got, tc.want)
		}
	}
	m := loadModel(t, "llama")
	reg, err := New(m, Config{Attention: 0.2, Residual: 0.1, Schedule: ScheduleConfig{Name: ScheduleEarly, Steps: 3}})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		step      int
		att, res  float64
		storedAtt float32
	}{{0, 0.2, 0.1, 0.2}, {2, 0.2, 0.1, 0.2}, {3, 0, 0, 0}} {
		if err := reg.SetStep(tc.step, 10); err != nil {
			t.Fatal(err)
		}
		r := reg.Rates()
		v := m.Store.GetVariable(Scope + "/attention")
		stored := v.MustValue().Value().(float32)
		if r.Attention != tc.att || r.Residual != tc.res || stored != tc.storedAtt {
			t.Errorf("step %d: rates %+v, stored attention %g; want %g, %g", tc.step, r, stored, tc.att, tc.res)
		}
	}
}

// TestMultiSample checks multi-sample dropout (Inoue 2019) on the llama
// fixture: with the penultimate rate at 0 the K-sample loss is the plain
// loss; at p = 0.5 it is the mean of the K losses of K single-sample
// passes drawing the same masks (same seed, same draw order), and those K
// losses differ (independent masks).
func TestMultiSample(t *testing.T) {
	const K = 4
	m := loadModel(t, "llama")
	b := fixtureBatch(t, "llama")
	_, plainLoss := plainLogits(t, m, b)
	reg, err := New(m, Config{Penultimate: 0.5, HeadSamples: K, Schedule: ScheduleConfig{Name: ScheduleLate, Steps: 1}})
	if err != nil {
		t.Fatal(err)
	}
	if reg.HeadSamples() != K {
		t.Fatalf("HeadSamples %d", reg.HeadSamples())
	}
	hooks := reg.Hooks()
	multi := forwardExec(t, m, models.Options{Hooks: hooks, HeadSamples: reg.HeadSamples()})
	single, err := model.NewExec(testBackend(t), m.Store, func(scope *model.Scope, ids *Node) []*Node {
		scope.SetTraining(ids.Graph(), true)
		var losses []*Node
		for range K {
			out := m.Forward(models.Inputs{IDs: ids, Labels: ids}, models.Options{Hooks: hooks})
			losses = append(losses, out.Loss)
		}
		return losses
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := reg.SetStep(0, 10); err != nil { // p = 0
		t.Fatal(err)
	}
	out, _ := run(t, multi, idsTensor(b))
	if d := math.Abs(float64(out[1][0] - plainLoss)); d > 1e-6 {
		t.Errorf("p=0: %d-sample loss %.7f, plain %.7f", K, out[1][0], plainLoss)
	}
	if err := reg.SetStep(1, 10); err != nil { // p = 0.5
		t.Fatal(err)
	}
	if err := m.Store.SetRNGStateFromSeed(42); err != nil {
		t.Fatal(err)
	}
	out, _ = run(t, multi, idsTensor(b))
	got := float64(out[1][0])
	if err := m.Store.SetRNGStateFromSeed(42); err != nil {
		t.Fatal(err)
	}
	each, _ := run(t, single, idsTensor(b))
	mean, distinct := 0.0, map[float32]bool{}
	for _, l := range each {
		mean += float64(l[0]) / K
		distinct[l[0]] = true
	}
	t.Logf("p=0.5: %d-sample loss %.6f, per-sample losses %v (mean %.6f), plain %.6f", K, got, each, mean, plainLoss)
	if math.Abs(got-mean) > 1e-5 {
		t.Errorf("%d-sample loss %.6f is not the mean %.6f of the per-sample losses", K, got, mean)
	}
	if len(distinct) != K {
		t.Errorf("per-sample losses %v are not all different: masks are not independent", each)
	}
}

// TestVeryLargeDropout checks the penultimate site at p = 0.9 (Zhang &
// Bottou 2024): about 90% of the final hidden states are zeroed, the kept
// ones scaled by 10.
func TestVeryLargeDropout(t *testing.T) {
	m := loadModel(t, "llama")
	b := fixtureBatch(t, "llama")
	reg, err := New(m, Config{Penultimate: 0.9})
	if err != nil {
		t.Fatal(err)
	}
	h := reg.Hooks()
	exec, err := model.NewExec(testBackend(t), m.Store, func(scope *model.Scope, ids *Node) []*Node {
		scope.SetTraining(ids.Graph(), true)
		var got *Node
		hooks := models.Hooks{Penultimate: func(k int, x *Node) *Node {
			got = h.Penultimate(k, x)
			return got
		}}
		out := m.Forward(models.Inputs{IDs: ids}, models.Options{Hooks: hooks})
		return []*Node{out.Hidden[len(out.Hidden)-1], ConvertDType(got, dtypes.Float32)}
	})
	if err != nil {
		t.Fatal(err)
	}
	out, _ := run(t, exec, idsTensor(b))
	x, y := out[0], out[1]
	zeros := 0
	for i := range y {
		if y[i] == 0 {
			zeros++
		} else if math.Abs(float64(y[i])-10*float64(x[i])) > 1e-5*math.Abs(10*float64(x[i])) {
			t.Fatalf("kept %g, want 10×%g", y[i], x[i])
		}
	}
	frac, n := float64(zeros)/float64(len(y)), float64(len(y))
	if sd := math.Sqrt(0.9 * 0.1 / n); math.Abs(frac-0.9) > 5*sd {
		t.Errorf("zeroed %.4f of %d, want 0.9 ± %.4f", frac, len(y), 5*sd)
	}
}

// TestBFloat16 runs every in-graph variant on the llama fixture computing
// in bfloat16 over float32 master weights: the hooks keep the dtypes the
// model expects and the logits stay finite and near the plain ones.
func TestBFloat16(t *testing.T) {
	m, err := models.Load(fixtures+"/llama", models.LoadOptions{DType: dtypes.BFloat16, WeightDType: dtypes.Float32})
	if err != nil {
		t.Fatal(err)
	}
	b := fixtureBatch(t, "llama")
	cfg := allSites()
	cfg.Schedule = ScheduleConfig{}
	cfg.HeadSamples = 2
	reg, err := New(m, cfg)
	if err != nil {
		t.Fatal(err)
	}
	exec, err := model.NewExec(testBackend(t), m.Store, func(scope *model.Scope, ids *Node) []*Node {
		scope.SetTraining(ids.Graph(), true)
		out := m.Forward(models.Inputs{IDs: ids, Labels: ids}, models.Options{Hooks: reg.Hooks(), HeadSamples: reg.HeadSamples()})
		return []*Node{ConvertDType(out.Logits, dtypes.Float32), out.Loss}
	})
	if err != nil {
		t.Fatal(err)
	}
	out, _ := run(t, exec, idsTensor(b))
	for _, v := range out[0] {
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			t.Fatalf("logit %g", v)
		}
	}
	if l := out[1][0]; !(l > 4 && l < 10) {
		t.Errorf("loss %g with dropout in bfloat16 (plain 6.17)", l)
	}
}
