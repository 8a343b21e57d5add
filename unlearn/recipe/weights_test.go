package recipe

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"

	"github.com/lethe-ml/lethe/internal/backend"
	"github.com/lethe-ml/lethe/models"
)

func TestSaliencyMasks(t *testing.T) {
	grads := map[string][]float32{"a": {0.1, -5, 0.3, 2}, "b": {-0.2, 1, 0}}
	masks, thr := saliencyMasks(grads, 3.0/7)
	// |g| sorted: 0 0.1 0.2 0.3 1 2 5; the top 3 are >= 1.
	if thr != 1 {
		t.Errorf("threshold %g, want 1", thr)
	}
	want := map[string][]float32{"a": {0, 1, 0, 1}, "b": {0, 1, 0}}
	for k := range want {
		for i := range want[k] {
			if masks[k][i] != want[k][i] {
				t.Errorf("mask %s = %v, want %v", k, masks[k], want[k])
				break
			}
		}
	}
}

func TestNegate(t *testing.T) {
	s := model.NewStore()
	v, err := s.RootScope().CreateVariable("w", tensors.FromFlatDataAndDimensions([]float32{3, 5, -1}, 3))
	if err != nil {
		t.Fatal(err)
	}
	before := map[string][]float32{"w": {1, 5, 0}}
	// θ₀ − λ(θ − θ₀) with λ = 0.5: 1 − 0.5·2 = 0, 5, 0 − 0.5·(−1) = 0.5.
	if err := negate(map[string]*model.Variable{"w": v}, before, 0.5); err != nil {
		t.Fatal(err)
	}
	got, _ := hostValues(map[string]*model.Variable{"w": v})
	for i, want := range []float32{0, 5, 0.5} {
		if got["w"][i] != want {
			t.Errorf("w = %v, want [0 5 0.5]", got["w"])
			break
		}
	}
}

// TestSalUnAndTaskVector runs SalUn (grad_diff on 30% of the weights),
// task-vector negation and the stochastic teacher for a few steps: SalUn
// changes no weight outside its mask (at most 30% of them), and every one
// moves the model away from the forget answers (their probability falls).
func TestSalUnAndTaskVector(t *testing.T) {
	t.Chdir("../..")
	b, _, err := backend.New("go:ops_sequential")
	if err != nil {
		t.Fatal(err)
	}
	orig, err := models.Load("unlearn/quickstart/models/full", models.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	origVals := paramValues(t, orig)
	for _, tc := range []struct {
		name      string
		overrides []string
	}{
		{"salun", []string{"method.name=grad_diff", "method.saliency=0.3", "optimizer.lr=1e-3"}},
		{"task_vector", []string{"method.name=task_vector", "method.scale=1", "optimizer.lr=1e-3"}},
		{"stochastic_teacher", []string{"method.name=stochastic_teacher", "optimizer.lr=1e-3"}},
		{"send", []string{"method.name=send", "method.drop_fraction=0.05"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "run")
			cfg, err := LoadConfig("configs/unlearn/smoke.yaml", append(tc.overrides, "output.dir="+out, "reference=",
				"data.limit=8", "training.steps=4", "eval.bootstrap=0", "output.save_model=true", "method.alpha=1"))
			if err != nil {
				t.Fatal(err)
			}
			res, err := Run(context.Background(), cfg, Options{Backend: b})
			if err != nil {
				t.Fatal(err)
			}
			m, err := models.Load(res.Model, models.LoadOptions{})
			if err != nil {
				t.Fatal(err)
			}
			vals := paramValues(t, m)
			changed, total := 0, 0
			for name, a := range vals {
				for i := range a {
					total++
					if a[i] != origVals[name][i] {
						changed++
					}
				}
			}
			t.Logf("%s: %d of %d weights changed; forget NLL-based probability %.4f -> %.4f", tc.name, changed, total,
				res.Before.Extra["forget_probability"], res.After.Extra["forget_probability"])
			if changed == 0 {
				t.Fatal("no weight changed")
			}
			if tc.name == "salun" && float64(changed) > 0.3*float64(total)+1 {
				t.Errorf("SalUn changed %d of %d weights, more than 30%%", changed, total)
			}
			if !(res.After.Extra["forget_probability"] < res.Before.Extra["forget_probability"]) {
				t.Errorf("forget answer probability %.4f -> %.4f", res.Before.Extra["forget_probability"], res.After.Extra["forget_probability"])
			}
		})
	}
}

