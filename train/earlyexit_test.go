package train

import (
	"math"
	"testing"

	"github.com/gomlx/compute"
	"github.com/gomlx/compute/dtypes"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/ml/model"

	"github.com/lethe-ml/lethe/data"
	"github.com/lethe-ml/lethe/models"
)

func TestEarlyExitScales(t *testing.T) {
	got, err := EarlyExitScales(4, EarlyExitConfig{})
	if err != nil {
		t.Fatal(err)
	}
	want := []float64{1.0 / 20, 3.0 / 20, 6.0 / 20, 10.0 / 20}
	for i := range want {
		if math.Abs(got[i]-want[i]) > 1e-12 {
			t.Fatalf("scales %v, want %v", got, want)
		}
	}
	// e_scale 0.5 halves the early exits only: 0.5, 1.5, 3, 10 of 15.
	got, _ = EarlyExitScales(4, EarlyExitConfig{Scale: 0.5})
	if math.Abs(got[3]-10.0/15) > 1e-12 || math.Abs(got[0]-0.5/15) > 1e-12 {
		t.Errorf("scales with e_scale 0.5: %v", got)
	}
	got, _ = EarlyExitScales(2, EarlyExitConfig{Weights: []float64{1, 3}})
	if got[0] != 0.25 || got[1] != 0.75 {
		t.Errorf("explicit weights normalised to %v", got)
	}
	for _, bad := range []EarlyExitConfig{{Weights: []float64{1}}, {Weights: []float64{0, 0}}, {Weights: []float64{-1, 2}}, {Scale: -1}} {
		if _, err := EarlyExitScales(2, bad); err == nil {
			t.Errorf("%+v accepted", bad)
		}
	}
}

// earlyExitLosses evaluates, in one graph, loss(in, true) and the
// causal-LM loss of every exit layer of m on batch b; the variables the
// loss updates (the curriculum's step) are written back.
func earlyExitLosses(t *testing.T, backend compute.Backend, m *models.Model, loss LossFunc, b *data.Batch) (float64, []float64) {
	t.Helper()
	N := m.Config.NumLayers
	exec, err := model.NewExec(backend, m.Store, func(scope *model.Scope, in []*Node) []*Node {
		scope.SetTraining(in[0].Graph(), true)
		bi := batchInputs(in, extraNames{})
		res := []*Node{ConvertDType(loss(bi, true).Loss, dtypes.Float64)}
		for L := 1; L <= N; L++ {
			res = append(res, ConvertDType(m.Forward(bi.ModelInputs(), models.Options{ExitLayer: L}).Loss, dtypes.Float64))
		}
		return res
	})
	if err != nil {
		t.Fatal(err)
	}
	defer exec.Finalize()
	out, err := exec.Call(batchArgs(b)...)
	if err != nil {
		t.Fatal(err)
	}
	var layers []float64
	for _, x := range out[1:] {
		layers = append(layers, scalar(x))
	}
	return scalar(out[0]), layers
}

// TestEarlyExitLoss checks that all the weight on the last layer is
// CausalLM's loss exactly, that the default is the weighted sum of the
// exits' losses, and that the rotational curriculum alternates the early
// exit in and out step by step.
func TestEarlyExitLoss(t *testing.T) {
	for _, arch := range []string{"llama", "gpt2"} {
		t.Run(arch, func(t *testing.T) {
			m := loadModel(t, arch)
			b := fixtureBatch(t, arch)
			be := testBackend(t)
			last, err := EarlyExitLoss(m, models.Hooks{}, models.Hooks{}, EarlyExitConfig{Weights: []float64{0, 1}})
			if err != nil {
				t.Fatal(err)
			}
			got, layers := earlyExitLosses(t, be, m, last, b)
			plain, _ := earlyExitLosses(t, be, m, CausalLM(m, models.Hooks{}, models.Hooks{}, 0), b)
			if got != plain || got != layers[1] {
				t.Errorf("last-layer early-exit loss %.9g, CausalLM %.9g, layer 2 %.9g", got, plain, layers[1])
			}
			if layers[0] == layers[1] {
				t.Fatal("layer 1 and 2 losses are equal")
			}
			def, err := EarlyExitLoss(m, models.Hooks{}, models.Hooks{}, EarlyExitConfig{})
			if err != nil {
				t.Fatal(err)
			}
			got, _ = earlyExitLosses(t, be, m, def, b)
			if want := 0.25*layers[0] + 0.75*layers[1]; math.Abs(got-want) > 1e-5 {
				t.Errorf("early-exit loss %.7g, want ¼·%.7g + ¾·%.7g = %.7g", got, layers[0], layers[1], want)
			}
			rot, err := EarlyExitLoss(m, models.Hooks{}, models.Hooks{}, EarlyExitConfig{Every: 2})
			if err != nil {
				t.Fatal(err)
			}
			for step := range 4 {
				got, _ := earlyExitLosses(t, be, m, rot, b)
				want := layers[1] // odd steps: the last layer only
				if step%2 == 0 {
					want = 0.25*layers[0] + 0.75*layers[1]
				}
				if math.Abs(got-want) > 1e-5 {
					t.Errorf("rotational step %d: loss %.7g, want %.7g", step, got, want)
				}
			}
		})
	}
}

