package recipe

import (
	"context"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lethe-ml/lethe/internal/backend"
	"github.com/lethe-ml/lethe/unlearn/facts"
	"github.com/lethe-ml/lethe/unlearn/metrics"
)

// museFromFacts writes a MUSE folder built from the shipped facts
// benchmark: raw/forget and raw/retain1 hold the forget and retain
// questions with their answers as text (what the shipped model was trained
// on), verbmem asks it to continue the forget questions, knowmem asks
// forget and retain questions, and privleak compares forget texts with
// holdout texts (never trained on).
func museFromFacts(t *testing.T, n int) string {
	t.Helper()
	ex, err := facts.Read("unlearn/quickstart/models/facts.parquet")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	write := func(name string, rows []map[string]string) {
		var b strings.Builder
		for _, r := range rows {
			line, _ := json.Marshal(r)
			b.Write(line)
			b.WriteByte('\n')
		}
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	texts := func(split string) []map[string]string {
		var out []map[string]string
		for _, e := range facts.Split(ex, split)[:n] {
			out = append(out, map[string]string{"text": e.Prompt() + e.Completion()})
		}
		return out
	}
	qa := func(split string) []map[string]string {
		var out []map[string]string
		for _, e := range facts.Split(ex, split)[:n] {
			out = append(out, map[string]string{"question": e.Question, "answer": e.Answer})
		}
		return out
	}
	var verb []map[string]string
	for _, e := range facts.Split(ex, facts.SplitForget)[:n] {
		verb = append(verb, map[string]string{"prompt": e.Prompt(), "gt": e.Completion()})
	}
	write("raw/forget.json", texts(facts.SplitForget))
	write("raw/retain1.json", texts(facts.SplitRetain))
	write("verbmem/forget.json", verb)
	write("knowmem/forget_qa.json", qa(facts.SplitForget))
	write("knowmem/retain_qa.json", qa(facts.SplitRetain))
	write("privleak/forget.json", texts(facts.SplitForget))
	write("privleak/retain.json", texts(facts.SplitRetain))
	write("privleak/holdout.json", texts(facts.SplitHoldout))
	return dir
}

// TestMUSERecipe runs MUSE's protocol on a MUSE folder made from the facts
// benchmark: NPO with a retain term on the raw forget texts removes verbatim
// memorisation of the forget passages (0.77 -> 0.03 ROUGE-L F1; the
// retain-only model scores 0), PrivLeak is measured against the retain-only
// model's AUC, and metrics.json maps MUSE's
// numbers onto the six keys, with holdout accuracy and forget quality null.
func TestMUSERecipe(t *testing.T) {
	t.Chdir("../..")
	dir := museFromFacts(t, 24)
	out := filepath.Join(t.TempDir(), "run")
	y := `model: {path: unlearn/quickstart/models/full}
reference: unlearn/quickstart/models/retain
data:
  muse: {dir: ` + dir + `, verbmem_tokens: 8, knowmem_tokens: 8}
method: {name: npo, beta: 0.1, alpha: 10}
optimizer: {lr: 1.0e-3, weight_decay: 0}
training: {steps: 30, forget_batch: 16, retain_batch: 16, max_length: 64, log_every: 10}
output: {dir: ` + out + `}
`
	path := filepath.Join(t.TempDir(), "muse.yaml")
	if err := os.WriteFile(path, []byte(y), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := LoadConfig(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	b, _, err := backend.New("go:ops_sequential")
	if err != nil {
		t.Fatal(err)
	}
	res, err := Run(context.Background(), cfg, Options{Backend: b, Log: tlog{t}})
	if err != nil {
		t.Fatal(err)
	}
	bf, af, rf := res.Before.Extra, res.After.Extra, res.Reference.Extra
	t.Logf("before %v\nafter %v\nreference %v", bf, af, rf)
	if bf["verbmem_forget"] < 0.7 || rf["verbmem_forget"] > 0.3 {
		t.Errorf("verbmem forget %.3f (model), %.3f (retain-only model)", bf["verbmem_forget"], rf["verbmem_forget"])
	}
	if af["verbmem_forget"] > 0.2 {
		t.Errorf("verbmem forget %.3f -> %.3f", bf["verbmem_forget"], af["verbmem_forget"])
	}
	// PrivLeak is relative to the retain-only model's AUC: 0 for the
	// reference itself, and MUSE's formula for the others.
	for _, r := range []map[string]float64{rf, bf, af} {
		if want := metrics.PrivLeak(r["privleak_auc"], rf["privleak_auc"]); math.Abs(r["privleak"]-want) > 1e-9 {
			t.Errorf("privleak %.4f, want %.4f from AUC %.4f against %.4f", r["privleak"], want, r["privleak_auc"], rf["privleak_auc"])
		}
	}
	raw, err := os.ReadFile(filepath.Join(out, SummaryFile))
	if err != nil {
		t.Fatal(err)
	}
	var sum struct{ Before, After map[string]any }
	if err := json.Unmarshal(raw, &sum); err != nil {
		t.Fatal(err)
	}
	parts := map[string]map[string]any{"before": sum.Before, "after": sum.After}
	for _, part := range []string{"before", "after"} {
		for _, k := range []string{"forget_accuracy", "retain_accuracy", "holdout_accuracy", "forget_quality", "mia_auc", "model_utility"} {
			v, ok := parts[part][k]
			null := k == "holdout_accuracy" || k == "forget_quality"
			if _, isNum := v.(float64); !ok || null != (v == nil) || !null && !isNum {
				t.Errorf("metrics.json %s.%s = %v (present %v)", part, k, v, ok)
			}
		}
	}
	// Methods that need questions are refused with the key named.
	cfg.Method.Name = "dpo"
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "method.name") {
		t.Errorf("dpo on MUSE: %v", err)
	}
}

type tlog struct{ t *testing.T }

func (l tlog) Write(p []byte) (int, error) { l.t.Log(strings.TrimSpace(string(p))); return len(p), nil }
