package metrics

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
)

// bootstrapStream is the second PCG seed word; the caller's seed is the
// first.
const bootstrapStream = 0x9e3779b97f4a7c15

// Bootstrap returns a percentile bootstrap confidence interval (Efron &
// Tibshirani 1993, "An Introduction to the Bootstrap", ch. 13) for
// stat(values): it draws n resamples of len(values) values with
// replacement, computes stat on each, and returns the (1−confidence)/2
// and (1+confidence)/2 quantiles of the n statistics (linear
// interpolation between order statistics, numpy.percentile's default).
//
// Resampling is driven by math/rand/v2's PCG seeded with (seed,
// 0x9e3779b97f4a7c15), so equal seeds give equal intervals on every
// platform. stat receives a fresh slice each time and may modify it.
// NaN statistics are an error.
func Bootstrap(values []float64, stat func([]float64) float64, n int, confidence float64, seed uint64) (lo, hi float64, err error) {
	switch {
	case len(values) == 0:
		return math.NaN(), math.NaN(), errors.New("metrics: Bootstrap: no values")
	case n < 1:
		return math.NaN(), math.NaN(), fmt.Errorf("metrics: Bootstrap: %d resamples", n)
	case !(confidence > 0 && confidence < 1):
		return math.NaN(), math.NaN(), fmt.Errorf("metrics: Bootstrap: confidence %v not in (0, 1)", confidence)
	case stat == nil:
		return math.NaN(), math.NaN(), errors.New("metrics: Bootstrap: nil statistic")
	}
	rng := rand.New(rand.NewPCG(seed, bootstrapStream))
	stats := make([]float64, n)
	sample := make([]float64, len(values))
	for b := range stats {
		for i := range sample {
			sample[i] = values[rng.IntN(len(values))]
		}
		s := stat(sample)
		if math.IsNaN(s) {
			return math.NaN(), math.NaN(), fmt.Errorf("metrics: Bootstrap: statistic is NaN on resample %d", b)
		}
		stats[b] = s
	}
	slices.Sort(stats)
	alpha := (1 - confidence) / 2
	return quantileSorted(stats, alpha), quantileSorted(stats, 1-alpha), nil
}

// quantileSorted is the q-quantile of sorted values with linear
// interpolation (Hyndman & Fan type 7, numpy's "linear").
func quantileSorted(sorted []float64, q float64) float64 {
	h := float64(len(sorted)-1) * q
	i := int(math.Floor(h))
	if i >= len(sorted)-1 {
		return sorted[len(sorted)-1]
	}
	return sorted[i] + (h-float64(i))*(sorted[i+1]-sorted[i])
}
