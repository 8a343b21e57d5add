package decoding

import (
	"math"
	"slices"
	"strings"
	"testing"
)

func TestDoLaDivergence(t *testing.T) {
	for _, tc := range []struct {
		name             string
		final, premature []float32
		want             float64
	}{
		// M = (0.5, 0.5); KL(M‖P) = 0.5·ln(0.5/0.8) + 0.5·ln(0.5/0.2) = ln 1.25,
		// and KL(M‖Q) the same; mean over V = 2 and the ½: ln(1.25)/2.
		{"mirror pair", logitsOf(0.8, 0.2), logitsOf(0.2, 0.8), math.Log(1.25) / 2},
		// M = (0.375, 0.25, 0.375); KL(M‖P) = 0.375·ln(0.75) + 0.375·ln(1.5) =
		// 0.375·ln 1.125 = KL(M‖Q); ½·(2·0.375·ln 1.125)/3 = 0.125·ln 1.125.
		{"three tokens", logitsOf(0.5, 0.25, 0.25), logitsOf(0.25, 0.25, 0.5), 0.125 * math.Log(1.125)},
		{"identical", logitsOf(0.5, 0.25, 0.25), shift(logitsOf(0.5, 0.25, 0.25), 4), 0},
		// A token both rule out adds nothing (0·log 0 = 0).
		{"shared -Inf", []float32{0, 0, inf}, []float32{0, 0, inf}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := DoLaDivergence(tc.final, tc.premature)
			if err != nil {
				t.Fatal(err)
			}
			if math.Abs(got-tc.want) > 1e-7 {
				t.Errorf("got %.10f, want %.10f", got, tc.want)
			}
		})
	}
	// A token only the final layer rules out: M > 0 where log P_final = -Inf.
	if got, _ := DoLaDivergence([]float32{0, inf}, []float32{0, 0}); !math.IsInf(got, 1) {
		t.Errorf("one-sided -Inf: got %v, want +Inf", got)
	}
	if _, err := DoLaDivergence([]float32{0}, []float32{0, 0}); err == nil {
		t.Error("length mismatch accepted")
	}
}

func TestDoLa(t *testing.T) {
	final := logitsOf(0.5, 0.25, 0.25)
	for _, tc := range []struct {
		name      string
		final     []float32
		premature [][]float32
		alpha     float64
		chosen    int
		want      []float32
	}{
		{
			// Divergences 0, 0.125·ln 1.125 ≈ 0.0147 and (0.1, 0.1, 0.8)'s,
			// which is larger: layer 2 is chosen. Scores ln(p_final/p_prem):
			// ln 5, ln 2.5, ln(0.3125).
			name:      "largest divergence wins",
			final:     final,
			premature: [][]float32{shift(logitsOf(0.5, 0.25, 0.25), 1), logitsOf(0.25, 0.25, 0.5), logitsOf(0.1, 0.1, 0.8)},
			alpha:     DoLaRelativeTop,
			chosen:    2,
			want:      []float32{float32(math.Log(5)), float32(math.Log(2.5)), float32(math.Log(0.3125))},
		},
		{
			// Equal divergences: the first of them, as torch.argmax.
			name:      "ties go to the first",
			final:     final,
			premature: [][]float32{final, logitsOf(0.25, 0.25, 0.5), logitsOf(0.25, 0.25, 0.5)},
			alpha:     DoLaRelativeTop,
			chosen:    1,
			want:      []float32{float32(math.Log(2)), 0, float32(math.Log(0.5))},
		},
		{
			// One candidate: no divergence needed. α = 0.1 keeps p >= 0.06:
			// ln(0.6/0.2) = ln 3, ln(0.3/0.3) = 0, ln(0.1/0.5) = ln 0.2.
			name:      "single layer",
			final:     logitsOf(0.6, 0.3, 0.1),
			premature: [][]float32{logitsOf(0.2, 0.3, 0.5)},
			alpha:     0.1,
			chosen:    0,
			want:      []float32{float32(math.Log(3)), 0, float32(math.Log(0.2))},
		},
		{
			// α = 0.2 keeps p >= 0.12: token 2 (p = 0.1) is implausible.
			name:      "implausible token",
			final:     logitsOf(0.6, 0.3, 0.1),
			premature: [][]float32{logitsOf(0.2, 0.3, 0.5)},
			alpha:     0.2,
			chosen:    0,
			want:      []float32{float32(math.Log(3)), 0, inf},
		},
		{
			// The premature layer equal to the final one (up to a shift): every
			// kept token scores 0; p = 0.05 < 0.1·0.7 is cut.
			name:      "identical layer",
			final:     logitsOf(0.7, 0.25, 0.05),
			premature: [][]float32{shift(logitsOf(0.7, 0.25, 0.05), -2)},
			alpha:     0.1,
			chosen:    0,
			want:      []float32{0, 0, inf},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := slices.Clone(tc.final)
			got, chosen, err := DoLa(in, tc.premature, tc.alpha)
			if err != nil {
				t.Fatal(err)
			}
			if chosen != tc.chosen {
				t.Errorf("chose layer %d, want %d", chosen, tc.chosen)
			}
			if !near(got, tc.want, 1e-6) {
				t.Errorf("scores %v, want %v", got, tc.want)
			}
			if !slices.Equal(in, tc.final) {
				t.Errorf("final row modified: %v", in)
			}
		})
	}
}

