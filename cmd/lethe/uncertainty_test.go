package main

import (
	"bufio"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
)

// TestUncertaintyCLI answers 80 facts questions with the shipped facts
// model: the MC-dropout mutual information of its answers separates wrong
// from right ones (selective AUROC well above chance), abstaining on the
// most uncertain raises the accuracy of the rest, and every row is
// written; at dropout rate 0 the mutual information of every answer is 0.
func TestUncertaintyCLI(t *testing.T) {
	t.Chdir("../..")
	out := filepath.Join(t.TempDir(), "scores.jsonl")
	args := []string{"uncertainty", "--model", "unlearn/quickstart/models/full", "--data", "unlearn/quickstart/models/facts.parquet",
		"--stop", `\n`, "--limit", "80", "--passes", "6", "--backend", "go:ops_sequential", "--out", out}
	raw, err := runCLI(t, "", args...)
	if err != nil {
		t.Fatal(err)
	}
	var rep calibration
	if err := json.Unmarshal([]byte(raw), &rep); err != nil {
		t.Fatalf("%v in %q", err, raw)
	}
	t.Logf("%+v", rep)
	if rep.Examples != 80 || rep.Accuracy < 0.5 || rep.Accuracy > 0.98 {
		t.Fatalf("report %+v", rep)
	}
	if rep.SelectiveAUROC < 0.8 || rep.AccuracyAt50 <= rep.Accuracy || !rep.Reached {
		t.Errorf("mutual information does not separate wrong answers: %+v", rep)
	}
	rows := readRows(t, out)
	if len(rows) != 80 {
		t.Fatalf("%d rows", len(rows))
	}
	abstained := 0
	for _, r := range rows {
		if r.MeanMI < 0 || r.MeanPE < r.MeanEE || (r.Correct != (r.Answer == r.Gold)) {
			t.Errorf("row %+v", r)
		}
		if r.Abstain {
			abstained++
		}
	}
	if got := 1 - float64(abstained)/80; got != rep.Coverage {
		t.Errorf("abstained on %d rows, coverage %g", abstained, rep.Coverage)
	}
	zero := filepath.Join(t.TempDir(), "zero.jsonl")
	if _, err := runCLI(t, "", append(args[:len(args)-2], "--out", zero, "--rate", "0", "--limit", "10")...); err != nil {
		t.Fatal(err)
	}
	for _, r := range readRows(t, zero) {
		if r.MeanMI != 0 || r.MaxMI != 0 {
			t.Errorf("rate 0: mutual information %g (max %g) for %q", r.MeanMI, r.MaxMI, r.Prompt)
		}
	}
}

func readRows(t *testing.T, path string) []uncertaintyRow {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var rows []uncertaintyRow
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var r uncertaintyRow
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatal(err)
		}
		rows = append(rows, r)
	}
	return rows
}
