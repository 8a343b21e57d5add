package eval

import (
	"encoding/json"
	"math"

	"github.com/lethe-ml/lethe/unlearn/metrics"
)

// Report is the evaluation of one model on a benchmark's splits. The
// first six fields are the quickstart table; Extra holds the rest and CI
// bootstrap confidence intervals.
type Report struct {
	// ForgetAccuracy, RetainAccuracy and HoldoutAccuracy are the fractions
	// of questions answered correctly by greedy decoding.
	ForgetAccuracy  float64 `json:"forget_accuracy"`
	RetainAccuracy  float64 `json:"retain_accuracy"`
	HoldoutAccuracy float64 `json:"holdout_accuracy"`
	// ForgetQuality is the KS-test p-value between the forget truth ratios
	// of this model and of the retain-only reference (TOFU; NaN without a
	// reference, encoded as null).
	ForgetQuality *float64 `json:"forget_quality"`
	// MIAAUC is the LOSS attack's AUC of forget (members) against holdout
	// (non-members), in open-unlearning's orientation: 1 = the forget set
	// is recognisable, 0.5 = it looks unseen.
	MIAAUC float64 `json:"mia_auc"`
	// ModelUtility is the harmonic mean of the retain split's answer
	// probability, ROUGE-L recall and truth ratio (1 − TR, clipped).
	ModelUtility float64 `json:"model_utility"`
	// Extra holds the components and the other attacks.
	Extra map[string]float64 `json:"extra"`
	// CI holds [low, high] bootstrap intervals of the accuracies and the
	// MIA AUC.
	CI map[string][2]float64 `json:"ci,omitempty"`
	// Multiplicity holds the dropout predictive multiplicity per split,
	// when evaluated (recipe key eval.multiplicity).
	Multiplicity map[string]Multiplicity `json:"multiplicity,omitempty"`
	// NotApplicable names the keys the benchmark does not define (MUSE has
	// no holdout questions): they are written as null.
	NotApplicable []string `json:"not_applicable,omitempty"`
}

// MarshalJSON writes the report with the NotApplicable keys null.
func (r Report) MarshalJSON() ([]byte, error) {
	type plain Report
	b, err := json.Marshal(plain(r))
	if err != nil || len(r.NotApplicable) == 0 {
		return b, err
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, err
	}
	for _, k := range r.NotApplicable {
		m[k] = json.RawMessage("null")
	}
	return json.Marshal(m)
}

// ReportOptions configure Summarize.
type ReportOptions struct {
	// Bootstrap resamples (0: no intervals), at level Confidence, seeded.
	Bootstrap  int
	Confidence float64
	Seed       uint64
}

// Summarize computes a Report from the splits' results; refForget, the
// retain-only model's forget results, gives forget quality and PrivLeak.
func Summarize(forget, retain, holdout, refForget *SplitResult, opts ReportOptions) Report {
	r := Report{
		ForgetAccuracy:  forget.Accuracy(),
		RetainAccuracy:  retain.Accuracy(),
		HoldoutAccuracy: holdout.Accuracy(),
		MIAAUC:          metrics.MIAAUC(forget.Loss, holdout.Loss),
		Extra:           map[string]float64{},
	}
	prob := metrics.MeanProbability(retain.AnswerNLL)
	rouge := metrics.Mean(retain.RougeRecall)
	tr := metrics.TruthRatioTrueBetter(finite(retain.TruthRatio))
	r.ModelUtility, _ = metrics.ModelUtility(prob, rouge, tr)
	e := r.Extra
	e["retain_probability"], e["retain_rouge_l_recall"], e["retain_truth_ratio"] = prob, rouge, tr
	e["forget_probability"] = metrics.MeanProbability(forget.AnswerNLL)
	e["forget_rouge_l_recall"] = metrics.Mean(forget.RougeRecall)
	e["forget_truth_ratio"] = metrics.TruthRatioCloserTo1(finite(forget.TruthRatio))
	e["forget_exact_memorization"] = metrics.Mean(forget.Memorised)
	e["mia_zlib_auc"] = metrics.MIAAUC(forget.Zlib, holdout.Zlib)
	e["mia_min_k_auc"] = metrics.MIAAUC(forget.MinK, holdout.MinK)
	e["mia_min_k_plus_plus_auc"] = metrics.MIAAUC(forget.MinKPP, holdout.MinKPP)
	for k, v := range e {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			delete(e, k) // JSON has no NaN; a missing key means "not defined here"
		}
	}
	if refForget != nil {
		if fq, err := metrics.ForgetQuality(finite(forget.TruthRatio), finite(refForget.TruthRatio)); err == nil {
			r.ForgetQuality = &fq
		}
	}
	if opts.Bootstrap > 0 {
		r.CI = map[string][2]float64{}
		for name, s := range map[string]*SplitResult{"forget_accuracy": forget, "retain_accuracy": retain, "holdout_accuracy": holdout} {
			v := make([]float64, len(s.Correct))
			for i, c := range s.Correct {
				if c {
					v[i] = 1
				}
			}
			if lo, hi, err := metrics.Bootstrap(v, metrics.Mean, opts.Bootstrap, opts.Confidence, opts.Seed); err == nil {
				r.CI[name] = [2]float64{lo, hi}
			}
		}
		// The AUC resamples forget and holdout together: index i < n picks
		// a forget score, the rest holdout scores.
		n := len(forget.Loss)
		all := append(append([]float64(nil), forget.Loss...), holdout.Loss...)
		idx := make([]float64, len(all))
		for i := range idx {
			idx[i] = float64(i)
		}
		auc := func(sample []float64) float64 {
			var f, h []float64
			for _, i := range sample {
				if int(i) < n {
					f = append(f, all[int(i)])
				} else {
					h = append(h, all[int(i)])
				}
			}
			return metrics.MIAAUC(f, h)
		}
		if lo, hi, err := metrics.Bootstrap(idx, auc, opts.Bootstrap, opts.Confidence, opts.Seed); err == nil && !math.IsNaN(lo) {
			r.CI["mia_auc"] = [2]float64{lo, hi}
		}
	}
	return r
}
