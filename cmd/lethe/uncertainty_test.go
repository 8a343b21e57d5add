package main

import (
	"bufio"
	"encoding/json"
	"math"
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
	// Sampled answers: they agree more on the questions the model gets
	// right; the EigenScores are finite; the Rashomon set is reported.
	sampled := filepath.Join(t.TempDir(), "sampled.jsonl")
	raw, err = runCLI(t, "", append(args[:len(args)-2], "--out", sampled, "--answers", "4", "--rashomon", "4", "--limit", "60")...)
	if err != nil {
		t.Fatal(err)
	}
	var rep2 calibration
	if err := json.Unmarshal([]byte(raw), &rep2); err != nil {
		t.Fatal(err)
	}
	if rep2.Rashomon == nil || len(rep2.Rashomon.Losses) != 4 || math.Abs(rep2.Rashomon.BaseAccuracy-rep2.Accuracy) > 1e-9 {
		t.Errorf("rashomon %+v (accuracy %g)", rep2.Rashomon, rep2.Accuracy)
	}
	var agreeRight, agreeWrong, nRight, nWrong float64
	for _, r := range readRows(t, sampled) {
		if r.Agreement < 0 || r.Agreement > 1 || r.Distinct < 1 || r.Distinct > 4 || r.EigenScore == 0 || r.EigenScore != r.EigenScore {
			t.Errorf("sampled answers: %+v", r)
		}
		if r.Correct {
			agreeRight, nRight = agreeRight+r.Agreement, nRight+1
		} else {
			agreeWrong, nWrong = agreeWrong+r.Agreement, nWrong+1
		}
	}
	t.Logf("agreement: %.3f on right answers, %.3f on wrong ones", agreeRight/nRight, agreeWrong/max(nWrong, 1))
	if nWrong > 0 && !(agreeRight/nRight > agreeWrong/nWrong) {
		t.Errorf("agreement %.3f on right answers, %.3f on wrong ones", agreeRight/nRight, agreeWrong/nWrong)
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