func paramValues(t testing.TB, m *models.Model) map[string][]float32 {
	t.Helper()
	vars := map[string]*model.Variable{}
	for _, name := range m.ParamNames() {
		v, _ := m.Param(name)
		vars[name] = v
	}
	out, err := hostValues(vars)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestSLSG: Single Layer Single Gradient changes the weights of one decoder
// layer only and lowers the forget answers' probability.
func TestSLSG(t *testing.T) {
	t.Chdir("../..")
	b, _, err := backend.New("go:ops_sequential")
	if err != nil {
		t.Fatal(err)
	}
	orig, err := models.Load("unlearn/quickstart/models/full", models.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	origVals := paramValues(t, orig)
	cfg, err := LoadConfig("configs/unlearn/smoke.yaml", []string{"output.dir=" + filepath.Join(t.TempDir(), "run"), "reference=",
		"method.name=slsg", "method.retain_tolerance=0.5", "data.limit=16", "eval.bootstrap=0", "output.save_model=true"})
	if err != nil {
		t.Fatal(err)
	}
	var log strings.Builder
	res, err := Run(context.Background(), cfg, Options{Backend: b, Log: &log})
	if err != nil {
		t.Fatal(err)
	}
	m, err := models.Load(res.Model, models.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	layers := map[int]bool{}
	for name, v := range paramValues(t, m) {
		for i := range v {
			if v[i] != origVals[name][i] {
				layers[layerOf(name)] = true
				break
			}
		}
	}
	t.Logf("changed layers %v; forget probability %.4f -> %.4f, retain %.4f -> %.4f", layers,
		res.Before.Extra["forget_probability"], res.After.Extra["forget_probability"], res.Before.Extra["retain_probability"], res.After.Extra["retain_probability"])
	if len(layers) != 1 || layers[-1] {
		t.Errorf("changed layers %v, want one decoder layer\n%s", layers, log.String())
	}
	if !(res.After.Extra["forget_probability"] < res.Before.Extra["forget_probability"]) {
		t.Error("the forget answers did not become less likely")
	}
}

// TestKSD: Key Space Detection refuses every forget question, at most the
// false-positive share of the retain questions, and changes no weight.
func TestKSD(t *testing.T) {
	t.Chdir("../..")
	b, _, err := backend.New("go:ops_sequential")
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := LoadConfig("configs/unlearn/smoke.yaml", []string{"output.dir=" + filepath.Join(t.TempDir(), "run"), "reference=",
		"method.name=ksd", "method.false_positive_rate=0.05", "data.limit=40", "eval.bootstrap=0", "output.save_model=true"})
	if err != nil {
		t.Fatal(err)
	}
	res, err := Run(context.Background(), cfg, Options{Backend: b})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("forget accuracy %.3f -> %.3f, retain %.3f -> %.3f, holdout %.3f -> %.3f", res.Before.ForgetAccuracy, res.After.ForgetAccuracy,
		res.Before.RetainAccuracy, res.After.RetainAccuracy, res.Before.HoldoutAccuracy, res.After.HoldoutAccuracy)
	if res.After.ForgetAccuracy != 0 {
		t.Errorf("forget accuracy after ksd %.3f, want 0 (every forget question refused)", res.After.ForgetAccuracy)
	}
	if drop := res.Before.RetainAccuracy - res.After.RetainAccuracy; drop > 0.05+1e-9 {
		t.Errorf("retain accuracy fell by %.3f, more than the 5%% false-positive budget", drop)
	}
	orig, err := models.Load("unlearn/quickstart/models/full", models.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	m, err := models.Load(res.Model, models.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	a, c := paramValues(t, orig), paramValues(t, m)
	for name := range a {
		for i := range a[name] {
			if a[name][i] != c[name][i] {
				t.Fatalf("%s changed", name)
			}
		}
	}
}
