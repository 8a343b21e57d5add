package metrics

import (
	"errors"
	"fmt"
	"math"
)

// Predictive multiplicity measures how much equally good models disagree
// on individual examples. Predictions are integers per example: a class,
// a predicted token id, or 0/1 for an answer judged wrong/right.

// Ambiguity is the fraction of examples on which at least one
// alternative model predicts differently from the reference model (Marx,
// Calmon & Ustun 2020, "Predictive Multiplicity in Classification",
// Definition 3):
//
//	α = (1/n) Σ_i max_k 1[h_k(x_i) ≠ h_0(x_i)].
//
// Every alternative must have one prediction per reference example.
func Ambiguity(ref []int, alts [][]int) (float64, error) {
	if err := checkAlternatives("Ambiguity", len(ref), alts); err != nil {
		return math.NaN(), err
	}
	n := 0
	for i, r := range ref {
		for _, a := range alts {
			if a[i] != r {
				n++
				break
			}
		}
	}
	return float64(n) / float64(len(ref)), nil
}

// Discrepancy is the largest fraction of examples on which a single
// alternative model differs from the reference (Marx, Calmon & Ustun
// 2020, Definition 4):
//
//	δ = max_k (1/n) Σ_i 1[h_k(x_i) ≠ h_0(x_i)].
func Discrepancy(ref []int, alts [][]int) (float64, error) {
	if err := checkAlternatives("Discrepancy", len(ref), alts); err != nil {
		return math.NaN(), err
	}
	best := 0
	for _, a := range alts {
		d := 0
		for i, r := range ref {
			if a[i] != r {
				d++
			}
		}
		best = max(best, d)
	}
	return float64(best) / float64(len(ref)), nil
}

// Disagreement is the fraction of examples on which the models of a
// Rashomon set are not unanimous (the "disagreement" of Black, Raghavan &
// Barocas 2022 and of the dropout Rashomon-set exploration of Hsu et al.
// 2024, with no reference model):
//
//	(1/n) Σ_i 1[∃ j, k: h_j(x_i) ≠ h_k(x_i)].
//
// It needs at least one model; all models must have the same number of
// predictions.
func Disagreement(models [][]int) (float64, error) {
	if len(models) == 0 {
		return math.NaN(), errors.New("metrics: Disagreement: no models")
	}
	n := len(models[0])
	if err := checkAlternatives("Disagreement", n, models); err != nil {
		return math.NaN(), err
	}
	d := 0
	for i := range n {
		for _, m := range models[1:] {
			if m[i] != models[0][i] {
				d++
				break
			}
		}
	}
	return float64(d) / float64(n), nil
}

func checkAlternatives(fn string, n int, alts [][]int) error {
	if n == 0 {
		return fmt.Errorf("metrics: %s: no examples", fn)
	}
	if len(alts) == 0 {
		return fmt.Errorf("metrics: %s: no alternative models", fn)
	}
	for k, a := range alts {
		if len(a) != n {
			return fmt.Errorf("metrics: %s: model %d has %d predictions, want %d", fn, k, len(a), n)
		}
	}
	return nil
}

// RashomonCapacity is the Rashomon Capacity of one example (Hsu & Calmon
// 2022, "Rashomon Capacity: A Metric for Predictive Multiplicity in
// Classification"): given the output distributions probs[k][c] of K
// models over C classes, it is 2 to the channel capacity (in bits) of the
// channel from a model index to its predicted class,
//
//	RC = 2^C,  C = sup_π I(K; Y) = sup_π Σ_k π_k D(p_k ‖ Σ_j π_j p_j),
//
// a number between 1 (all models agree) and min(K, C) (the models put
// their mass on disjoint classes). The capacity is found by the
// Blahut–Arimoto iteration until its upper and lower bounds are within
// 1e-12 nats (or 100000 iterations). Each row must be a probability
// vector of the same length.
func RashomonCapacity(probs [][]float64) (float64, error) {
	if len(probs) == 0 {
		return math.NaN(), errors.New("metrics: RashomonCapacity: no models")
	}
	nc := len(probs[0])
	for k, p := range probs {
		if len(p) != nc || nc == 0 {
			return math.NaN(), fmt.Errorf("metrics: RashomonCapacity: model %d has %d classes, want %d > 0", k, len(p), nc)
		}
		var s float64
		for _, v := range p {
			if !(v >= 0) {
				return math.NaN(), fmt.Errorf("metrics: RashomonCapacity: model %d has probability %v", k, v)
			}
			s += v
		}
		if math.Abs(s-1) > 1e-6 {
			return math.NaN(), fmt.Errorf("metrics: RashomonCapacity: model %d sums to %v, not 1", k, s)
		}
	}
	K := len(probs)
	pi := make([]float64, K)
	for k := range pi {
		pi[k] = 1 / float64(K)
	}
	q := make([]float64, nc)
	d := make([]float64, K)
	lower := 0.0
	for range 100000 {
		clear(q)
		for k, p := range probs {
			for c, v := range p {
				q[c] += pi[k] * v
			}
		}
		upper := math.Inf(-1)
		for k, p := range probs {
			d[k] = 0
			for c, v := range p {
				if v > 0 {
					d[k] += v * math.Log(v/q[c])
				}
			}
			upper = max(upper, d[k])
		}
		var z float64
		for k := range pi {
			pi[k] *= math.Exp(d[k])
			z += pi[k]
		}
		for k := range pi {
			pi[k] /= z
		}
		lower = math.Log(z) // Σ π_k e^{D_k} with the previous π
		if upper-lower < 1e-12 {
			break
		}
	}
	return math.Exp(lower), nil // 2^(bits) = e^(nats)
}
