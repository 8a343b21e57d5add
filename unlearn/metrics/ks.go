package metrics

import (
	"errors"
	"fmt"
	"math"
	"slices"
)

// Methods of [KS2Samp], named as scipy.stats.ks_2samp names them.
const (
	// KSAuto uses KSExact when both samples have at most 10000 values and
	// KSAsymp otherwise.
	KSAuto = "auto"
	// KSExact computes the exact null distribution of the two-sample
	// statistic by counting lattice paths (Hodges 1958).
	KSExact = "exact"
	// KSAsymp uses the one-sample Kolmogorov distribution of D_en with
	// en = round(n1·n2/(n1+n2)) (scipy's kstwo).
	KSAsymp = "asymp"
)

// ksMaxAutoN is scipy's MAX_AUTO_N: "auto" is exact when max(n1, n2) is at
// most this.
const ksMaxAutoN = 10000

// KS2Samp is the two-sided two-sample Kolmogorov–Smirnov test, a port of
// scipy.stats.ks_2samp(a, b, alternative="two-sided", method=method) as
// of SciPy 1.18.
//
// The statistic is D = sup_x |F_a(x) − F_b(x)| over the empirical CDFs,
// evaluated at every pooled observation (ties included on both sides, as
// numpy.searchsorted(side="right") does); F takes the values k·(1/n),
// exactly as numpy.linspace(0, 1, n+1) produces them, so that D is
// bit-identical to SciPy's.
//
// The p-value P(D ≥ d) under the null hypothesis depends on method:
//
//   - [KSExact]: with h = round(d·lcm(n1, n2)), the proportion of
//     monotone lattice paths from (0, 0) to (n1, n2) that touch the lines
//     |x/n1 − y/n2| = h/lcm. For n1 = n2 = n it is SciPy's alternating
//     series 2·Σ_k (−1)^(k+1) C(2n, n−kh)/C(2n, n) in Horner form;
//     otherwise Viehmann's (2021) recursion for 1 − p inside Hodges'
//     (1958) "inside method". If the result is not a probability the
//     test falls back to [KSAsymp], as SciPy does; if lcm(n1, n2) does
//     not fit an int32, "exact" is asymp from the start.
//   - [KSAsymp]: kstwo.sf(d, round(en)) with en = n1·n2/(n1+n2): the
//     survival function of the one-sample two-sided statistic D_n
//     (Simard & L'Ecuyer 2011: Durbin's matrix, Pomeranz's recursion,
//     the Pelz–Good expansion or the exact one-sided Smirnov tail,
//     depending on n and d).
//   - [KSAuto] (or ""): exact if max(n1, n2) ≤ 10000, else asymp.
//
// The p-value is clipped to [0, 1]. Samples must be non-empty and
// NaN-free. The samples are not modified.
func KS2Samp(a, b []float64, method string) (stat, p float64, err error) {
	switch method {
	case "", KSAuto, KSExact, KSAsymp:
	default:
		return math.NaN(), math.NaN(), fmt.Errorf("metrics: KS2Samp: unknown method %q (want %q, %q or %q)", method, KSAuto, KSExact, KSAsymp)
	}
	n1, n2 := len(a), len(b)
	if n1 == 0 || n2 == 0 {
		return math.NaN(), math.NaN(), fmt.Errorf("metrics: KS2Samp: empty sample (sizes %d and %d)", n1, n2)
	}
	if slices.ContainsFunc(a, math.IsNaN) || slices.ContainsFunc(b, math.IsNaN) {
		return math.NaN(), math.NaN(), errors.New("metrics: KS2Samp: sample contains NaN")
	}
	d := ksStatistic(a, b)
	p, err = ksPValue(d, n1, n2, method)
	if err != nil {
		return d, p, fmt.Errorf("metrics: KS2Samp: %w", err)
	}
	return d, p, nil
}

// ksStatistic returns the two-sided statistic max(D+, D−) of sorted copies
// of a and b, with the ECDF values SciPy uses.
func ksStatistic(a, b []float64) float64 {
	x, y := slices.Clone(a), slices.Clone(b)
	slices.Sort(x)
	slices.Sort(y)
	n1, n2 := len(x), len(y)
	step1, step2 := 1/float64(n1), 1/float64(n2)
	cdf := func(k, n int, step float64) float64 {
		if k == n {
			return 1 // linspace sets the last value to stop exactly
		}
		return float64(k) * step
	}
	maxS, minS := math.Inf(-1), math.Inf(1)
	i, j := 0, 0
	for i < n1 || j < n2 {
		// The next pooled value; both ECDFs jump past all its copies.
		var v float64
		switch {
		case j == n2 || (i < n1 && x[i] <= y[j]):
			v = x[i]
		default:
			v = y[j]
		}
		for i < n1 && x[i] <= v {
			i++
		}
		for j < n2 && y[j] <= v {
			j++
		}
		diff := cdf(i, n1, step1) - cdf(j, n2, step2)
		maxS = max(maxS, diff)
		minS = min(minS, diff)
	}
	minS = math.Min(math.Max(-minS, 0), 1)
	if minS > maxS {
		return minS
	}
	return maxS
}

