package quickstart

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/lethe-ml/lethe/models"
	"github.com/lethe-ml/lethe/unlearn/eval"
	"github.com/lethe-ml/lethe/unlearn/facts"
	"github.com/lethe-ml/lethe/unlearn/recipe"
)

// TestShippedFiles: the shipped benchmark is facts.Default, and both
// shipped models have ModelConfig's shape.
func TestShippedFiles(t *testing.T) {
	t.Chdir("../..")
	got, err := facts.Read(DefaultModels + "/" + DataFile)
	if err != nil {
		t.Fatal(err)
	}
	want, err := facts.Default()
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Error("the shipped facts.parquet differs from facts.Default()")
	}
	cfg, err := models.ParseConfig([]byte(ModelConfig))
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{FullDir, RetainDir} {
		m, err := models.Load(DefaultModels+"/"+d, models.LoadOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if m.Config.NumLayers != cfg.NumLayers || m.Config.HiddenSize != cfg.HiddenSize || m.Config.VocabSize != cfg.VocabSize {
			t.Errorf("%s: %+v, want the shape of ModelConfig", d, m.Config)
		}
	}
}

func TestConfigAndTable(t *testing.T) {
	cfg, err := Config(Options{Models: "m", Out: "o"}, "npo")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Model.Path != "m/full" || cfg.Reference != "m/retain" || cfg.Training.Steps != 100 || *cfg.Method.Alpha != 10 {
		t.Errorf("config %+v", cfg)
	}
	fq := 0.25
	res := &recipe.Result{Before: &eval.Report{ForgetAccuracy: 0.9, ForgetQuality: &fq}, After: &eval.Report{ForgetAccuracy: 0.1}}
	tab := Table(res)
	for _, want := range []string{"forget accuracy", "0.900", "0.100", "0.250", "—"} {
		if !strings.Contains(tab, want) {
			t.Errorf("table lacks %q:\n%s", want, tab)
		}
	}
}

// TestCompare runs two methods briefly: the report has a row per method
// plus the model before and the retain-only model, the chart exists, and
// the unchanged models are evaluated once.
func TestCompare(t *testing.T) {
	t.Chdir("../..")
	out := t.TempDir()
	var log strings.Builder
	path, err := Compare(context.Background(), Options{Out: out, Backend: "go:ops_sequential", Log: &log,
		Overrides: []string{"data.limit=8", "training.steps=2", "eval.bootstrap=0"}}, []string{"grad_ascent", "npo"})
	if err != nil {
		t.Fatal(err)
	}
	report, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"| (before) |", "| (retain-only model) |", "| grad_ascent |", "| npo |", "report.png"} {
		if !strings.Contains(string(report), want) {
			t.Errorf("report lacks %q:\n%s", want, report)
		}
	}
	if st, err := os.Stat(filepath.Join(out, "report.png")); err != nil || st.Size() < 1000 {
		t.Errorf("chart: %v", err)
	}
	if n := strings.Count(log.String(), "before unlearning"); n != 1 {
		t.Errorf("the model before unlearning was evaluated %d times, want once", n)
	}
}
