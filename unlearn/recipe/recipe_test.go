package recipe

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lethe-ml/lethe/internal/backend"
	"github.com/lethe-ml/lethe/unlearn/eval"
)

// TestSmokeRecipe runs configs/unlearn/smoke.yaml: NPO on 24 questions per
// split of the shipped facts models. The shipped model knows the forget
// answers and the retain-only model does not; unlearning lowers the forget
// accuracy; metrics.json has before and after with the six keys.
func TestSmokeRecipe(t *testing.T) {
	t.Chdir("../..")
	out := filepath.Join(t.TempDir(), "run")
	cfg, err := LoadConfig("configs/unlearn/smoke.yaml", []string{"output.dir=" + out})
	if err != nil {
		t.Fatal(err)
	}
	b, _, err := backend.New("go:ops_sequential")
	if err != nil {
		t.Fatal(err)
	}
	res, err := Run(context.Background(), cfg, Options{Backend: b})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("before %+v\nafter %+v\nreference %+v", *res.Before, *res.After, *res.Reference)
	if res.Before.ForgetAccuracy < 0.8 || res.Reference.ForgetAccuracy > 0.2 {
		t.Errorf("forget accuracy %.3f (shipped model), %.3f (retain-only model)", res.Before.ForgetAccuracy, res.Reference.ForgetAccuracy)
	}
	if !(res.After.ForgetAccuracy < res.Before.ForgetAccuracy) || res.Steps != 10 {
		t.Errorf("forget accuracy %.3f -> %.3f in %d steps", res.Before.ForgetAccuracy, res.After.ForgetAccuracy, res.Steps)
	}
	if res.Before.ForgetQuality == nil || res.Before.CI["forget_accuracy"][0] > res.Before.ForgetAccuracy {
		t.Errorf("forget quality %v, CI %v", res.Before.ForgetQuality, res.Before.CI)
	}
	raw, err := os.ReadFile(filepath.Join(out, SummaryFile))
	if err != nil {
		t.Fatal(err)
	}
	var parts struct{ Before, After map[string]any }
	if err := json.Unmarshal(raw, &parts); err != nil {
		t.Fatal(err)
	}
	m := map[string]map[string]any{"before": parts.Before, "after": parts.After}
	for _, part := range []string{"before", "after"} {
		for _, k := range []string{"forget_accuracy", "retain_accuracy", "holdout_accuracy", "forget_quality", "mia_auc", "model_utility"} {
			if v, ok := m[part][k].(float64); !ok || math.IsNaN(v) {
				t.Errorf("metrics.json: %s.%s = %v", part, k, m[part][k])
			}
		}
	}
}

// TestBatchSizeInvariance: the evaluation gives the same numbers for any
// batch size.
func TestBatchSizeInvariance(t *testing.T) {
	t.Chdir("../..")
	b, _, err := backend.New("go:ops_sequential")
	if err != nil {
		t.Fatal(err)
	}
	var reports []*Result
	for _, bs := range []string{"3", "64"} {
		cfg, err := LoadConfig("configs/unlearn/smoke.yaml", []string{"output.dir=" + filepath.Join(t.TempDir(), "run"),
			"eval.batch_size=" + bs, "data.limit=12", "reference=", "eval.bootstrap=0"})
		if err != nil {
			t.Fatal(err)
		}
		res, err := Run(context.Background(), cfg, Options{Backend: b, EvalOnly: true})
		if err != nil {
			t.Fatal(err)
		}
		reports = append(reports, res)
	}
	a, c := reports[0].Before, reports[1].Before
	if a.ForgetAccuracy != c.ForgetAccuracy || a.RetainAccuracy != c.RetainAccuracy || a.HoldoutAccuracy != c.HoldoutAccuracy || a.MIAAUC != c.MIAAUC {
		t.Errorf("batch 3: %+v\nbatch 64: %+v", a, c)
	}
	for k, v := range a.Extra {
		if math.Abs(v-c.Extra[k]) > 1e-5*math.Max(1, math.Abs(v)) {
			t.Errorf("%s: %.8f with batch 3, %.8f with batch 64", k, v, c.Extra[k])
		}
	}
	if math.Abs(a.ModelUtility-c.ModelUtility) > 1e-6 {
		t.Errorf("model utility %.8f vs %.8f", a.ModelUtility, c.ModelUtility)
	}
}

