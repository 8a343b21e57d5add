package muse

import (
	"context"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/parquet-go/parquet-go"

	"github.com/lethe-ml/lethe/data/tokenizer"
	"github.com/lethe-ml/lethe/internal/backend"
	"github.com/lethe-ml/lethe/models"
	"github.com/lethe-ml/lethe/unlearn/eval"
)

func writeJSONLines(t *testing.T, path string, rows any) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	raw, _ := json.Marshal(rows)
	var items []json.RawMessage
	_ = json.Unmarshal(raw, &items)
	for _, it := range items {
		b.Write(it)
		b.WriteByte('\n')
	}
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
}

// museFolder writes a small MUSE folder: the Hub's Parquet layout for
// knowmem, JSON lines for verbmem and privleak (the forget and holdout
// texts identical, so no attack can tell them apart).
func museFolder(t *testing.T) string {
	dir := t.TempDir()
	qa := []QA{{"1+1=", "2"}, {"2+2=", "4"}, {"3+3=", "6"}}
	for _, split := range []string{"forget_qa", "retain_qa", "forget_qa_icl"} {
		p := filepath.Join(dir, "knowmem", split+"-00000-of-00001.parquet")
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := parquet.WriteFile(p, qa); err != nil {
			t.Fatal(err)
		}
	}
	writeJSONLines(t, filepath.Join(dir, "verbmem", "forget.json"), []Passage{{"Once upon a", " time"}, {"The end", " is near"}})
	texts := []Text{{"alpha beta gamma"}, {"delta epsilon"}, {"zeta eta theta iota"}}
	for _, split := range []string{"forget", "retain", "holdout"} {
		writeJSONLines(t, filepath.Join(dir, "privleak", split+".json"), texts)
	}
	return dir
}

func TestLoadAndEvaluate(t *testing.T) {
	dir := museFolder(t)
	d, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(d.ForgetQA) != 3 || len(d.ForgetICL) != 3 || d.RetainICL != nil || len(d.VerbMem) != 2 || d.VerbMem[1].GT != " is near" || len(d.PrivHoldout) != 3 {
		t.Fatalf("data %+v", d)
	}
	if got := Prompt(d.ForgetICL[:1], "5+5="); got != "Question: 1+1=\nAnswer: 2\n\nQuestion: 5+5=\nAnswer:" {
		t.Errorf("prompt %q", got)
	}
	b, _, err := backend.New("go:ops_sequential")
	if err != nil {
		t.Fatal(err)
	}
	const model = "../../models/testdata/tiny-chat"
	m, err := models.Load(model, models.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	tok, err := tokenizer.Load(model)
	if err != nil {
		t.Fatal(err)
	}
	r, err := Evaluate(context.Background(), &eval.Model{M: m, Tokenizer: tok, Backend: b}, d, Options{VerbMemTokens: 8, KnowMemTokens: 4})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%+v", r)
	for name, v := range map[string]float64{"verbmem": r.VerbMemForget, "knowmem forget": r.KnowMemForget, "knowmem retain": r.KnowMemRetain} {
		if v < 0 || v > 1 || math.IsNaN(v) {
			t.Errorf("%s = %g", name, v)
		}
	}
	if r.MIAAUC != 0.5 || math.Abs(r.PrivLeak) > 1e-9 {
		t.Errorf("identical forget and holdout texts: AUC %g, privleak %g; want 0.5 and 0", r.MIAAUC, r.PrivLeak)
	}
}

func TestLoadErrors(t *testing.T) {
	dir := t.TempDir()
	if _, err := Load(dir); err == nil || !strings.Contains(err.Error(), "verbmem/forget") {
		t.Errorf("empty folder: %v", err)
	}
	p := filepath.Join(dir, "verbmem", "forget-00000-of-00001.parquet")
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte("PAR1 broken"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(dir); err == nil || !strings.Contains(err.Error(), p) {
		t.Errorf("corrupt file: %v", err)
	}
}
