package dropout

import (
	"math"
	"testing"

	"github.com/lethe-ml/lethe/data"
	"github.com/lethe-ml/lethe/train"
)

// TestWithTrainer trains the llama fixture through train.Trainer with every
// in-graph variant on (and 2 head samples) for 4 steps, the rates switched
// on at step 2 by a late schedule: losses are finite, the steps before the
// switch equal a run without dropout bit for bit, the same seed repeats the
// run bit for bit, another seed does not, and evaluation is dropout-free.
func TestWithTrainer(t *testing.T) {
	cfg := allSites()
	cfg.HeadSamples = 2
	cfg.Schedule = ScheduleConfig{Name: ScheduleLate, Steps: 2}
	b := fixtureBatch(t, "llama")
	runOnce := func(cfg Config, seed int64) ([]float64, train.EvalResult) {
		m := loadModel(t, "llama")
		reg, err := New(m, cfg)
		if err != nil {
			t.Fatal(err)
		}
		tr, err := train.NewTrainer(m, testBackend(t), train.TrainerOptions{
			Params: m.ParamNames(), Optimizer: train.OptimizerConfig{Name: "sgd", LR: 1e-2},
			Loss: train.CausalLM(m, reg.Hooks(), reg.EvalHooks(), reg.HeadSamples()), Seed: seed,
		})
		if err != nil {
			t.Fatal(err)
		}
		var losses []float64
		for step := range 4 {
			if err := reg.SetStep(step, 4); err != nil {
				t.Fatal(err)
			}
			r, err := tr.Step([]*data.Batch{b}, 1e-2)
			if err != nil {
				t.Fatal(err)
			}
			if math.IsNaN(r.Loss) || math.IsNaN(r.GradNorm) {
				t.Fatalf("step %d: loss %g, grad norm %g", step, r.Loss, r.GradNorm)
			}
			losses = append(losses, r.Loss)
		}
		ev, err := tr.Evaluate([]*data.Batch{b})
		if err != nil {
			t.Fatal(err)
		}
		return losses, ev
	}
	a, evA := runOnce(cfg, 1)
	again, evAgain := runOnce(cfg, 1)
	other, _ := runOnce(cfg, 2)
	plain, _ := runOnce(Config{}, 1)
	t.Logf("losses: seed 1 %v, seed 2 %v, no dropout %v; eval %+v", a, other, plain, evA)
	for i := range a {
		if a[i] != again[i] {
			t.Errorf("step %d: the same seed gives %v then %v", i, a[i], again[i])
		}
	}
	if evA != evAgain {
		t.Errorf("evaluations differ: %+v, %+v", evA, evAgain)
	}
	if a[0] != plain[0] || a[1] != plain[1] {
		t.Errorf("before the switch the losses %v differ from no dropout %v", a[:2], plain[:2])
	}
	if a[2] == plain[2] || a[3] == other[3] {
		t.Errorf("after the switch dropout changes nothing (%v, %v, %v)", a, plain, other)
	}
}
