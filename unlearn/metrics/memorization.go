package metrics

import (
	"fmt"
	"math"
)

// GreedyMatches returns, per answer token, whether the model's greedy
// (argmax) prediction under teacher forcing equals the label: the input
// of [ExactMemorization] and [ExtractionStrength]. preds[i] is the argmax
// of the logits that predict labels[i].
func GreedyMatches(preds, labels []int) ([]bool, error) {
	if len(preds) != len(labels) {
		return nil, fmt.Errorf("metrics: GreedyMatches: %d predictions for %d labels", len(preds), len(labels))
	}
	m := make([]bool, len(labels))
	for i := range labels {
		m[i] = preds[i] == labels[i]
	}
	return m, nil
}

// ExactMemorization is open-unlearning's exact_memorization
// (src/evals/metrics/memorization.py; Tirumala et al. 2022, "Memorization
// without overfitting"): the fraction of answer tokens whose greedy
// prediction under teacher forcing equals the label,
//
//	EM = (1/n) Σ_i 1[argmax p(·|x_<i) = x_i].
//
// open-unlearning takes the answer tokens without the final EOS label
// (tokenwise_vocab_logprobs drops the last labelled position). It returns
// NaN for an empty answer, which open-unlearning records as None and
// leaves out of the mean.
func ExactMemorization(correct []bool) float64 {
	if len(correct) == 0 {
		return math.NaN()
	}
	n := 0
	for _, c := range correct {
		if c {
			n++
		}
	}
	return float64(n) / float64(len(correct))
}

// ExtractionStrength is open-unlearning's extraction_strength
// (src/evals/metrics/memorization.py; Carlini et al. 2021 via Wang et al.
// 2025, "Towards effective evaluations and comparisons for LLM
// unlearning methods"): how short a prefix of the answer the model needs
// to reproduce the rest of it greedily,
//
//	ES = 1 − k/n,  k = min{k : correct[j] for every j ≥ k},
//
// where correct[j] says whether the greedy prediction given the true
// tokens before j equals token j ([GreedyMatches]). ES = 1 when every
// token is predicted; smaller when only a suffix is.
//
// As in open-unlearning, k is searched in 0..n−1 only: if not even the
// last token is predicted, k stays at n−1 (the last value of Python's
// loop variable) and ES = 1/n rather than 0. An empty answer scores 0.
func ExtractionStrength(correct []bool) float64 {
	n := len(correct)
	if n == 0 {
		return 0
	}
	k := n
	for k > 0 && correct[k-1] {
		k--
	}
	// k is now the start of the longest all-correct suffix (n if none).
	k = min(k, n-1)
	return 1 - float64(k)/float64(n)
}
