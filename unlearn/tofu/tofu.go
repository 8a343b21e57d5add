// Package tofu reads TOFU (Maini et al. 2024, "TOFU: A Task of Fictitious
// Unlearning for LLMs"; the Hub dataset locuslab/TOFU) as users download
// it, into the examples of lethe's unlearning recipe (facts.Example), so
// that `lethe unlearn` and `lethe eval` run TOFU's protocol on a model
// fine-tuned on it.
//
// A TOFU folder holds, per subset, either the JSON-lines files of the
// dataset's main branch (forget10_perturbed.json, ...), a Parquet file per
// subset (forget10_perturbed.parquet), or the Hub's Parquet conversion
// (refs/convert/parquet: forget10_perturbed/train/0000.parquet). Load reads
// for a forget subset forgetNN:
//
//	forgetNN_perturbed  question, answer, paraphrased_answer, perturbed_answer  → split forget
//	retain_perturbed    the same columns (400 retain questions)                   → split retain
//	holdoutNN           question, answer                                          → split holdout
//
// TOFU's own evaluation uses retain_perturbed for the retain metrics and
// trains the retain term on retainMM (retain90 with forget10); lethe's
// recipe uses the retain split for both, so retain_perturbed is the
// retain data here (a subset of every retainMM).
package tofu

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/lethe-ml/lethe/unlearn/facts"
	"github.com/lethe-ml/lethe/unlearn/internal/rowfile"
)

// ForgetSubsets are TOFU's forget subsets (1%, 5% and 10% of its authors).
var ForgetSubsets = []string{"forget01", "forget05", "forget10"}

// row is one TOFU row; the perturbed subsets have every field.
type row struct {
	Question          string   `json:"question" parquet:"question"`
	Answer            string   `json:"answer" parquet:"answer"`
	ParaphrasedAnswer string   `json:"paraphrased_answer" parquet:"paraphrased_answer,optional"`
	PerturbedAnswer   []string `json:"perturbed_answer" parquet:"perturbed_answer,list,optional"`
}

// Load reads the forget subset (forget01, forget05 or forget10), the
// retain questions and the matching holdout subset from dir.
func Load(dir, forget string) ([]facts.Example, error) {
	if !slices.Contains(ForgetSubsets, forget) {
		return nil, fmt.Errorf("tofu: forget subset %q is not one of %s", forget, strings.Join(ForgetSubsets, ", "))
	}
	var out []facts.Example
	for _, s := range []struct {
		name, split string
		perturbed   bool
	}{
		{forget + "_perturbed", facts.SplitForget, true},
		{"retain_perturbed", facts.SplitRetain, true},
		{"holdout" + strings.TrimPrefix(forget, "forget"), facts.SplitHoldout, false},
	} {
		rows, path, err := readSubset(dir, s.name)
		if err != nil {
			return nil, err
		}
		for i, r := range rows {
			if r.Question == "" || r.Answer == "" {
				return nil, fmt.Errorf("tofu: %s: row %d has no question or answer", path, i)
			}
			if s.perturbed && (r.ParaphrasedAnswer == "" || len(r.PerturbedAnswer) == 0) {
				return nil, fmt.Errorf("tofu: %s: row %d has no paraphrased_answer or perturbed_answer", path, i)
			}
			out = append(out, facts.Example{Question: r.Question, Answer: r.Answer, ParaphrasedAnswer: r.ParaphrasedAnswer,
				PerturbedAnswers: r.PerturbedAnswer, Entity: fmt.Sprintf("%s/%d", s.name, i), Kind: "tofu", Fact: "bio", Split: s.split})
		}
	}
	return out, nil
}

// readSubset finds and reads one subset in any of the layouts.
func readSubset(dir, name string) ([]row, string, error) {
	candidates := []string{
		filepath.Join(dir, name+".json"), filepath.Join(dir, name+".jsonl"), filepath.Join(dir, name+".parquet"),
	}
	for _, pattern := range []string{filepath.Join(dir, name, "train", "*.parquet"), filepath.Join(dir, name, "train-*.parquet"), filepath.Join(dir, name, "*.parquet")} {
		m, _ := filepath.Glob(pattern)
		if len(m) > 0 {
			slices.Sort(m)
			var all []row
			for _, p := range m {
				rows, err := rowfile.Parquet[row](p, "question", "answer")
				if err != nil {
					return nil, p, fmt.Errorf("tofu: %s: %w", p, err)
				}
				all = append(all, rows...)
			}
			return all, m[0], nil
		}
	}
	for _, p := range candidates {
		if _, err := os.Stat(p); err != nil {
			continue
		}
		var rows []row
		var err error
		if strings.HasSuffix(p, ".parquet") {
			rows, err = rowfile.Parquet[row](p, "question", "answer")
		} else {
			rows, err = rowfile.JSON[row](p)
		}
		if err != nil {
			return nil, p, fmt.Errorf("tofu: %s: %w", p, err)
		}
		return rows, p, nil
	}
	return nil, "", fmt.Errorf("tofu: no %s subset in %s (looked for %s.json, %s.jsonl, %s.parquet and %s/train/*.parquet)", name, dir, name, name, name, name)
}
