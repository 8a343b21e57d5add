package decoding

import (
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

// near reports whether got and want agree to within tol, element by element,
// with -Inf only where want is -Inf.
func near(got, want []float32, tol float64) bool {
	if len(got) != len(want) {
		return false
	}
	for i := range got {
		if (got[i] == inf) != (want[i] == inf) {
			return false
		}
		if want[i] != inf && math.Abs(float64(got[i])-float64(want[i])) > tol {
			return false
		}
	}
	return true
}

func TestContrastiveCombine(t *testing.T) {
	for _, tc := range []struct {
		name             string
		c                Contrastive
		expert, amateur  []float32
		want             []float32
		tol              float64
		argmaxE, argmaxC int
	}{
		{
			// O'Brien & Lewis: cut-off max + ln 0.1 = 2 - 2.3026 = -0.3026, so
			// token 3 (-3) goes; 1.5·s_e - 0.5·s_a on the rest. The expert's
			// favourite (token 0) is liked by the amateur too and loses to
			// token 1: 1.5·2 - 0.5·2 = 2 < 1.5·1.8 - 0 = 2.7.
			name:    "logits beta 0.5",
			c:       Contrastive{Alpha: 0.1, Beta: 0.5},
			expert:  []float32{2, 1.8, 0, -3},
			amateur: []float32{2, 0, -1, 5},
			want:    []float32{2, 2.7, 0.5, inf},
			tol:     1e-6, argmaxE: 0, argmaxC: 1,
		},
		{
			// β = 1: 2·s_e - s_a.
			name:    "logits beta 1",
			c:       Contrastive{Alpha: 0.1, Beta: 1},
			expert:  []float32{1, 0.5, -10},
			amateur: []float32{0, 1, 0},
			want:    []float32{2, 0, inf},
			tol:     0, argmaxE: 0, argmaxC: 0,
		},
		{
			// β = 0 keeps the expert's logits on the plausible set, whatever the
			// amateur holds (even -Inf), so greedy decoding is unchanged.
			name:    "beta 0 is the expert",
			c:       Contrastive{Alpha: 0.1, Beta: 0},
			expert:  []float32{0.25, 3, 1, 0.5},
			amateur: []float32{inf, 9, inf, 1},
			want:    []float32{inf, 3, 1, inf},
			tol:     0, argmaxE: 1, argmaxC: 1,
		},
		{
			// α = 1 keeps only the expert's top token (and its ties), however
			// strongly the amateur favours it.
			name:    "alpha 1 keeps the top",
			c:       Contrastive{Alpha: 1, Beta: 2},
			expert:  []float32{1, 4, 4, 3.9},
			amateur: []float32{0, 10, 0, 0},
			want:    []float32{inf, 3*4 - 2*10, 12, inf},
			tol:     0, argmaxE: 1, argmaxC: 2,
		},
		{
			// α = 0 keeps every token the expert did not mask, however
			// improbable: 2·(-50) - (-60) = -40.
			name:    "alpha 0 keeps all",
			c:       Contrastive{Alpha: 0, Beta: 1},
			expert:  []float32{inf, 0, -50},
			amateur: []float32{inf, 1, -60},
			want:    []float32{inf, -1, -40},
			tol:     0, argmaxE: 1, argmaxC: 1,
		},
		{
			// Li et al.: log p_exp - log p_ama. p_exp = (0.5, 0.3, 0.2),
			// p_ama = (0.25, 0.5, 0.25), shifted by constants that the
			// log-softmax removes. α = 0.5 cuts p_exp < 0.25: token 2.
			// ln(0.5/0.25) = ln 2, ln(0.3/0.5) = ln 0.6.
			name:    "logprobs",
			c:       Contrastive{Alpha: 0.5, Beta: 7, Form: ContrastiveLogProbs},
			expert:  shift(logitsOf(0.5, 0.3, 0.2), 5),
			amateur: shift(logitsOf(0.25, 0.5, 0.25), -3),
			want:    []float32{float32(math.Ln2), float32(math.Log(0.6)), inf},
			tol:     1e-6, argmaxE: 0, argmaxC: 0,
		},
		{
			// Without the cut-off the amateur's favourite drops below a token
			// it dislikes: ln(0.2/0.25) = ln 0.8 > ln 0.6.
			name:    "logprobs alpha 0",
			c:       Contrastive{Form: ContrastiveLogProbs},
			expert:  logitsOf(0.5, 0.3, 0.2),
			amateur: logitsOf(0.25, 0.5, 0.25),
			want:    []float32{float32(math.Ln2), float32(math.Log(0.6)), float32(math.Log(0.8))},
			tol:     1e-6, argmaxE: 0, argmaxC: 0,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			row := slices.Clone(tc.expert)
			if err := tc.c.Combine(row, tc.amateur); err != nil {
				t.Fatal(err)
			}
			if !near(row, tc.want, tc.tol) {
				t.Errorf("got %v, want %v", row, tc.want)
			}
			if got := Argmax(tc.expert); got != tc.argmaxE {
				t.Errorf("expert argmax %d, want %d", got, tc.argmaxE)
			}
			if got := Argmax(row); got != tc.argmaxC {
				t.Errorf("contrastive argmax %d, want %d", got, tc.argmaxC)
			}
		})
	}
}