// ksPValue is scipy's _ks_2samp_prob for the two-sided alternative.
func ksPValue(d float64, n1, n2 int, method string) (float64, error) {
	g := gcd(n1, n2)
	n1g, n2g := n1/g, n2/g
	mode := method
	switch mode {
	case "", KSAuto:
		mode = KSAsymp
		if max(n1, n2) <= ksMaxAutoN {
			mode = KSExact
		}
	case KSExact:
		if float64(n1g) >= float64(math.MaxInt32)/float64(n2g) {
			mode = KSAsymp
		}
	}
	if mode == KSExact {
		ok, dr, p := ksExact(n1, n2, g, d)
		if ok {
			return clip01(p), nil
		}
		d = dr // SciPy goes on with the rounded statistic.
	}
	hi, lo := float64(max(n1, n2)), float64(min(n1, n2))
	en := math.RoundToEven(hi * lo / (hi + lo))
	if en < 1 {
		return math.NaN(), fmt.Errorf("asymptotic p-value undefined for sizes %d and %d (round(n1·n2/(n1+n2)) = 0)", n1, n2)
	}
	return clip01(kstwoSF(d, int(en))), nil
}

// ksExact is scipy's _attempt_exact_2kssamp for the two-sided
// alternative: it reports whether the exact computation gave a
// probability, the statistic rounded to a multiple of 1/lcm(n1, n2), and
// the p-value.
func ksExact(n1, n2, g int, d float64) (ok bool, dr, p float64) {
	lcm := (n1 / g) * n2
	h := int(math.RoundToEven(d * float64(lcm)))
	dr = float64(h) / float64(lcm)
	if h == 0 {
		return true, dr, 1
	}
	if n1 == n2 {
		p = probOutsideSquare(n1, h)
	} else {
		p = outerProbInside(n1, n2, g, h)
	}
	if !(p >= 0 && p <= 1) {
		return false, dr, p
	}
	return true, dr, p
}

// probOutsideSquare is P(D_{n,n} ≥ h/n) = 2·Σ_{k≥1} (−1)^(k+1)
// C(2n, n−kh)/C(2n, n), evaluated as SciPy's
// _compute_prob_outside_square does: each ratio of binomials is a product
// of h factors, nested Horner-fashion to avoid cancellation.
func probOutsideSquare(n, h int) float64 {
	var P float64
	for k := n / h; k >= 0; k-- {
		p1 := 1.0
		for j := range h {
			p1 = float64(n-k*h-j) * p1 / float64(n+k*h+j+1)
		}
		P = p1 * (1 - P)
	}
	return 2 * P
}

// outerProbInside is SciPy's _compute_outer_prob_inside_method: the
// proportion of lattice paths from (0, 0) to (m, n) that leave the band
// |x/m − y/n| < h/lcm(m, n). Column by column, A(x, y) is the probability
// that a uniformly random path to (x, y) has left the band,
// A(x, y) = (x·A(x−1, y) + y·A(x, y−1))/(x+y), with A = 1 outside the band
// (Viehmann 2021, arXiv:2102.08037), which stays in [0, 1] and needs no
// rescaling.
func outerProbInside(m, n, g, h int) float64 {
	if m < n {
		m, n = n, m
	}
	mg, ng := m/g, n/g
	minj, maxj := 0, min(ceilDiv(h, mg), n+1)
	curlen := maxj - minj
	lenA := min(2*maxj+2, n+1)
	A := make([]float64, lenA)
	for i := range A {
		A[i] = 1
	}
	for i := minj; i < maxj && i < lenA; i++ {
		A[i] = 0
	}
	for i := 1; i <= m; i++ {
		lastminj, lastlen := minj, curlen
		minj = min(max(floorDiv(ng*i-h, mg)+1, 0), n)
		maxj = min(ceilDiv(ng*i+h, mg), n+1)
		if maxj <= minj {
			return 1
		}
		val := 1.0
		if minj == 0 {
			val = 0
		}
		for jj := range maxj - minj {
			j := jj + minj
			val = (A[jj+minj-lastminj]*float64(i) + val*float64(j)) / float64(i+j)
			A[jj] = val
		}
		curlen = maxj - minj
		if lastlen > curlen {
			for k := maxj - minj; k < maxj-minj+(lastlen-curlen) && k < lenA; k++ {
				A[k] = 1
			}
		}
	}
	return A[maxj-minj-1]
}

// ForgetQuality is TOFU's forget quality (Maini et al. 2024, "TOFU: A
// Task of Fictitious Unlearning for LLMs"): the p-value of the two-sided
// two-sample KS test ([KS2Samp], method "auto") between the forget-set
// truth ratios of the unlearned model and those of the model trained on
// the retain set only. open-unlearning computes it in
// src/evals/metrics/privacy.py (ks_test, formerly get_forget_quality in
// utils.py) as scipy.stats.ks_2samp(forget_tr, retain_tr).pvalue. Per
// example truth ratios come from [TruthRatio].
//
// High values (up to 1) mean the two distributions are indistinguishable;
// TOFU reports log10 of it.
func ForgetQuality(unlearnedTR, retainTR []float64) (float64, error) {
	_, p, err := KS2Samp(unlearnedTR, retainTR, KSAuto)
	if err != nil {
		return math.NaN(), fmt.Errorf("metrics: ForgetQuality: %w", err)
	}
	return p, nil
}

func gcd(a, b int) int {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}

// floorDiv and ceilDiv are ⌊a/b⌋ and ⌈a/b⌉ for b > 0 and any sign of a.
func floorDiv(a, b int) int {
	q := a / b
	if a%b != 0 && a < 0 {
		q--
	}
	return q
}

func ceilDiv(a, b int) int {
	q := a / b
	if a%b != 0 && a > 0 {
		q++
	}
	return q
}

func clip01(p float64) float64 {
	if math.IsNaN(p) {
		return p
	}
	return math.Min(math.Max(p, 0), 1)
}
