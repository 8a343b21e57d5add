package uncertainty

import (
	"errors"
	"fmt"
	"math"
)

// TokenScores is the uncertainty of one token position over K stochastic
// passes (MC dropout, Gal & Ghahramani 2016, "Dropout as a Bayesian
// Approximation"), in nats, with the usual decomposition of the total
// uncertainty (Houlsby et al. 2011, BALD; Depeweg et al. 2018; Malinin &
// Gales 2021 for language models):
//
//	PredictiveEntropy = H[p̄],  p̄ = (1/K) Σ_k p_k              (total)
//	ExpectedEntropy   = (1/K) Σ_k H[p_k]                        (aleatoric)
//	MutualInformation = H[p̄] − (1/K) Σ_k H[p_k]
//	                  = (1/K) Σ_k KL(p_k ‖ p̄)  ≥ 0              (epistemic)
type TokenScores struct {
	PredictiveEntropy float64
	ExpectedEntropy   float64
	MutualInformation float64
}

// Token computes [TokenScores] from K rows of log-probabilities over the
// same vocabulary of V entries, logprobs[k][v] = log p_k(v), one row per
// pass. Each row is first passed through a log-softmax, so unnormalised
// logits are accepted as well; −Inf entries are zero probabilities.
//
// The mean distribution is taken in log space relative to the largest
// pass at each entry,
//
//	log p̄_v = m_v + log((1/K) Σ_k exp(log p_k(v) − m_v)),  m_v = max_k log p_k(v),
//
// and the mutual information is computed as the mean KL divergence
// (1/K) Σ_k Σ_v p_k(v) (log p_k(v) − log p̄_v), which equals PE − EE but
// has no cancellation when both are large and nearly equal. With
// identical passes (MC dropout with rate 0) every exp above is exactly
// 1, so log p̄ = log p_k bit for bit: the mutual information is exactly 0
// and PredictiveEntropy == ExpectedEntropy. Rounding can make a
// mathematically non-negative mutual information come out a few ulp
// below 0; such values are clamped to 0.
//
// The rows must all have the same length V ≥ 1, no NaN or +Inf, and at
// least one finite entry each.
func Token(logprobs [][]float64) (TokenScores, error) {
	nan := TokenScores{math.NaN(), math.NaN(), math.NaN()}
	if len(logprobs) == 0 {
		return nan, errors.New("uncertainty: Token: no passes")
	}
	V := len(logprobs[0])
	if V == 0 {
		return nan, errors.New("uncertainty: Token: empty vocabulary")
	}
	K := len(logprobs)
	rows := make([][]float64, K)
	for k, row := range logprobs {
		if len(row) != V {
			return nan, fmt.Errorf("uncertainty: Token: pass %d has %d entries, want %d", k, len(row), V)
		}
		r, err := logSoftmax(row)
		if err != nil {
			return nan, fmt.Errorf("uncertainty: Token: pass %d: %w", k, err)
		}
		rows[k] = r
	}
	return tokenScores(rows), nil
}

// TokenFromProbs is [Token] for K rows of probabilities p_k(v) ≥ 0 over
// the same vocabulary. Each row is divided by its sum (which must be
// positive) before taking logarithms; zeros become −Inf log-probabilities.
func TokenFromProbs(probs [][]float64) (TokenScores, error) {
	nan := TokenScores{math.NaN(), math.NaN(), math.NaN()}
	if len(probs) == 0 {
		return nan, errors.New("uncertainty: TokenFromProbs: no passes")
	}
	V := len(probs[0])
	if V == 0 {
		return nan, errors.New("uncertainty: TokenFromProbs: empty vocabulary")
	}
	rows := make([][]float64, len(probs))
	for k, row := range probs {
		if len(row) != V {
			return nan, fmt.Errorf("uncertainty: TokenFromProbs: pass %d has %d entries, want %d", k, len(row), V)
		}
		var s float64
		for v, p := range row {
			if !(p >= 0) || math.IsInf(p, 1) {
				return nan, fmt.Errorf("uncertainty: TokenFromProbs: pass %d entry %d is %v", k, v, p)
			}
			s += p
		}
		if !(s > 0) {
			return nan, fmt.Errorf("uncertainty: TokenFromProbs: pass %d sums to %v", k, s)
		}
		logS := math.Log(s)
		r := make([]float64, V)
		for v, p := range row {
			r[v] = math.Log(p) - logS
		}
		rows[k] = r
	}
	return tokenScores(rows), nil
}

// logSoftmax returns row − logsumexp(row), checking for NaN and +Inf.
func logSoftmax(row []float64) ([]float64, error) {
	m := math.Inf(-1)
	for v, x := range row {
		if math.IsNaN(x) || math.IsInf(x, 1) {
			return nil, fmt.Errorf("entry %d is %v", v, x)
		}
		m = max(m, x)
	}
	if math.IsInf(m, -1) {
		return nil, errors.New("every entry is -Inf")
	}
	var s float64
	for _, x := range row {
		s += math.Exp(x - m)
	}
	lse := m + math.Log(s)
	out := make([]float64, len(row))
	for v, x := range row {
		out[v] = x - lse
	}
	return out, nil
}

// entropy is −Σ p log p of a row of log-probabilities (0 log 0 = 0).
func entropy(logp []float64) float64 {
	var h float64
	for _, l := range logp {
		if !math.IsInf(l, -1) {
			h -= math.Exp(l) * l
		}
	}
	return h
}

// tokenScores does the arithmetic of Token on normalised rows.
func tokenScores(rows [][]float64) TokenScores {
	K, V := len(rows), len(rows[0])
	mean := make([]float64, V) // log p̄
	for v := range V {
		m := math.Inf(-1)
		for _, r := range rows {
			m = max(m, r[v])
		}
		if math.IsInf(m, -1) {
			mean[v] = m
			continue
		}
		var s float64
		for _, r := range rows {
			s += math.Exp(r[v] - m)
		}
		mean[v] = m + math.Log(s/float64(K))
	}
	h0 := entropy(rows[0])
	var dh, mi float64
	for _, r := range rows {
		dh += entropy(r) - h0
		for v, l := range r {
			if !math.IsInf(l, -1) {
				mi += math.Exp(l) * (l - mean[v])
			}
		}
	}
	return TokenScores{
		PredictiveEntropy: entropy(mean),
		ExpectedEntropy:   h0 + dh/float64(K), // exact when all passes agree
		MutualInformation: max(mi/float64(K), 0),
	}
}