func shift(row []float32, c float32) []float32 {
	for i := range row {
		row[i] += c
	}
	return row
}

// TestContrastiveInvariants checks on pseudo-random rows that β = 0 never
// changes the greedy token, that α = 1 leaves only the expert's maximum, and
// that the two forms coincide (up to the factor 1+β) when the amateur runs at
// temperature (1+β)/β.
func TestContrastiveInvariants(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 7))
	for trial := range 50 {
		n := 2 + trial%30
		e, a := make([]float32, n), make([]float32, n)
		for i := range n {
			e[i] = float32(rng.NormFloat64() * 3)
			a[i] = float32(rng.NormFloat64() * 3)
		}
		top := Argmax(e)

		row := slices.Clone(e)
		if err := (Contrastive{Alpha: 0.1}).Combine(row, a); err != nil {
			t.Fatal(err)
		}
		if Argmax(row) != top {
			t.Fatalf("trial %d: beta 0 moved the argmax from %d to %d", trial, top, Argmax(row))
		}

		row = slices.Clone(e)
		if err := (Contrastive{Alpha: 1, Beta: 3}).Combine(row, a); err != nil {
			t.Fatal(err)
		}
		if k := kept(row); len(k) != 1 || k[0] != top {
			t.Fatalf("trial %d: alpha 1 kept %v, want [%d]", trial, k, top)
		}

		const beta = 0.5
		lg := slices.Clone(e)
		if err := (Contrastive{Alpha: 0.1, Beta: beta}).Combine(lg, a); err != nil {
			t.Fatal(err)
		}
		tempered := slices.Clone(a)
		Temperature{T: (1 + beta) / beta}.Process(tempered, nil, 0)
		lp := slices.Clone(e)
		if err := (Contrastive{Alpha: 0.1, Form: ContrastiveLogProbs}).Combine(lp, tempered); err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(kept(lg), kept(lp)) || Argmax(lg) != Argmax(lp) {
			t.Fatalf("trial %d: forms disagree: %v vs %v", trial, lg, lp)
		}
	}
}

