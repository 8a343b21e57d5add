package quickstart

import (
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