// TestEarlyExitTraining trains the llama fixture a few steps with the
// early-exit loss and with CausalLM from the same weights: the layer-1
// exit's loss must fall, and more than under CausalLM; the early-exit
// trainer's evaluation (EvalLayer 1) reports it.
func TestEarlyExitTraining(t *testing.T) {
	b := fixtureBatch(t, "llama")
	run := func(early bool) (before, after float64) {
		m := loadModel(t, "llama")
		be := testBackend(t)
		loss := CausalLM(m, models.Hooks{}, models.Hooks{}, 0)
		if early {
			var err error
			if loss, err = EarlyExitLoss(m, models.Hooks{}, models.Hooks{}, EarlyExitConfig{EvalLayer: 1}); err != nil {
				t.Fatal(err)
			}
		}
		tr, err := NewTrainer(m, be, TrainerOptions{Params: m.ParamNames(), Optimizer: OptimizerConfig{LR: 1e-3}, Loss: loss})
		if err != nil {
			t.Fatal(err)
		}
		_, layers := earlyExitLosses(t, be, m, loss, b)
		before = layers[0]
		for range 5 {
			if _, err := tr.Step([]*data.Batch{b}, 1e-3); err != nil {
				t.Fatal(err)
			}
		}
		_, layers = earlyExitLosses(t, be, m, loss, b)
		if early {
			ev, err := tr.Evaluate([]*data.Batch{b})
			if err != nil {
				t.Fatal(err)
			}
			if math.Abs(ev.Loss-layers[0]) > 1e-5 {
				t.Errorf("evaluation with EvalLayer 1: loss %.6f, layer 1's %.6f", ev.Loss, layers[0])
			}
		}
		return before, layers[0]
	}
	b0, b1 := run(true)
	c0, c1 := run(false)
	t.Logf("layer-1 exit loss: %.4f -> %.4f with the early-exit loss, %.4f -> %.4f with CausalLM", b0, b1, c0, c1)
	if b0 != c0 {
		t.Errorf("the runs start from different layer-1 losses %g, %g", b0, c0)
	}
	if !(b1 < b0-0.5) || !(b1 < c1) {
		t.Errorf("layer-1 loss %.4f -> %.4f (CausalLM training: -> %.4f)", b0, b1, c1)
	}
}

// TestEarlyExitCurriculumCheckpoint checks that the rotational curriculum's
// step counter advances with training steps and resumes from a checkpoint.
func TestEarlyExitCurriculumCheckpoint(t *testing.T) {
	b := fixtureBatch(t, "gpt2")
	dir := t.TempDir()
	newTrainer := func() (*models.Model, *Trainer) {
		m := loadModel(t, "gpt2")
		loss, err := EarlyExitLoss(m, models.Hooks{}, models.Hooks{}, EarlyExitConfig{Every: 2})
		if err != nil {
			t.Fatal(err)
		}
		tr, err := NewTrainer(m, testBackend(t), TrainerOptions{Params: m.ParamNames(), Optimizer: OptimizerConfig{LR: 1e-3}, Loss: loss})
		if err != nil {
			t.Fatal(err)
		}
		return m, tr
	}
	counter := func(m *models.Model) int32 {
		v := m.Store.RootScope().In("early_exit").GetVariable("step")
		if v == nil {
			t.Fatalf("no %s variable", EarlyExitStepVar)
		}
		return v.MustValue().Value().(int32)
	}
	m, tr := newTrainer()
	for range 3 {
		if _, err := tr.Step([]*data.Batch{b}, 1e-3); err != nil {
			t.Fatal(err)
		}
	}
	if got := counter(m); got != 3 {
		t.Fatalf("step counter %d after 3 steps", got)
	}
	if err := tr.SaveCheckpoint(dir, TrainerState{Step: 3}); err != nil {
		t.Fatal(err)
	}
	m2, tr2 := newTrainer()
	if _, err := tr2.LoadCheckpoint(dir); err != nil {
		t.Fatal(err)
	}
	if got := counter(m2); got != 3 {
		t.Errorf("step counter %d after resuming, want 3", got)
	}
}