func TestContrastiveErrors(t *testing.T) {
	for _, tc := range []struct {
		name            string
		c               Contrastive
		expert, amateur []float32
		want            string
	}{
		{"length", Contrastive{Beta: 1}, []float32{1, 2}, []float32{1}, "differ in length"},
		{"amateur masks a kept token", Contrastive{Alpha: 0.1, Beta: 1}, []float32{1, 2}, []float32{0, inf}, "amateur logit 1"},
		{"logprobs with masked amateur", Contrastive{Form: ContrastiveLogProbs}, []float32{1, 2}, []float32{inf, 0}, "amateur logit 0"},
		{"logprobs with NaN amateur", Contrastive{Alpha: 1, Form: ContrastiveLogProbs}, []float32{1, 2}, []float32{float32(math.NaN()), 0}, "amateur logit 0 is NaN"},
		{"NaN expert", Contrastive{Beta: 1}, []float32{float32(math.NaN()), 2}, []float32{0, 0}, "expert logit 0"},
		{"negative beta", Contrastive{Beta: -1}, []float32{1}, []float32{1}, "beta"},
		{"unknown form", Contrastive{Form: 9}, []float32{1}, []float32{1}, "form"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			row := slices.Clone(tc.expert)
			err := tc.c.Combine(row, tc.amateur)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error containing %q", err, tc.want)
			}
			if !slices.Equal(row, tc.expert) && !math.IsNaN(float64(tc.expert[0])) {
				t.Errorf("row changed on error: %v", row)
			}
		})
	}
	// A row of -Inf only is left alone.
	row := []float32{inf, inf}
	if err := (Contrastive{Beta: 1}).Combine(row, []float32{0, 0}); err != nil || !slices.Equal(row, []float32{inf, inf}) {
		t.Errorf("all -Inf: %v, %v", row, err)
	}
}

func TestPlausibilityCutoff(t *testing.T) {
	// max + ln α rounded up to a float32: the exact set {x : x >= m + ln α}.
	m := float32(2)
	c := plausibilityCutoff(m, 0.1)
	lim := 2 + math.Log(0.1)
	if !(float64(c) >= lim) || !(float64(math.Nextafter32(c, inf)) < lim) {
		t.Errorf("cutoff %v is not the smallest float32 >= %v", c, lim)
	}
	for _, tc := range []struct {
		alpha float64
		want  float32
	}{{0, inf}, {-1, inf}, {math.NaN(), inf}, {1, m}, {5, m}, {math.E, m}} {
		if got := plausibilityCutoff(m, tc.alpha); got != tc.want {
			t.Errorf("alpha %v: got %v, want %v", tc.alpha, got, tc.want)
		}
	}
}

func TestDCDPrompts(t *testing.T) {
	demos := []CoTDemo{{
		Question:         "If there are 3 cars and 2 more arrive, how many cars are there?",
		Explanation:      "There are 3 cars. 2 more arrive. 3 + 2 = 5.",
		Answer:           "5",
		WrongExplanation: "There are 2 cars. 3 more arrive. 3 - 2 = 8.",
		WrongAnswer:      "8",
	}, {
		Question: "Q2?", Explanation: "E2.", Answer: "2", WrongExplanation: "W2.", WrongAnswer: "3",
	}}
	expert, amateur := DCDPrompts(demos, "How many?", "")
	wantE := "Q: If there are 3 cars and 2 more arrive, how many cars are there?\n" +
		"A: There are 3 cars. 2 more arrive. 3 + 2 = 5. The answer is 5.\n\n" +
		"Q: Q2?\nA: E2. The answer is 2.\n\n" +
		"Q: How many?\nA:"
	wantA := "Q: If there are 3 cars and 2 more arrive, how many cars are there?\n" +
		"A: There are 2 cars. 3 more arrive. 3 - 2 = 8. The answer is 8.\n\n" +
		"Q: Q2?\nA: W2. The answer is 3.\n\n" +
		"Q: How many?\nA:"
	if expert != wantE {
		t.Errorf("expert prompt:\n%q\nwant\n%q", expert, wantE)
	}
	if amateur != wantA {
		t.Errorf("amateur prompt:\n%q\nwant\n%q", amateur, wantA)
	}
	e, a := DCDPrompts(nil, "x", "So")
	if e != "Q: x\nA:" || a != e {
		t.Errorf("no demos: %q, %q", e, a)
	}
	e, _ = DCDPrompts(demos[1:], "x", "So")
	if !strings.Contains(e, "E2. So 2.") {
		t.Errorf("custom trigger: %q", e)
	}
}
