package decoding

import (
	"errors"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

func TestArgmax(t *testing.T) {
	nan := float32(math.NaN())
	for _, tc := range []struct {
		name string
		row  []float32
		want int
	}{
		{"plain", []float32{1, 3, 2}, 1},
		{"ties pick the first", []float32{1, 3, 3, 2, 3}, 1},
		{"negative", []float32{-5, -1, -1}, 1},
		{"-Inf ignored", []float32{inf, -100, inf}, 1},
		{"all -Inf gives 0", []float32{inf, inf}, 0},
		{"NaN wins like torch.argmax", []float32{1, nan, 5, nan}, 1},
		{"leading NaN", []float32{nan, 5}, 0},
		{"empty", nil, -1},
	} {
		if got := Argmax(tc.row); got != tc.want {
			t.Errorf("%s: Argmax(%v) = %d, want %d", tc.name, tc.row, got, tc.want)
		}
	}
}

func TestSoftmax(t *testing.T) {
	// Large logits do not overflow: softmax([1000, 999, -Inf]) = [1/(1+e^-1), e^-1/(1+e^-1), 0].
	p, err := Softmax(nil, []float32{1000, 999, inf})
	if err != nil {
		t.Fatal(err)
	}
	want := []float64{1 / (1 + math.Exp(-1)), math.Exp(-1) / (1 + math.Exp(-1)), 0}
	for i := range want {
		if math.Abs(p[i]-want[i]) > 1e-15 {
			t.Errorf("p[%d] = %v, want %v", i, p[i], want[i])
		}
	}
	p, err = Softmax(p, logitsOf(0.5, 0.3, 0.15, 0.05))
	if err != nil {
		t.Fatal(err)
	}
	for i, w := range []float64{0.5, 0.3, 0.15, 0.05} {
		if math.Abs(p[i]-w) > 1e-7 { // float32 logits carry 6e-8 relative error
			t.Errorf("p[%d] = %v, want %v", i, p[i], w)
		}
	}
	for _, tc := range []struct {
		row  []float32
		want string
	}{
		{[]float32{1, float32(math.NaN())}, "logit 1 is NaN"},
		{[]float32{float32(math.Inf(1)), 1}, "logit 0 is +Inf"},
		{[]float32{inf, inf}, "every token was filtered out"},
	} {
		if _, err := Softmax(nil, tc.row); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Softmax(%v): error %v, want %q", tc.row, err, tc.want)
		}
	}
}

// chiSquare returns Pearson's statistic of counts against probabilities p.
func chiSquare(counts []int, p []float64, n int) float64 {
	x := 0.0
	for i, c := range counts {
		if p[i] == 0 {
			continue
		}
		e := p[i] * float64(n)
		x += (float64(c) - e) * (float64(c) - e) / e
	}
	return x
}

// TestSamplingFrequencies draws n tokens (200,000 from a short row, 30,000
// from a dense one) and checks the empirical frequencies against the
// softmax: Pearson's chi-square with 6 degrees of freedom must stay below
// 22.46 (its 0.999 quantile) and every frequency within 5 standard errors,
// sqrt(p(1-p)/n), of its probability (0.0055 for p = 0.4 at n = 200,000). Tokens at
// -Inf must never come out. Both the few-candidates path and the dense path
// (more than sparseRow finite logits) are covered.
func TestSamplingFrequencies(t *testing.T) {
	probs := []float64{0.4, 0.25, 0.15, 0.1, 0.05, 0.03, 0.02}
	small := append([]float32{inf}, logitsOf(probs...)...)
	small = append(small, inf)
	// Dense: the same 7 tokens plus 5000 tokens at -40 sharing ~2e-14 of the
	// mass, which must essentially never be drawn.
	dense := slices.Concat(small, slices.Repeat([]float32{-40}, 5000))
	for _, tc := range []struct {
		name string
		row  []float32
		n    int
	}{{"few candidates", small, 200000}, {"dense", dense, 30000}} {
		t.Run(tc.name, func(t *testing.T) {
			n := tc.n
			rng := rand.New(NewPCG(42, 0))
			counts := make([]int, len(probs))
			for range n {
				tok, err := SampleLogits(tc.row, rng)
				if err != nil {
					t.Fatal(err)
				}
				if tok < 1 || tok > len(probs) {
					t.Fatalf("drew token %d (logit %v)", tok, tc.row[tok])
				}
				counts[tok-1]++
			}
			if x := chiSquare(counts, probs, n); x > 22.46 {
				t.Errorf("chi-square %.2f > 22.46; counts %v", x, counts)
			}
			for i, p := range probs {
				f := float64(counts[i]) / float64(n)
				if se := math.Sqrt(p * (1 - p) / float64(n)); math.Abs(f-p) > 5*se {
					t.Errorf("token %d: frequency %.5f, probability %.5f (bound %.5f)", i+1, f, p, 5*se)
				}
			}
		})
	}
}

