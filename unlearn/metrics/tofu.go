package metrics

import (
	"errors"
	"fmt"
	"math"
)

// eps is the constant open-unlearning adds to denominators (truth ratio,
// normalised probability, privleak).
const eps = 1e-10

// Probability is TOFU's length-normalised answer probability
// (Maini et al. 2024, §2.5 "Probability"): P(a|q)^(1/|a|) = exp(−avgNLL),
// where avgNLL is the answer's summed token negative log-likelihood
// divided by its number of label tokens. open-unlearning computes it in
// evaluate_probability (src/evals/metrics/utils.py) as
// exp(−loss_sum/num_label_tokens).
func Probability(avgNLL float64) float64 {
	return math.Exp(-avgNLL)
}

// MeanProbability is the aggregate of open-unlearning's "probability"
// metric (src/evals/metrics/memorization.py): the arithmetic mean over
// examples of [Probability]. It returns NaN for no examples (numpy's
// mean of an empty array).
//
// For datasets with several answers per question open-unlearning first
// averages the probabilities of one question's answers (aggregate_to_1D);
// pass those per-question means through [Mean] instead.
func MeanProbability(avgNLL []float64) float64 {
	var s float64
	for _, v := range avgNLL {
		s += Probability(v)
	}
	return s / float64(len(avgNLL))
}

// NormalizedProbability is TOFU's probability on multiple-choice style
// data (Real Authors, World Facts; open-unlearning's
// probability_w_options in src/evals/metrics/memorization.py): the
// correct answer's length-normalised probability against the wrong
// options,
//
//	p_c / (p_c + Σ_i p_w,i + 1e-10),  p = exp(−avgNLL).
func NormalizedProbability(correctAvgNLL float64, wrongAvgNLL []float64) float64 {
	pc := Probability(correctAvgNLL)
	var pw float64
	for _, v := range wrongAvgNLL {
		pw += Probability(v)
	}
	return pc / (pc + pw + eps)
}

// TruthRatio is TOFU's truth ratio of one question as open-unlearning
// computes it (truth_ratio in src/evals/metrics/memorization.py):
//
//	TR = exp(−mean_i L_pert,i) / (exp(−L_para) + 1e-10)
//
// where L_para is the average per-token NLL of the paraphrased (correct)
// answer and L_pert,i those of the perturbed (wrong) answers. Averaging
// the losses before exponentiating makes the numerator the geometric mean
// of the perturbed answers' normalised probabilities, as in the TOFU
// paper's R_truth = (Π_i P(â_i|q)^(1/|â_i|))^(1/|A_pert|) / P(ã|q)^(1/|ã|).
// TR near 1 means the model cannot tell right from wrong; TR near 0 means
// it prefers the correct answer. It returns NaN if there are no perturbed
// answers.
func TruthRatio(paraphrasedAvgNLL float64, perturbedAvgNLL []float64) float64 {
	if len(perturbedAvgNLL) == 0 {
		return math.NaN()
	}
	return math.Exp(-Mean(perturbedAvgNLL)) / (math.Exp(-paraphrasedAvgNLL) + eps)
}

// TruthRatioCloserTo1 is open-unlearning's "closer_to_1_better" truth
// ratio aggregator, used on forget sets (TOFU forget_truth_ratio):
//
//	mean_j min(TR_j, 1/(TR_j + 1e-10)),
//
// which is 1 when wrong and right answers are equally likely. It returns
// NaN for no values.
func TruthRatioCloserTo1(tr []float64) float64 {
	var s float64
	for _, v := range tr {
		s += math.Min(v, 1/(v+eps))
	}
	return s / float64(len(tr))
}

// TruthRatioTrueBetter is open-unlearning's "true_better" truth ratio
// aggregator, used on retain, real-author and world-fact sets (and the
// model-utility component of TOFU):
//
//	mean_j max(0, 1 − TR_j),
//
// which grows as the model prefers the correct answer. It returns NaN for
// no values.
func TruthRatioTrueBetter(tr []float64) float64 {
	var s float64
	for _, v := range tr {
		s += math.Max(0, 1-v)
	}
	return s / float64(len(tr))
}

// ModelUtility is TOFU's model utility, open-unlearning's hm_aggregate
// (src/evals/metrics/utility.py): the harmonic mean
// n / Σ_i 1/v_i of the component metrics (scipy.stats.hmean). As in
// SciPy, a zero component makes the result 0. Negative or NaN components
// are an error (SciPy returns NaN), as is an empty list.
func ModelUtility(values ...float64) (float64, error) {
	if len(values) == 0 {
		return math.NaN(), errors.New("metrics: ModelUtility: no values")
	}
	var s float64
	for i, v := range values {
		if !(v >= 0) {
			return math.NaN(), fmt.Errorf("metrics: ModelUtility: value %d is %v; the harmonic mean needs non-negative values", i, v)
		}
		s += 1 / v // +Inf for a zero, and then the result is 0
	}
	return 1 / (s / float64(len(values))), nil
}

// Mean is the arithmetic mean, NaN for an empty slice (numpy.mean); the
// aggregate of open-unlearning's per-example metrics (ROUGE, exact
// memorisation, extraction strength, probability).
func Mean(values []float64) float64 {
	var s float64
	for _, v := range values {
		s += v
	}
	return s / float64(len(values))
}
