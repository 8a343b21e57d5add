package dropout

import (
	"math"
	"testing"

	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"

	"github.com/lethe-ml/lethe/models"
)

// TestMix checks Mixout (Lee et al. 2020) on R = 400 draws of a vector w of
// D = 128 weights with pretrained values pre: p = 0 gives w and p = 1 gives
// pre bitwise; otherwise every entry is pre (mixed, M = 1) or
// (w - p·pre)/(1-p) (M = 0), M = 1 for a fraction p within 5σ, the mean of
// each entry over the draws is w within 6σ (σ = |w-pre|·√(p/((1-p)R))), and
// the gradient reaching w is (1-M)/(1-p).
func TestMix(t *testing.T) {
	const R, D = 400, 128
	ws, pres := make([]float32, R*D), make([]float32, R*D)
	for i := range ws {
		j := i % D
		ws[i] = float32(j)/D - 0.5
		pres[i] = float32(math.Sin(float64(j)))
	}
	store := model.NewStore()
	if err := store.SetRNGStateFromSeed(11); err != nil {
		t.Fatal(err)
	}
	exec, err := model.NewExec(testBackend(t), store, func(_ *model.Scope, w, pre, p *Node) []*Node {
		out := Mix(store, w, pre, p)
		grad := Gradient(ReduceAllSum(out), w)[0]
		return []*Node{out, grad}
	})
	if err != nil {
		t.Fatal(err)
	}
	wT, preT := tensors.FromFlatDataAndDimensions(ws, R, D), tensors.FromFlatDataAndDimensions(pres, R, D)
	for _, p := range []float64{0, 0.1, 0.5, 0.9, 1} {
		outs, _ := run(t, exec, wT, preT, tensors.FromScalar(float32(p)))
		y, grad := outs[0], outs[1]
		switch p {
		case 0:
			if d := maxAbsDiff(y, ws); d != 0 {
				t.Errorf("p=0 is not w: differs by %g", d)
			}
			continue
		case 1:
			if d := maxAbsDiff(y, pres); d != 0 {
				t.Errorf("p=1 is not the pretrained weights: differs by %g", d)
			}
			for _, g := range grad {
				if g != 0 {
					t.Fatalf("p=1: gradient %g reaches w", g)
				}
			}
			continue
		}
		mixed := 0
		colSum := make([]float64, D)
		for i, v := range y {
			w, pre := float64(ws[i]), float64(pres[i])
			keptValue := (w - p*pre) / (1 - p)
			switch {
			case math.Abs(float64(v)-pre) < 1e-6 && math.Abs(float64(grad[i])) == 0:
				mixed++
			case math.Abs(float64(v)-keptValue) < 1e-5 && math.Abs(float64(grad[i])-1/(1-p)) < 1e-5:
			default:
				t.Fatalf("p=%g: entry %d is %g (gradient %g): neither pre %g (0) nor (w-p·pre)/(1-p) %g (%g)", p, i, v, grad[i], pre, keptValue, 1/(1-p))
			}
			colSum[i%D] += float64(v)
		}
		frac := float64(mixed) / (R * D)
		if sd := math.Sqrt(p * (1 - p) / (R * D)); math.Abs(frac-p) > 5*sd {
			t.Errorf("p=%g: %.4f mixed, want %g ± %.4f", p, frac, p, 5*sd)
		}
		worst := 0.0
		for j := range D {
			w, pre := float64(ws[j]), float64(pres[j])
			sd := math.Abs(w-pre) * math.Sqrt(p/((1-p)*R))
			dev := math.Abs(colSum[j]/R - w)
			if dev > 6*sd {
				t.Errorf("p=%g: entry %d mean %.4f, want w = %.4f ± %.4f", p, j, colSum[j]/R, w, 6*sd)
			}
			worst = math.Max(worst, dev/sd)
		}
		t.Logf("p=%g: mixed %.4f, worst entry mean deviation %.2fσ", p, frac, worst)
	}
}

// TestMixoutModel checks Mixout through the Weight hook of the llama
// fixture: after the weights move away from their values at New (the
// pretrained ones), rate 1 gives bitwise the pretrained model's logits,
// rate 0 (late schedule) bitwise the moved model's; targets restrict the
// weights it touches.
func TestMixoutModel(t *testing.T) {
	m := loadModel(t, "llama")
	b := fixtureBatch(t, "llama")
	pretrained, _ := plainLogits(t, m, b)
	reg, err := New(m, Config{Mixout: MixoutConfig{Rate: 1}, Schedule: ScheduleConfig{Name: ScheduleLate, Steps: 1}})
	if err != nil {
		t.Fatal(err)
	}
	if len(reg.pretrained) != 2*7+1 { // 7 projections per layer + lm_head
		t.Errorf("mixout captured %d weights, want 15", len(reg.pretrained))
	}
	for name := range reg.pretrained { // fine-tuning moved the projections
		v, _ := m.Param(name)
		vals := flat(t, v.MustValue())
		for i := range vals {
			vals[i] += 0.01 * float32(math.Cos(float64(i)))
		}
		if err := v.SetValue(tensors.FromFlatDataAndDimensions(vals, v.Shape().Dimensions...)); err != nil {
			t.Fatal(err)
		}
	}
	moved, _ := plainLogits(t, m, b)
	if d := maxAbsDiff(moved, pretrained); d < 1e-3 {
		t.Fatalf("moving the weights changed the logits by only %g", d)
	}
	exec := forwardExec(t, m, models.Options{Hooks: reg.Hooks()})
	for _, tc := range []struct {
		step int
		want []float32
		what string
	}{{0, moved, "rate 0"}, {1, pretrained, "rate 1"}} {
		if err := reg.SetStep(tc.step, 10); err != nil {
			t.Fatal(err)
		}
		out, _ := run(t, exec, idsTensor(b))
		if d := maxAbsDiff(out[0], tc.want); d != 0 {
			t.Errorf("%s: logits differ by %g", tc.what, d)
		}
	}
	only, err := New(m, Config{Mixout: MixoutConfig{Rate: 0.5, Targets: []string{"q_proj", "lm_head"}}})
	if err != nil {
		t.Fatal(err)
	}
	if len(only.pretrained) != 3 {
		t.Errorf("targets q_proj, lm_head captured %d weights, want 3", len(only.pretrained))
	}
	if _, err := New(m, Config{Mixout: MixoutConfig{Rate: 0.5, Targets: []string{"nothing"}}}); err == nil {
		t.Errorf("targets that match no weight were accepted")
	}
}