func TestDoLaContrastInPlace(t *testing.T) {
	row := logitsOf(0.6, 0.3, 0.1)
	got, err := DoLaContrast(row, row, logitsOf(0.2, 0.3, 0.5), 0.2)
	if err != nil {
		t.Fatal(err)
	}
	if &got[0] != &row[0] || !near(row, []float32{float32(math.Log(3)), 0, inf}, 1e-6) {
		t.Errorf("got %v (in place: %v)", got, &got[0] == &row[0])
	}
	// A kept token the premature layer rules out scores +Inf, as in
	// transformers (finite minus -Inf).
	got, _ = DoLaContrast(nil, []float32{1, 1}, []float32{0, inf}, 0.1)
	if !math.IsInf(float64(got[1]), 1) {
		t.Errorf("premature -Inf: got %v", got)
	}
}

func TestDoLaErrors(t *testing.T) {
	for _, tc := range []struct {
		name      string
		final     []float32
		premature [][]float32
		want      string
	}{
		{"no layers", []float32{0, 1}, nil, "at least one"},
		{"length", []float32{0, 1}, [][]float32{{0, 1}, {0}}, "layer 1 has 1 logits"},
		{"single length", []float32{0, 1}, [][]float32{{0}}, "differ in length"},
		{"NaN final", []float32{float32(math.NaN()), 1}, [][]float32{{0, 1}, {1, 0}}, "final layer"},
		{"all -Inf premature", []float32{0, 1}, [][]float32{{0, 1}, {inf, inf}}, "premature layer 1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, chosen, err := DoLa(tc.final, tc.premature, 0.1)
			if err == nil || !strings.Contains(err.Error(), tc.want) || chosen != -1 {
				t.Fatalf("got %v (chosen %d), want an error containing %q", err, chosen, tc.want)
			}
		})
	}
}

func TestDoLaLayers(t *testing.T) {
	rng := func(lo, hi int) []int {
		var r []int
		for l := lo; l < hi; l += 2 {
			r = append(r, l)
		}
		return r
	}
	for _, tc := range []struct {
		n    int
		tied bool
		set  string
		want []int
	}{
		{32, false, "low", rng(0, 16)},
		{32, true, "low", rng(2, 16)},
		{32, false, "high", rng(16, 32)},
		{32, true, "high", rng(16, 32)},
		{40, true, "high", rng(20, 40)},
		{48, false, "low", rng(0, 20)},
		{48, true, "low", rng(2, 20)},
		{48, false, "high", rng(28, 48)},
		{2, true, "low", []int{1}},  // start 1 = N/2
		{1, false, "low", []int{0}}, // start 0 = N/2
		{3, false, "high", []int{1}},
		{3, true, "low", nil}, // range(2, 1, 2) is empty: an error
		{32, false, "middle", nil},
		{0, false, "low", nil},
	} {
		got, err := DoLaLayers(tc.n, tc.tied, tc.set)
		if tc.want == nil {
			if err == nil {
				t.Errorf("DoLaLayers(%d, %v, %q) = %v, want an error", tc.n, tc.tied, tc.set, got)
			}
			continue
		}
		if err != nil || !slices.Equal(got, tc.want) {
			t.Errorf("DoLaLayers(%d, %v, %q) = %v, %v; want %v", tc.n, tc.tied, tc.set, got, err, tc.want)
		}
	}
}
