package tofu

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/parquet-go/parquet-go"

	"github.com/lethe-ml/lethe/unlearn/facts"
)

func writeJSONLines(t *testing.T, path string, rows []row) {
	t.Helper()
	var b strings.Builder
	for _, r := range rows {
		line, _ := json.Marshal(r)
		b.Write(line)
		b.WriteByte('\n')
	}
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
}

func writeParquet(t *testing.T, path string, rows []row) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := parquet.WriteFile(path, rows); err != nil {
		t.Fatal(err)
	}
}

// TestLoadLayouts reads a TOFU folder mixing the three layouts: JSON lines
// (forget), one Parquet file (retain) and the Hub's Parquet conversion
// (holdout, question and answer only).
func TestLoadLayouts(t *testing.T) {
	dir := t.TempDir()
	pert := func(q string) row {
		return row{Question: q, Answer: "A " + q, ParaphrasedAnswer: "P " + q, PerturbedAnswer: []string{"W1 " + q, "W2 " + q}}
	}
	writeJSONLines(t, filepath.Join(dir, "forget01_perturbed.json"), []row{pert("f1"), pert("f2")})
	writeParquet(t, filepath.Join(dir, "retain_perturbed.parquet"), []row{pert("r1"), pert("r2"), pert("r3")})
	type qa struct {
		Question string `parquet:"question"`
		Answer   string `parquet:"answer"`
	}
	p := filepath.Join(dir, "holdout01", "train", "0000.parquet")
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := parquet.WriteFile(p, []qa{{"h1", "A h1"}}); err != nil {
		t.Fatal(err)
	}
	ex, err := Load(dir, "forget01")
	if err != nil {
		t.Fatal(err)
	}
	counts := map[string]int{}
	for _, e := range ex {
		counts[e.Split]++
	}
	if counts[facts.SplitForget] != 2 || counts[facts.SplitRetain] != 3 || counts[facts.SplitHoldout] != 1 {
		t.Fatalf("splits %v", counts)
	}
	e := ex[3] // r2
	if e.Question != "r2" || e.Answer != "A r2" || e.ParaphrasedAnswer != "P r2" || len(e.PerturbedAnswers) != 2 || e.PerturbedAnswers[1] != "W2 r2" {
		t.Errorf("retain row 2: %+v", e)
	}
	if h := ex[5]; h.Question != "h1" || h.ParaphrasedAnswer != "" || h.Split != facts.SplitHoldout {
		t.Errorf("holdout row: %+v", h)
	}
}

func TestLoadErrors(t *testing.T) {
	dir := t.TempDir()
	if _, err := Load(dir, "forget02"); err == nil || !strings.Contains(err.Error(), "forget01, forget05, forget10") {
		t.Errorf("bad subset: %v", err)
	}
	if _, err := Load(dir, "forget05"); err == nil || !strings.Contains(err.Error(), "forget05_perturbed") {
		t.Errorf("missing file: %v", err)
	}
	writeJSONLines(t, filepath.Join(dir, "forget05_perturbed.json"), []row{{Question: "q", Answer: "a"}})
	if _, err := Load(dir, "forget05"); err == nil || !strings.Contains(err.Error(), "paraphrased_answer") {
		t.Errorf("row without a paraphrase: %v", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "forget10_perturbed.parquet"), []byte("not parquet"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(dir, "forget10"); err == nil || !strings.Contains(err.Error(), "forget10_perturbed.parquet") {
		t.Errorf("corrupt Parquet: %v", err)
	}
}