func TestSampleEdgeCases(t *testing.T) {
	rng := rand.New(NewPCG(1, 1))
	for range 100 {
		if tok, err := SampleLogits([]float32{inf, 3, inf}, rng); tok != 1 || err != nil {
			t.Fatalf("single candidate: %d, %v", tok, err)
		}
		// exp(-800) underflows to 0 in float64: never drawn.
		if tok, err := SampleLogits([]float32{-800, 0}, rng); tok != 1 || err != nil {
			t.Fatalf("underflowing candidate: %d, %v", tok, err)
		}
	}
	if _, err := SampleLogits([]float32{inf, inf}, rng); !errors.Is(err, ErrNoCandidate) {
		t.Errorf("all -Inf: %v", err)
	}
	if _, err := SampleLogits([]float32{0, float32(math.NaN())}, rng); err == nil {
		t.Error("NaN accepted")
	}
}

// TestStreamsReproducible checks that a sequence's draws depend only on
// (seed, sequence id): not on other sequences, their number or their order.
func TestStreamsReproducible(t *testing.T) {
	row := logitsOf(0.2, 0.2, 0.2, 0.2, 0.2)
	draw := func(st *Stream, n int) []int {
		out := make([]int, n)
		for i := range out {
			tok, err := st.Next(row)
			if err != nil {
				t.Fatal(err)
			}
			out[i] = tok
		}
		return out
	}
	s := Sampler{DoSample: true, Seed: 7}
	alone := draw(s.Stream(3), 50)
	// In a batch of five, interleaved with the others, sequence 3 draws the same.
	streams := make([]*Stream, 5)
	for i := range streams {
		streams[i] = s.Stream(uint64(i))
	}
	batched := make([]int, 50)
	for step := range 50 {
		for i := len(streams) - 1; i >= 0; i-- {
			tok, _ := streams[i].Next(row)
			if i == 3 {
				batched[step] = tok
			}
		}
	}
	if !slices.Equal(alone, batched) {
		t.Errorf("sequence 3 alone %v, in a batch %v", alone, batched)
	}
	if again := draw(Sampler{DoSample: true, Seed: 7}.Stream(3), 50); !slices.Equal(alone, again) {
		t.Error("same seed and sequence gave different draws")
	}
	if other := draw(s.Stream(4), 50); slices.Equal(alone, other) {
		t.Error("sequences 3 and 4 drew the same tokens")
	}
	if other := draw(Sampler{DoSample: true, Seed: 8}.Stream(3), 50); slices.Equal(alone, other) {
		t.Error("seeds 7 and 8 drew the same tokens")
	}
}

func TestGreedyStream(t *testing.T) {
	st := NewSampler(Defaults(), 1).Stream(0)
	for _, row := range [][]float32{{1, 3, 3}, {inf, -2, -1}, logitsOf(0.1, 0.9)} {
		if tok, err := st.Next(row); err != nil || tok != Argmax(row) {
			t.Errorf("greedy Next(%v) = %d, %v; want %d", row, tok, err, Argmax(row))
		}
	}
	if _, err := st.Next(nil); err == nil {
		t.Error("empty row accepted")
	}
}
