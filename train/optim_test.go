package train

import (
	"math"
	"testing"

	"github.com/gomlx/compute"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"

	"github.com/lethe-ml/lethe/internal/backend"
)

func testBackend(t testing.TB) compute.Backend {
	t.Helper()
	b, _, err := backend.New("go:ops_sequential")
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// torchStep applies one step of torch.optim.AdamW or SGD (with
// clip_grad_norm_ first) to w in float64; decay says which elements the
// weight decay applies to.
func torchStep(cfg OptimizerConfig, w, g, m, v []float64, step int, lr float64, decay []bool) {
	if cfg.MaxGradNorm > 0 {
		n := 0.0
		for _, x := range g {
			n += x * x
		}
		coef := math.Min(1, cfg.MaxGradNorm/(math.Sqrt(n)+1e-6))
		for i := range g {
			g[i] *= coef
		}
	}
	b1, b2 := cfg.Betas[0], cfg.Betas[1]
	for i := range w {
		switch cfg.Name {
		case "adamw":
			if decay[i] {
				w[i] *= 1 - lr*cfg.WeightDecay
			}
			m[i] = b1*m[i] + (1-b1)*g[i]
			v[i] = b2*v[i] + (1-b2)*g[i]*g[i]
			bc1 := 1 - math.Pow(b1, float64(step))
			bc2 := 1 - math.Pow(b2, float64(step))
			w[i] -= lr / bc1 * m[i] / (math.Sqrt(v[i])/math.Sqrt(bc2) + cfg.Eps)
		case "sgd":
			gi := g[i]
			if decay[i] {
				gi += cfg.WeightDecay * w[i]
			}
			if cfg.Momentum > 0 {
				if step == 1 {
					m[i] = gi
				} else {
					m[i] = cfg.Momentum*m[i] + gi
				}
				gi = m[i]
			}
			w[i] -= lr * gi
		}
	}
}

// TestOptimizersMatchTorch runs five steps of each optimizer on the loss
// Σ cᵢ(xᵢ - tᵢ)², x = [weight (3), bias (2)], with a changing learning rate,
// and compares with torch's update rules computed on the host: the weight
// is decayed, the bias is not (the default rule), clipping uses the joint
// norm.
func TestOptimizersMatchTorch(t *testing.T) {
	b := testBackend(t)
	for _, cfg := range []OptimizerConfig{
		{Name: "adamw", LR: 0.1, WeightDecay: 0.01},
		{Name: "adamw", LR: 0.05, Betas: []float64{0.8, 0.99}, Eps: 1e-6, WeightDecay: 0.1, MaxGradNorm: 0.5},
		{Name: "sgd", LR: 0.05, Momentum: 0.9, WeightDecay: 0.01},
		{Name: "sgd", LR: 0.1},
	} {
		if err := cfg.Validate(); err != nil {
			t.Fatal(err)
		}
		store := model.NewStore()
		x0 := []float64{0.5, -1.0, 2.0, 0.3, -0.2}
		c := []float64{1, 2, 0.5, 3, 1}
		target := []float64{0, 1, -1, 0.5, 0}
		wv, _ := store.RootScope().In("layer").CreateVariable("weight", tensors.FromFlatDataAndDimensions(append([]float64{}, x0[:3]...), 3))
		bv, _ := store.RootScope().In("layer").CreateVariable("bias", tensors.FromFlatDataAndDimensions(append([]float64{}, x0[3:]...), 2))
		opt, err := NewOptimizer(cfg, store, []*model.Variable{wv, bv}, []string{"layer.weight", "layer.bias"})
		if err != nil {
			t.Fatal(err)
		}
		exec, err := model.NewExec(b, store, func(scope *model.Scope, lr *Node) *Node {
			g := lr.Graph()
			scope.SetTraining(g, true)
			x := Concatenate([]*Node{wv.NodeValue(g), bv.NodeValue(g)}, 0)
			loss := ReduceAllSum(Mul(Const(g, c), Square(Sub(x, Const(g, target)))))
			return opt.Apply(g, Gradient(loss, wv.NodeValue(g), bv.NodeValue(g)), lr)
		})
		if err != nil {
			t.Fatal(err)
		}
		ref := append([]float64{}, x0...)
		m, v := make([]float64, 5), make([]float64, 5)
		for step := 1; step <= 5; step++ {
			lr := cfg.LR * (1 - 0.1*float64(step-1))
			if _, err := exec.Call(tensors.FromScalar(lr)); err != nil {
				t.Fatal(err)
			}
			g := make([]float64, 5)
			for i := range ref {
				g[i] = 2 * c[i] * (ref[i] - target[i])
			}
			torchStep(cfg, ref, g, m, v, step, lr, []bool{true, true, true, false, false})
		}
		got := append(append([]float64{}, wv.MustValue().Value().([]float64)...), bv.MustValue().Value().([]float64)...)
		for i := range got {
			if math.Abs(got[i]-ref[i]) > 1e-12 {
				t.Errorf("%s %+v: x[%d] = %.15g, torch's rule gives %.15g", cfg.Name, cfg, i, got[i], ref[i])
			}
		}
	}
}

func TestSchedules(t *testing.T) {
	for _, c := range []struct {
		cfg  ScheduleConfig
		want []float64 // at steps 0..4 of 5, peak 1
	}{
		{ScheduleConfig{Name: "constant"}, []float64{1, 1, 1, 1, 1}},
		{ScheduleConfig{Name: "constant", WarmupSteps: 2}, []float64{0, 0.5, 1, 1, 1}},
		{ScheduleConfig{Name: "linear", WarmupSteps: 1}, []float64{0, 1, 0.75, 0.5, 0.25}},
		{ScheduleConfig{Name: "cosine"}, []float64{1, 0.5 * (1 + math.Cos(math.Pi/5)), 0.5 * (1 + math.Cos(2*math.Pi/5)), 0.5 * (1 + math.Cos(3*math.Pi/5)), 0.5 * (1 + math.Cos(4*math.Pi/5))}},
		{ScheduleConfig{Name: "linear", MinRatio: 0.1}, []float64{1, 0.82, 0.64, 0.46, 0.28}},
	} {
		if err := c.cfg.Validate(); err != nil {
			t.Fatal(err)
		}
		for step, want := range c.want {
			if got := c.cfg.LR(1, step, 5); math.Abs(got-want) > 1e-12 {
				t.Errorf("%+v step %d: %g, want %g", c.cfg, step, got, want)
			}
		}
	}
	bad := ScheduleConfig{Name: "exp"}
	if err := bad.Validate(); err == nil {
		t.Error("unknown schedule accepted")
	}
}