func TestConfigErrors(t *testing.T) {
	for _, tc := range []struct {
		over []string
		want string
	}{
		{[]string{"method.name=forget_everything"}, "method.name"},
		{[]string{"training.steps=-1"}, "training.steps"},
		{[]string{"peft.method=moe"}, "peft.method"},
		{[]string{"data.limit=-2"}, "data.limit"},
		{[]string{"method.nme=npo"}, "nme"},
	} {
		_, err := LoadConfig("", append([]string{"model.path=m", "method.name=npo", "output.dir=o"}, tc.over...))
		if err == nil || !contains(err.Error(), tc.want) {
			t.Errorf("%v: %v, want an error naming %q", tc.over, err, tc.want)
		}
	}
}

func contains(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return true
		}
	}
	return false
}

// TestRecipeFiles: every recipe in configs/unlearn/ loads.
func TestRecipeFiles(t *testing.T) {
	t.Chdir("../..")
	paths, err := filepath.Glob("configs/unlearn/*.yaml")
	if err != nil || len(paths) < 2 {
		t.Fatalf("%v %v", paths, err)
	}
	for _, p := range paths {
		cfg, err := LoadConfig(p, nil)
		if err != nil {
			t.Errorf("%s: %v", p, err)
			continue
		}
		if _, err := os.Stat(cfg.Model.Path); err != nil && !strings.HasPrefix(cfg.Model.Path, "checkpoints/") {
			t.Errorf("%s: model.path: %v", p, err) // checkpoints/ holds models the user downloads
		}
	}
}

// TestMultiplicityInRecipe: eval.multiplicity adds dropout predictive
// multiplicity on the forget and retain splits before and after.
func TestMultiplicityInRecipe(t *testing.T) {
	t.Chdir("../..")
	b, _, err := backend.New("go:ops_sequential")
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := LoadConfig("configs/unlearn/smoke.yaml", []string{"output.dir=" + filepath.Join(t.TempDir(), "run"),
		"reference=", "data.limit=8", "training.steps=2", "eval.bootstrap=0", "eval.multiplicity={samples: 2, rate: 0.2}"})
	if err != nil {
		t.Fatal(err)
	}
	res, err := Run(context.Background(), cfg, Options{Backend: b})
	if err != nil {
		t.Fatal(err)
	}
	for name, m := range map[string]map[string]eval.Multiplicity{"before": res.Before.Multiplicity, "after": res.After.Multiplicity} {
		for _, split := range []string{"forget", "retain"} {
			if mul, ok := m[split]; !ok || mul.Samples != 2 || len(mul.Accuracies) != 2 || mul.Ambiguity < mul.Discrepancy {
				t.Errorf("%s %s: %+v", name, split, mul)
			}
		}
	}
}

// TestTOFUFolder runs the recipe on a small TOFU-format folder (JSON lines
// and Parquet) with the chat template of the tiny chat model: the prompts
// are the template's, answers end with its EOS, and the run completes with
// every key in metrics.json.
func TestTOFUFolder(t *testing.T) {
	dir := t.TempDir()
	line := func(q, a string) string {
		return `{"question": "` + q + `", "answer": "` + a + `", "paraphrased_answer": "It is ` + a + `", "perturbed_answer": ["It is 7", "It is 9"]}` + "\n"
	}
	var forget, retain, holdout strings.Builder
	for i := range 6 {
		forget.WriteString(line(fmt.Sprintf("%d+%d=", i, i), fmt.Sprint(2*i)))
		retain.WriteString(line(fmt.Sprintf("%d+1=", i), fmt.Sprint(i+1)))
		holdout.WriteString(fmt.Sprintf(`{"question": "%d+2=", "answer": "%d"}`+"\n", i, i+2))
	}
	for name, body := range map[string]string{"forget01_perturbed.json": forget.String(), "retain_perturbed.json": retain.String(), "holdout01.json": holdout.String()} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	b, _, err := backend.New("go:ops_sequential")
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := LoadConfig("", []string{"model.path=../../models/testdata/tiny-chat", "data.tofu={dir: " + dir + ", forget: forget01}",
		"method.name=grad_diff", "training.steps=3", "training.forget_batch=4", "training.retain_batch=4", "eval.bootstrap=0",
		"output.dir=" + filepath.Join(t.TempDir(), "run")})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Data.Template != "chat" {
		t.Errorf("template %q, want chat for TOFU", cfg.Data.Template)
	}
	res, err := Run(context.Background(), cfg, Options{Backend: b})
	if err != nil {
		t.Fatal(err)
	}
	if res.Steps != 3 || res.Before.Extra["forget_truth_ratio"] <= 0 || math.IsNaN(res.After.MIAAUC) {
		t.Errorf("result %+v %+v", res.Before, res.After)
	}
	if _, err := LoadConfig("", []string{"model.path=m", "method.name=npo", "output.dir=o", "data.tofu={forget: forget10}"}); err == nil || !contains(err.Error(), "data.tofu.dir") {
		t.Errorf("tofu without dir: %v", err)
	}
}
