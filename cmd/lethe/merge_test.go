package main

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lethe-ml/lethe/models/safetensors"
)

// fixtureLogProbs returns log p(ids[t+1] | ids[..t]) of the first sequence
// of a fixture tensor of logits [2, 12, V].
func fixtureLogProbs(t *testing.T, file, name string, ids []int64) []float64 {
	t.Helper()
	f, err := safetensors.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	logits, err := f.Float32(name)
	if err != nil {
		t.Fatal(err)
	}
	V := len(logits) / 24
	var out []float64
	for pos := 0; pos+1 < 12; pos++ {
		row := logits[pos*V : (pos+1)*V]
		mx := math.Inf(-1)
		for _, v := range row {
			mx = math.Max(mx, float64(v))
		}
		sum := 0.0
		for _, v := range row {
			sum += math.Exp(float64(v) - mx)
		}
		out = append(out, float64(row[ids[pos+1]])-mx-math.Log(sum))
	}
	return out
}

func scoreIDs(t *testing.T, args ...string) []float64 {
	t.Helper()
	out, err := runCLI(t, "", append([]string{"score", "--backend", "go:ops_sequential"}, args...)...)
	if err != nil {
		t.Fatal(err)
	}
	var sc struct{ LogProbs []float64 }
	if err := json.Unmarshal([]byte(out), &sc); err != nil {
		t.Fatal(err)
	}
	return sc.LogProbs
}

func maxDiff(a, b []float64) float64 {
	if len(a) != len(b) {
		return math.Inf(1)
	}
	d := 0.0
	for i := range a {
		d = math.Max(d, math.Abs(a[i]-b[i]))
	}
	return d
}

// TestAdapterAndMergeCLI: `lethe score --adapter` gives PEFT's
// log-probabilities with the fixture adapters (LoRA, DoRA, rsLoRA), and the
// checkpoint `lethe merge` writes gives PEFT's merged ones, with the base's
// tokenizer files next to it.
func TestAdapterAndMergeCLI(t *testing.T) {
	ids := fixtureInts(t, "llama", "input_ids")[:12]
	base := scoreIDs(t, "--model", fixtureDir+"llama", "--ids", joinIDs(ids))
	for _, variant := range []string{"lora", "dora", "rslora"} {
		adapter := fixtureDir + "llama/" + variant
		expected := adapter + "/expected.safetensors"
		got := scoreIDs(t, "--model", fixtureDir+"llama", "--adapter", adapter, "--ids", joinIDs(ids))
		want := fixtureLogProbs(t, expected, "logits", ids)
		if d := maxDiff(got, want); d > 1e-4 {
			t.Errorf("%s: score --adapter differs from PEFT by %.3g", variant, d)
		}
		if d := maxDiff(got, base); d < 1e-3 {
			t.Errorf("%s: the adapter changes the log-probabilities by only %.3g", variant, d)
		}
		out := filepath.Join(t.TempDir(), "merged")
		if _, err := runCLI(t, "", "merge", "--model", fixtureDir+"llama", "--adapter", adapter, "--out", out); err != nil {
			t.Fatalf("%s: merge: %v", variant, err)
		}
		for _, f := range []string{"config.json", "model.safetensors", "generation_config.json"} {
			if _, err := os.Stat(filepath.Join(out, f)); err != nil {
				t.Errorf("%s: merged checkpoint: %v", variant, err)
			}
		}
		merged := scoreIDs(t, "--model", out, "--ids", joinIDs(ids))
		if d := maxDiff(merged, fixtureLogProbs(t, expected, "merged_logits", ids)); d > 1e-4 {
			t.Errorf("%s: merged checkpoint differs from PEFT's merge by %.3g", variant, d)
		}
		if _, err := runCLI(t, "", "merge", "--model", fixtureDir+"llama", "--adapter", adapter, "--out", out); err == nil || !strings.Contains(err.Error(), "--overwrite") {
			t.Errorf("%s: merge over an existing folder: %v", variant, err)
		}
	}
	for _, bad := range [][]string{
		{"merge", "--model", fixtureDir + "llama", "--out", t.TempDir() + "/x"},
		{"merge", "--model", fixtureDir + "llama", "--adapter", fixtureDir + "nope", "--out", t.TempDir() + "/x"},
		{"merge", "--model", fixtureDir + "llama", "--adapter", fixtureDir + "gpt2/lora", "--out", t.TempDir() + "/x"},
	} {
		if _, err := runCLI(t, "", bad...); err == nil {
			t.Errorf("%v: no error", bad)
		}
	}
}

