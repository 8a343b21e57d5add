package metrics

import (
	"fmt"
	"math"
	"slices"
)

// Membership inference scores follow open-unlearning's attacks
// (src/evals/metrics/mia/): each returns a per-example score where HIGHER
// means "looks LESS like a training member" (a loss-like quantity). The
// AUC of such scores is taken by [MIAAUC] with the forget set as one class
// and the holdout set as the other, in open-unlearning's orientation.

// LossScore is the LOSS attack's score (Yeom et al. 2018;
// open-unlearning's LOSSAttack): the answer's average token negative
// log-likelihood, −(1/n) Σ_i log p(x_i|x_<i). open-unlearning takes it
// from evaluate_probability, i.e. over every label token including the
// final EOS. It returns NaN for no tokens.
func LossScore(tokenLogProbs []float64) float64 {
	return -Mean(tokenLogProbs)
}

// ZlibScore is the zlib attack's score (Carlini et al. 2021, "Extracting
// Training Data from Large Language Models"; open-unlearning's
// ZLIBAttack): the average token NLL divided by the zlib-compressed
// length of the text in bytes,
//
//	avgNLL / len(zlib.compress(text.encode("utf-8"))),
//
// where text is the decoded answer (labels without special tokens) and
// zlib.compress uses level 6 (see [ZlibLen]).
func ZlibScore(avgNLL float64, text string) float64 {
	return avgNLL / float64(ZlibLen(text))
}

// MinK is the Min-K% Prob attack's score (Shi et al. 2024, "Detecting
// Pretraining Data from Large Language Models"; open-unlearning's
// MinKProbAttack): minus the mean of the lowest max(1, ⌊n·k⌋) token
// log-probabilities,
//
//	−(1/K) Σ_{i ∈ lowest K} log p(x_i|x_<i),  K = max(1, ⌊n·k⌋).
//
// open-unlearning's TOFU configuration (configs/eval/tofu_metrics/
// mia_min_k.yaml and mia_min_k_plus_plus.yaml) uses k = 0.4 (the attack
// class defaults to 0.2), with token log-probs from tokenwise_logprobs,
// i.e. without the final EOS. An empty sequence scores 0, as there.
func MinK(tokenLogProbs []float64, k float64) float64 {
	if len(tokenLogProbs) == 0 {
		return 0
	}
	return -lowestMean(slices.Clone(tokenLogProbs), k)
}

// lowestMean sorts v in place and returns the mean of its lowest
// max(1, ⌊len·k⌋) values (all of them if that exceeds the length).
func lowestMean(v []float64, k float64) float64 {
	slices.Sort(v)
	num := min(max(1, int(float64(len(v))*k)), len(v))
	return Mean(v[:num])
}

// MinKPlusPlus is the Min-K%++ attack's score (Zhang et al. 2025,
// "Min-K%++: Improved Baseline for Detecting Pre-Training Data from Large
// Language Models"; open-unlearning's MinKPlusPlusAttack). Each token's
// log-probability is standardised by the moments of the model's own
// next-token distribution at that position,
//
//	z_i = (log p(x_i|x_<i) − μ_i) / √max(σ²_i, 1e-6),
//	μ_i = E_{z∼p(·|x_<i)} log p(z|x_<i),  σ²_i = Var_{z∼p(·|x_<i)} log p(z|x_<i),
//
// ([VocabMoments] computes μ and σ² from a row of log-softmax values) and
// the score is minus the mean of the lowest max(1, ⌊n·k⌋) of the z_i. The
// three slices are per token and must have the same length. An empty
// sequence scores 0, as in open-unlearning.
func MinKPlusPlus(tokenLogProbs, mu, variance []float64, k float64) (float64, error) {
	n := len(tokenLogProbs)
	if len(mu) != n || len(variance) != n {
		return math.NaN(), fmt.Errorf("metrics: MinKPlusPlus: %d log-probs, %d means, %d variances", n, len(mu), len(variance))
	}
	if n == 0 {
		return 0, nil
	}
	z := make([]float64, n)
	for i := range z {
		z[i] = (tokenLogProbs[i] - mu[i]) / math.Sqrt(math.Max(variance[i], 1e-6))
	}
	return -lowestMean(z, k), nil
}

