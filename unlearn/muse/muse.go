// Package muse reads MUSE (Shi et al. 2024, "MUSE: Machine Unlearning
// Six-Way Evaluation for Language Models"; the Hub datasets
// muse-bench/MUSE-News and MUSE-Books) as users download it and runs its
// evaluations on a model: verbatim memorisation (VerbMem), knowledge
// memorisation on the forget and retain questions (KnowMem), and privacy
// leakage (PrivLeak).
//
// A MUSE folder holds each subset's splits as Parquet, in the Hub's layout
// (knowmem/forget_qa-00000-of-00001.parquet) or one file per split
// (knowmem_forget_qa.parquet), or as JSON lines (knowmem/forget_qa.json):
//
//	verbmem   forget                                  prompt, gt
//	knowmem   forget_qa, retain_qa (+ _icl few-shot)   question, answer
//	privleak  forget, retain, holdout                 text
//	raw       forget, retain1, retain2, holdout       text (what unlearning trains on; Raw)
package muse

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/lethe-ml/lethe/unlearn/eval"
	"github.com/lethe-ml/lethe/unlearn/internal/rowfile"
	"github.com/lethe-ml/lethe/unlearn/metrics"
)

// QA is a knowmem question.
type QA struct {
	Question string `json:"question" parquet:"question"`
	Answer   string `json:"answer" parquet:"answer"`
}

// Passage is a verbmem prompt and its ground-truth continuation.
type Passage struct {
	Prompt string `json:"prompt" parquet:"prompt"`
	GT     string `json:"gt" parquet:"gt"`
}

// Text is a privleak document.
type Text struct {
	Text string `json:"text" parquet:"text"`
}

// Data is a MUSE corpus's evaluation sets.
type Data struct {
	VerbMem                             []Passage
	ForgetQA, RetainQA                  []QA
	ForgetICL, RetainICL                []QA
	PrivForget, PrivRetain, PrivHoldout []Text
}

// Load reads the evaluation sets from dir. The few-shot (_icl) splits are
// optional.
func Load(dir string) (*Data, error) {
	d := &Data{}
	var err error
	if d.VerbMem, err = read[Passage](dir, "verbmem", "forget", true); err != nil {
		return nil, err
	}
	for _, s := range []struct {
		split string
		into  *[]QA
		need  bool
	}{{"forget_qa", &d.ForgetQA, true}, {"retain_qa", &d.RetainQA, true}, {"forget_qa_icl", &d.ForgetICL, false}, {"retain_qa_icl", &d.RetainICL, false}} {
		if *s.into, err = read[QA](dir, "knowmem", s.split, s.need); err != nil {
			return nil, err
		}
	}
	for _, s := range []struct {
		split string
		into  *[]Text
	}{{"forget", &d.PrivForget}, {"retain", &d.PrivRetain}, {"holdout", &d.PrivHoldout}} {
		if *s.into, err = read[Text](dir, "privleak", s.split, true); err != nil {
			return nil, err
		}
	}
	return d, nil
}

// Raw reads a split of MUSE's raw corpora (forget, retain1, retain2,
// holdout): the documents unlearning trains on, where the evaluation
// splits are what it is measured on.
func Raw(dir, split string) ([]Text, error) { return read[Text](dir, "raw", split, true) }

// read finds and reads one split of a subset.
func read[T any](dir, subset, split string, required bool) ([]T, error) {
	var files []string
	for _, pattern := range []string{
		filepath.Join(dir, subset, split+"-*.parquet"), filepath.Join(dir, subset, split+".parquet"),
		filepath.Join(dir, subset+"_"+split+".parquet"),
	} {
		m, _ := filepath.Glob(pattern)
		if len(m) > 0 {
			slices.Sort(m)
			files = m
			break
		}
	}
	if files == nil {
		for _, p := range []string{filepath.Join(dir, subset, split+".json"), filepath.Join(dir, subset, split+".jsonl"), filepath.Join(dir, subset+"_"+split+".json")} {
			if _, err := os.Stat(p); err == nil {
				files = []string{p}
				break
			}
		}
	}
	if files == nil {
		if !required {
			return nil, nil
		}
		return nil, fmt.Errorf("muse: no %s/%s split in %s (looked for %s/%s-*.parquet, %s_%s.parquet and %s/%s.json)",
			subset, split, dir, subset, split, subset, split, subset, split)
	}
	var out []T
	for _, f := range files {
		var rows []T
		var err error
		if strings.HasSuffix(f, ".parquet") {
			rows, err = rowfile.Parquet[T](f)
		} else {
			rows, err = rowfile.JSON[T](f)
		}
		if err != nil {
			return nil, fmt.Errorf("muse: %s: %w", f, err)
		}
		out = append(out, rows...)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("muse: %s/%s in %s is empty", subset, split, dir)
	}
	return out, nil
}