// TestFinetuneCLI runs the mixture-of-experts recipe for a few steps
// through `lethe finetune` with overrides, scores with its adapter (the
// mean log-probability must beat the base model's on a training chat),
// refuses to merge it, and plots the run.
func TestFinetuneCLI(t *testing.T) {
	t.Chdir("../..")
	dir := filepath.Join(t.TempDir(), "run")
	if _, err := runCLI(t, "", "finetune", "--config", "configs/moe_lora.yaml", "--backend", "go:ops_sequential",
		"training.max_steps=30", "training.eval_every=10", "output.dir="+dir); err != nil {
		t.Fatal(err)
	}
	var res struct {
		Steps int     `json:"steps"`
		Train float64 `json:"train_loss"`
		Eval  struct {
			Loss float64 `json:"loss"`
		} `json:"eval"`
		Initial struct {
			Loss float64 `json:"loss"`
		} `json:"initial_eval"`
	}
	raw, err := os.ReadFile(filepath.Join(dir, "metrics.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, &res); err != nil {
		t.Fatal(err)
	}
	if res.Steps != 30 || !(res.Eval.Loss < res.Initial.Loss) {
		t.Errorf("metrics.json %s", raw)
	}
	text := "<|im_start|>user\n12+7=<|im_end|>\n<|im_start|>assistant\n19<|im_end|>\n"
	mean := func(lps []float64) float64 {
		s := 0.0
		for _, v := range lps {
			s += v
		}
		return s / float64(len(lps))
	}
	base := scoreText(t, "--model", "models/testdata/tiny-chat", "--text", text)
	tuned := scoreText(t, "--model", "models/testdata/tiny-chat", "--adapter", filepath.Join(dir, "adapter"), "--text", text)
	if !(mean(tuned) > mean(base)+0.5) {
		t.Errorf("mean log-probability %.3f with the adapter, %.3f without", mean(tuned), mean(base))
	}
	if _, err := runCLI(t, "", "merge", "--model", "models/testdata/tiny-chat", "--adapter", filepath.Join(dir, "adapter"), "--out", dir+"/merged"); err == nil || !strings.Contains(err.Error(), "cannot be merged") {
		t.Errorf("merge of a mixture: %v", err)
	}
	if _, err := runCLI(t, "", "plot", dir, "--out", dir+"/loss.svg"); err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(dir + "/loss.svg"); err != nil || st.Size() < 1000 {
		t.Errorf("plot: %v", err)
	}
	if _, err := runCLI(t, "", "finetune", "--config", "configs/moe_lora.yaml", "training.max_step=3"); err == nil || !strings.Contains(err.Error(), "max_step") {
		t.Errorf("unknown key: %v", err)
	}
}

func scoreText(t *testing.T, args ...string) []float64 {
	t.Helper()
	return scoreIDs(t, args...)
}

// TestEvalMUSECLI runs `lethe eval --muse` on a small MUSE folder (JSON
// lines): the report has MUSE's numbers, and privleak against a reference
// that is the model itself is 0.
func TestEvalMUSECLI(t *testing.T) {
	dir := t.TempDir()
	files := map[string]string{
		"verbmem/forget.json":    `{"prompt": "Once upon a", "gt": " time"}`,
		"knowmem/forget_qa.json": `{"question": "1+1=", "answer": "2"}`,
		"knowmem/retain_qa.json": `{"question": "2+2=", "answer": "4"}`,
		"privleak/forget.json":   "{\"text\": \"alpha beta\"}\n{\"text\": \"gamma delta epsilon\"}",
		"privleak/retain.json":   `{"text": "zeta eta"}`,
		"privleak/holdout.json":  "{\"text\": \"theta iota\"}\n{\"text\": \"kappa lambda mu\"}",
	}
	for name, body := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	model := "../../models/testdata/tiny-chat"
	out, err := runCLI(t, "", "eval", "--muse", dir, "--model", model, "--reference", model, "--backend", "go:ops_sequential")
	if err != nil {
		t.Fatal(err)
	}
	var rep map[string]map[string]float64
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("%v in %q", err, out)
	}
	for _, k := range []string{"verbmem_forget", "knowmem_forget", "knowmem_retain", "mia_auc", "privleak"} {
		if _, ok := rep["model"][k]; !ok {
			t.Errorf("report lacks model.%s: %s", k, out)
		}
	}
	if rep["model"]["privleak"] != 0 || rep["model"]["mia_auc"] != rep["reference"]["mia_auc"] {
		t.Errorf("the model against itself: %s", out)
	}
	if _, err := runCLI(t, "", "eval", "--muse", dir); err == nil || !strings.Contains(err.Error(), "--model") {
		t.Errorf("--muse without --model: %v", err)
	}
}
