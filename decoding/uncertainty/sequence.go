package uncertainty

import (
	"errors"
	"fmt"
	"math"
)

// SequenceScores aggregates the [TokenScores] of the T tokens of one
// generated answer: the arithmetic mean and the maximum over positions of
// each token score,
//
//	MeanX = (1/T) Σ_t X_t,   MaxX = max_t X_t,
//
// the usual token-to-sequence reductions for entropy-based hallucination
// detection (mean: length-normalised total; max: the single least certain
// token, as in Manakul et al. 2023's Max(H) and Malinin & Gales 2021's
// token-level measures).
type SequenceScores struct {
	Tokens                                      int
	MeanPredictiveEntropy, MaxPredictiveEntropy float64
	MeanExpectedEntropy, MaxExpectedEntropy     float64
	MeanMutualInformation, MaxMutualInformation float64
}

// Sequence reduces per-token scores to [SequenceScores]. It needs at
// least one token.
func Sequence(tokens []TokenScores) (SequenceScores, error) {
	if len(tokens) == 0 {
		nan := math.NaN()
		return SequenceScores{0, nan, nan, nan, nan, nan, nan}, errors.New("uncertainty: Sequence: no tokens")
	}
	s := SequenceScores{
		Tokens:               len(tokens),
		MaxPredictiveEntropy: math.Inf(-1),
		MaxExpectedEntropy:   math.Inf(-1),
		MaxMutualInformation: math.Inf(-1),
	}
	for _, t := range tokens {
		s.MeanPredictiveEntropy += t.PredictiveEntropy
		s.MeanExpectedEntropy += t.ExpectedEntropy
		s.MeanMutualInformation += t.MutualInformation
		s.MaxPredictiveEntropy = max(s.MaxPredictiveEntropy, t.PredictiveEntropy)
		s.MaxExpectedEntropy = max(s.MaxExpectedEntropy, t.ExpectedEntropy)
		s.MaxMutualInformation = max(s.MaxMutualInformation, t.MutualInformation)
	}
	n := float64(len(tokens))
	s.MeanPredictiveEntropy /= n
	s.MeanExpectedEntropy /= n
	s.MeanMutualInformation /= n
	return s, nil
}

// LengthNormalizedLogProb is the length-normalised log-probability of one
// answer of T tokens scored by K passes, averaged over the passes:
//
//	(1/K) Σ_k (1/T) Σ_t log p_k(y_t | y_<t, x),
//
// where passes[k][t] = log p_k(y_t | y_<t, x). Its negative is the
// per-pass average token NLL (the "length-normalised likelihood" baseline
// of Malinin & Gales 2021 and of Kuhn et al. 2023); higher means more
// confident. Every pass must score the same T ≥ 1 tokens; −Inf entries
// give −Inf.
func LengthNormalizedLogProb(passes [][]float64) (float64, error) {
	if len(passes) == 0 {
		return math.NaN(), errors.New("uncertainty: LengthNormalizedLogProb: no passes")
	}
	T := len(passes[0])
	if T == 0 {
		return math.NaN(), errors.New("uncertainty: LengthNormalizedLogProb: no tokens")
	}
	var s float64
	for k, p := range passes {
		if len(p) != T {
			return math.NaN(), fmt.Errorf("uncertainty: LengthNormalizedLogProb: pass %d has %d tokens, want %d", k, len(p), T)
		}
		var sk float64
		for t, l := range p {
			if math.IsNaN(l) || l > 0 {
				return math.NaN(), fmt.Errorf("uncertainty: LengthNormalizedLogProb: pass %d token %d has log-probability %v", k, t, l)
			}
			sk += l
		}
		s += sk / float64(T)
	}
	return s / float64(len(passes)), nil
}

// SequenceEntropy is the Monte Carlo estimate of the sequence-level
// predictive entropy from S answers y^(s) sampled from the model (Malinin
// & Gales 2021, "Uncertainty Estimation in Autoregressive Structured
// Prediction"):
//
//	Ĥ = −(1/S) Σ_s log P(y^(s) | x),
//
// with answerLogProbs[s] = log P(y^(s) | x), the sum of the answer's token
// log-probabilities. It is unbiased only for answers drawn by ancestral
// sampling at temperature 1; with an ensemble (MC dropout) P is the
// ensemble's predictive distribution.
func SequenceEntropy(answerLogProbs []float64) (float64, error) {
	if len(answerLogProbs) == 0 {
		return math.NaN(), errors.New("uncertainty: SequenceEntropy: no answers")
	}
	var s float64
	for i, l := range answerLogProbs {
		if math.IsNaN(l) || l > 0 {
			return math.NaN(), fmt.Errorf("uncertainty: SequenceEntropy: answer %d has log-probability %v", i, l)
		}
		s += l
	}
	return -s / float64(len(answerLogProbs)), nil
}

// LengthNormalizedSequenceEntropy is the length-normalised variant of
// [SequenceEntropy] (Malinin & Gales 2021; the per-token rate, which
// compares answers of different lengths):
//
//	Ĥ_len = −(1/S) Σ_s (1/L_s) log P(y^(s) | x),
//
// with lengths[s] = L_s ≥ 1 the number of tokens of answer s.
func LengthNormalizedSequenceEntropy(answerLogProbs []float64, lengths []int) (float64, error) {
	if len(answerLogProbs) == 0 {
		return math.NaN(), errors.New("uncertainty: LengthNormalizedSequenceEntropy: no answers")
	}
	if len(lengths) != len(answerLogProbs) {
		return math.NaN(), fmt.Errorf("uncertainty: LengthNormalizedSequenceEntropy: %d lengths for %d answers", len(lengths), len(answerLogProbs))
	}
	var s float64
	for i, l := range answerLogProbs {
		if math.IsNaN(l) || l > 0 {
			return math.NaN(), fmt.Errorf("uncertainty: LengthNormalizedSequenceEntropy: answer %d has log-probability %v", i, l)
		}
		if lengths[i] < 1 {
			return math.NaN(), fmt.Errorf("uncertainty: LengthNormalizedSequenceEntropy: answer %d has length %d", i, lengths[i])
		}
		s += l / float64(lengths[i])
	}
	return -s / float64(len(answerLogProbs)), nil
}
