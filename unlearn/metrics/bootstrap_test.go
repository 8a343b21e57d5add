package metrics

import (
	"math"
	"math/rand/v2"
	"testing"
)

// TestBootstrapMean checks the percentile interval of a mean: it covers
// the true mean, its width scales like 1/√n (the ratio of widths for
// n = 400 and n = 1600 is √4 = 2 up to resampling noise), and the same
// seed gives the same interval.
func TestBootstrapMean(t *testing.T) {
	gen := rand.New(rand.NewPCG(1, 2))
	draw := func(n int) []float64 {
		v := make([]float64, n)
		for i := range v {
			v[i] = gen.NormFloat64()*2 + 5 // mean 5, sd 2
		}
		return v
	}
	small, large := draw(400), draw(1600)
	lo1, hi1, err := Bootstrap(small, Mean, 2000, 0.95, 7)
	if err != nil {
		t.Fatal(err)
	}
	lo2, hi2, err := Bootstrap(large, Mean, 2000, 0.95, 7)
	if err != nil {
		t.Fatal(err)
	}
	for _, ci := range [][2]float64{{lo1, hi1}, {lo2, hi2}} {
		if !(ci[0] < 5 && 5 < ci[1]) {
			t.Errorf("95%% interval [%v, %v] misses the true mean 5", ci[0], ci[1])
		}
	}
	// The normal-theory width is 2·1.96·sd/√n: 0.392 for n = 400.
	w1, w2 := hi1-lo1, hi2-lo2
	if math.Abs(w1-0.392) > 0.05 || math.Abs(w2-0.196) > 0.025 {
		t.Errorf("widths %v and %v, want about 0.392 and 0.196", w1, w2)
	}
	if r := w1 / w2; math.Abs(r-2) > 0.25 {
		t.Errorf("width ratio for 4× the data = %v, want about 2", r)
	}
	t.Logf("n=400: [%.4f, %.4f] width %.4f; n=1600: [%.4f, %.4f] width %.4f; ratio %.3f", lo1, hi1, w1, lo2, hi2, w2, w1/w2)

	lo3, hi3, _ := Bootstrap(small, Mean, 2000, 0.95, 7)
	if lo3 != lo1 || hi3 != hi1 {
		t.Errorf("same seed gave [%v, %v] then [%v, %v]", lo1, hi1, lo3, hi3)
	}
	lo4, hi4, _ := Bootstrap(small, Mean, 2000, 0.95, 8)
	if lo4 == lo1 && hi4 == hi1 {
		t.Error("different seeds gave the same interval")
	}
}

// TestBootstrapConstant: a constant sample has a zero-width interval at
// the constant.
func TestBootstrapConstant(t *testing.T) {
	lo, hi, err := Bootstrap([]float64{3, 3, 3}, Mean, 50, 0.9, 1)
	if err != nil || lo != 3 || hi != 3 {
		t.Errorf("constant sample: [%v, %v], %v; want [3, 3]", lo, hi, err)
	}
}

func TestQuantileSorted(t *testing.T) {
	v := []float64{1, 2, 3, 4, 5}
	for _, c := range []struct{ q, want float64 }{
		{0, 1}, {1, 5}, {0.5, 3}, {0.25, 2}, {0.1, 1.4}, {0.975, 4.9},
	} {
		if got := quantileSorted(v, c.q); math.Abs(got-c.want) > 1e-12 {
			t.Errorf("quantile(%v) = %v, want %v (numpy.percentile linear)", c.q, got, c.want)
		}
	}
}

func TestBootstrapErrors(t *testing.T) {
	for _, c := range []struct {
		name string
		v    []float64
		n    int
		conf float64
		stat func([]float64) float64
	}{
		{"empty", nil, 10, 0.9, Mean},
		{"no resamples", []float64{1}, 0, 0.9, Mean},
		{"confidence 1", []float64{1}, 10, 1, Mean},
		{"nil stat", []float64{1}, 10, 0.9, nil},
		{"NaN stat", []float64{1}, 10, 0.9, func([]float64) float64 { return math.NaN() }},
	} {
		if _, _, err := Bootstrap(c.v, c.stat, c.n, c.conf, 1); err == nil {
			t.Errorf("%s: no error", c.name)
		}
	}
}