// Options configure Evaluate; zero values take MUSE's settings.
type Options struct {
	// VerbMemTokens bounds the verbmem continuations [128];
	// KnowMemTokens the answers [32].
	VerbMemTokens, KnowMemTokens int
	// MinK is Min-K%++'s fraction [0.4].
	MinK float64
	// RetrainAUC is the privleak MIA AUC of the model retrained without the
	// forget set (PrivLeak is relative to it) [nil: 0.5].
	RetrainAUC *float64
}

// Report holds MUSE's numbers.
type Report struct {
	// VerbMemForget is the mean ROUGE-L F1 of the continuations of the
	// forget passages against their ground truth (C1).
	VerbMemForget float64 `json:"verbmem_forget"`
	// KnowMemForget and KnowMemRetain are the mean ROUGE-L F1 of the
	// answers to the forget and retain questions (C2, C4).
	KnowMemForget float64 `json:"knowmem_forget"`
	KnowMemRetain float64 `json:"knowmem_retain"`
	// MIAAUC is the Min-K%++ AUC of privleak forget against holdout texts
	// (open-unlearning's orientation), PrivLeak its relative gap to the
	// retrained model's in percent (C3).
	MIAAUC   float64 `json:"mia_auc"`
	PrivLeak float64 `json:"privleak"`
}

// Prompt renders a knowmem question after the few-shot examples, in the
// format of MUSE's evaluation: "Question: q\nAnswer: a\n\n" per example.
func Prompt(icl []QA, question string) string {
	var b strings.Builder
	for _, e := range icl {
		fmt.Fprintf(&b, "Question: %s\nAnswer: %s\n\n", e.Question, e.Answer)
	}
	fmt.Fprintf(&b, "Question: %s\nAnswer:", question)
	return b.String()
}

// Evaluate runs MUSE's evaluations on a model.
func Evaluate(ctx context.Context, m *eval.Model, d *Data, opts Options) (Report, error) {
	if opts.VerbMemTokens == 0 {
		opts.VerbMemTokens = 128
	}
	if opts.KnowMemTokens == 0 {
		opts.KnowMemTokens = 32
	}
	if opts.MinK == 0 {
		opts.MinK = 0.4
	}
	retrain := 0.5
	if opts.RetrainAUC != nil {
		retrain = *opts.RetrainAUC
	}
	var r Report
	var prompts, refs []string
	for _, p := range d.VerbMem {
		prompts, refs = append(prompts, p.Prompt), append(refs, p.GT)
	}
	gen, err := m.AnswersUntil(ctx, prompts, opts.VerbMemTokens, nil)
	if err != nil {
		return r, fmt.Errorf("muse: verbmem: %w", err)
	}
	r.VerbMemForget = meanRougeF1(gen, refs)
	for _, s := range []struct {
		qa, icl []QA
		into    *float64
	}{{d.ForgetQA, d.ForgetICL, &r.KnowMemForget}, {d.RetainQA, d.RetainICL, &r.KnowMemRetain}} {
		prompts, refs = prompts[:0], refs[:0]
		for _, q := range s.qa {
			prompts, refs = append(prompts, Prompt(s.icl, q.Question)), append(refs, q.Answer)
		}
		ans, err := m.Answers(ctx, prompts, opts.KnowMemTokens, "\n")
		if err != nil {
			return r, fmt.Errorf("muse: knowmem: %w", err)
		}
		*s.into = meanRougeF1(ans, refs)
	}
	score := func(texts []Text) ([]float64, error) {
		var ps, cs []string
		for _, t := range texts {
			// The whole text is scored (an empty prompt).
			ps, cs = append(ps, ""), append(cs, t.Text)
		}
		sc, err := m.Score(ctx, ps, cs)
		if err != nil {
			return nil, err
		}
		out := make([]float64, len(sc))
		for i, s := range sc {
			variance := make([]float64, len(s.Std))
			for j, v := range s.Std {
				variance[j] = v * v
			}
			if out[i], err = metrics.MinKPlusPlus(s.LogProbs, s.Mean, variance, opts.MinK); err != nil {
				return nil, err
			}
		}
		return out, nil
	}
	f, err := score(d.PrivForget)
	if err != nil {
		return r, fmt.Errorf("muse: privleak: %w", err)
	}
	h, err := score(d.PrivHoldout)
	if err != nil {
		return r, fmt.Errorf("muse: privleak: %w", err)
	}
	r.MIAAUC = metrics.MIAAUC(f, h)
	r.PrivLeak = metrics.PrivLeak(r.MIAAUC, retrain)
	return r, nil
}

func meanRougeF1(gen, refs []string) float64 {
	s := 0.0
	for i := range gen {
		s += metrics.RougeL(strings.TrimSpace(gen[i]), refs[i]).F1
	}
	return s / float64(max(len(gen), 1))
}
