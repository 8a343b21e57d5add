package uncertainty

import (
	"math"
	"strings"
)

// Agreement summarises how often K sampled answers to one prompt agree
// by exact match after [Normalize] (the lexical self-consistency signal
// of Wang et al. 2023's majority vote and of the "lexical similarity"
// baselines; answers that say the same thing in different words count as
// different — semantic equivalence classes, as in Kuhn et al. 2023's
// semantic entropy, need an entailment model and are out of scope here).
//
// With n_c answers in normalised class c (Σ_c n_c = K):
//
//	Rate          = Σ_c n_c(n_c−1)/2 / (K(K−1)/2)   (fraction of equal pairs;
//	                NaN when K < 2)
//	MajorityCount = max_c n_c,  MajorityFrac = MajorityCount / K
//	Distinct      = number of classes
//
// Majority is the first of the answers (in input order, as given, not
// normalised) of the largest class; among classes of equal size the one
// whose first answer comes first wins.
type Agreement struct {
	Rate          float64
	Majority      string
	MajorityCount int
	MajorityFrac  float64
	Distinct      int
}

// Normalize is the answer normalisation of [Agree]: Unicode lower case,
// leading and trailing white space removed, and every inner run of white
// space replaced by one ASCII space. Punctuation and articles are kept
// (SQuAD-style normalisation would also drop them).
func Normalize(s string) string {
	return strings.Join(strings.Fields(strings.ToLower(s)), " ")
}

// Agree computes the [Agreement] of answers. No answers give Rate NaN
// and zero counts.
func Agree(answers []string) Agreement {
	K := len(answers)
	if K == 0 {
		return Agreement{Rate: math.NaN(), MajorityFrac: math.NaN()}
	}
	count := map[string]int{}
	first := map[string]int{}
	var order []string
	for i, a := range answers {
		n := Normalize(a)
		if _, ok := count[n]; !ok {
			first[n] = i
			order = append(order, n)
		}
		count[n]++
	}
	var pairs int
	best := order[0]
	for _, n := range order {
		c := count[n]
		pairs += c * (c - 1) / 2
		if c > count[best] {
			best = n
		}
	}
	ag := Agreement{
		Rate:          math.NaN(),
		Majority:      answers[first[best]],
		MajorityCount: count[best],
		MajorityFrac:  float64(count[best]) / float64(K),
		Distinct:      len(order),
	}
	if K >= 2 {
		ag.Rate = float64(pairs) / float64(K*(K-1)/2)
	}
	return ag
}