// VocabMoments returns the mean and variance of log p(z) under z ∼ p for
// one next-token distribution given as log-probabilities (a row of
// log_softmax over the vocabulary):
//
//	μ = Σ_z p(z) log p(z),  σ² = Σ_z p(z) (log p(z))² − μ²,
//
// as open-unlearning's MinKPlusPlusAttack computes them (so σ² is not
// clamped here; [MinKPlusPlus] clamps it at 1e-6). Entries of −Inf
// (probability 0) contribute nothing.
func VocabMoments(logProbs []float64) (mu, variance float64) {
	var m2 float64
	for _, l := range logProbs {
		if math.IsInf(l, -1) {
			continue
		}
		p := math.Exp(l)
		mu += p * l
		m2 += p * l * l
	}
	return mu, m2 - mu*mu
}

// AUC is the area under the ROC curve of a score that is meant to be
// higher for positives than for negatives: the Mann–Whitney statistic
//
//	AUC = (#{(p, n): p > n} + ½·#{(p, n): p = n}) / (|P|·|N|),
//
// which equals sklearn.metrics.roc_auc_score with positives labelled 1
// (ties count one half). 0.5 means the score does not separate the
// classes. It returns NaN if either class is empty or a score is NaN.
func AUC(positives, negatives []float64) float64 {
	if len(positives) == 0 || len(negatives) == 0 ||
		slices.ContainsFunc(positives, math.IsNaN) || slices.ContainsFunc(negatives, math.IsNaN) {
		return math.NaN()
	}
	neg := slices.Clone(negatives)
	slices.Sort(neg)
	var below, ties float64 // exact integers up to 2^53
	for _, p := range positives {
		lo, _ := slices.BinarySearch(neg, p)
		hi := lo
		for hi < len(neg) && neg[hi] == p {
			hi++
		}
		below += float64(lo)
		ties += float64(hi - lo)
	}
	return (below + ties/2) / (float64(len(positives)) * float64(len(negatives)))
}

// MIAAUC is open-unlearning's membership-inference AUC (mia_auc in
// src/evals/metrics/mia/utils.py): roc_auc_score with the forget set
// labelled 0 and the holdout set labelled 1, on attack scores that are
// higher for non-members ([LossScore], [ZlibScore], [MinK],
// [MinKPlusPlus]). It is AUC(holdout, forget): the probability that a
// holdout example scores above a forget example.
//
// An AUC near 1 means the forget set is still recognisably "seen" (lower
// loss than unseen data); 0.5 means forget and holdout look alike, as for
// a model never trained on the forget set; MUSE reports 1 minus this
// value.
func MIAAUC(forget, holdout []float64) float64 {
	return AUC(holdout, forget)
}

// PrivLeak is MUSE's privacy leakage (Shi et al. 2024, "MUSE: Machine
// Unlearning Six-Way Evaluation for Language Models"): the relative gap,
// in percent, between the membership-inference AUC of the unlearned model
// and that of the model retrained without the forget set,
//
//	PrivLeak = (AUC_unlearn − AUC_retrain) / AUC_retrain · 100,
//
// with MUSE's AUC, which is 1 − [MIAAUC]. Taking open-unlearning's AUCs
// as arguments, it computes what open-unlearning's privleak
// (src/evals/metrics/privacy.py) does:
//
//	((1−a_u) − (1−a_r)) / ((1−a_r) + 1e-10) · 100.
//
// 0 is ideal; negative values mean under-unlearning (the forget set is
// more recognisable than for the retrained model), positive values
// over-unlearning. open-unlearning uses a_r = 0.5 when no retrain logs are
// given.
func PrivLeak(aucUnlearned, aucRetrain float64) float64 {
	score, ref := 1-aucUnlearned, 1-aucRetrain
	return (score - ref) / (ref + eps) * 100
}

// RelDiff is open-unlearning's rel_diff (src/evals/metrics/privacy.py):
// (score − ref) / (ref + 1e-10) · 100, the relative difference in percent
// of a statistic of the unlearned model from that of the retain model.
func RelDiff(score, ref float64) float64 {
	return (score - ref) / (ref + eps) * 100
}
