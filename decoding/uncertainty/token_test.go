package uncertainty

import (
	"math"
	"testing"
)

func closeTo(got, want, tol float64) bool {
	if math.IsNaN(want) {
		return math.IsNaN(got)
	}
	if math.IsInf(want, 0) {
		return got == want
	}
	return math.Abs(got-want) <= tol*max(1, math.Abs(want))
}

func logRows(p [][]float64) [][]float64 {
	out := make([][]float64, len(p))
	for k, r := range p {
		out[k] = make([]float64, len(r))
		for v, x := range r {
			out[k][v] = math.Log(x)
		}
	}
	return out
}

func TestTokenHandComputed(t *testing.T) {
	ln2, ln3 := math.Ln2, math.Log(3)
	for _, c := range []struct {
		name       string
		probs      [][]float64
		pe, ee, mi float64
	}{
		// p̄ = (3/8, 3/8, 1/4): H[p̄] = −(3/4) ln(3/8) − (1/4) ln(1/4)
		// = (11/4) ln 2 − (3/4) ln 3; each pass has H = (3/2) ln 2.
		{"two passes, three tokens", [][]float64{{0.5, 0.25, 0.25}, {0.25, 0.5, 0.25}},
			2.75*ln2 - 0.75*ln3, 1.5 * ln2, 1.25*ln2 - 0.75*ln3},
		// Certain but contradictory passes: all the uncertainty is epistemic.
		{"disjoint", [][]float64{{1, 0}, {0, 1}}, ln2, 0, ln2},
		// Agreeing uniform passes: all of it is aleatoric.
		{"uniform", [][]float64{{0.5, 0.5}, {0.5, 0.5}, {0.5, 0.5}}, ln2, ln2, 0},
		{"one pass", [][]float64{{0.5, 0.25, 0.25}}, 1.5 * ln2, 1.5 * ln2, 0},
		// Passes with zero probabilities; p̄ = (1/2, 1/4, 1/4).
		{"three passes with zeros", [][]float64{{0.5, 0.5, 0}, {1, 0, 0}, {0, 0.25, 0.75}},
			1.5 * ln2,
			// H: ln 2, 0, −(1/4)ln(1/4) − (3/4)ln(3/4) = 2 ln 2 − (3/4) ln 3
			(3*ln2 - 0.75*ln3) / 3,
			1.5*ln2 - (3*ln2-0.75*ln3)/3},
	} {
		fromProbs, err := TokenFromProbs(c.probs)
		if err != nil {
			t.Fatalf("%s: TokenFromProbs: %v", c.name, err)
		}
		fromLogs, err := Token(logRows(c.probs))
		if err != nil {
			t.Fatalf("%s: Token: %v", c.name, err)
		}
		// Logits (log-probabilities shifted per row) give the same scores.
		logits := logRows(c.probs)
		for k := range logits {
			for v := range logits[k] {
				logits[k][v] += 3.5 * float64(k+1)
			}
		}
		fromLogits, err := Token(logits)
		if err != nil {
			t.Fatalf("%s: Token(logits): %v", c.name, err)
		}
		for name, got := range map[string]TokenScores{"probs": fromProbs, "logprobs": fromLogs, "logits": fromLogits} {
			if !closeTo(got.PredictiveEntropy, c.pe, 1e-14) || !closeTo(got.ExpectedEntropy, c.ee, 1e-14) || !closeTo(got.MutualInformation, c.mi, 1e-14) {
				t.Errorf("%s (%s) = %+v; want PE %.17g EE %.17g MI %.17g", c.name, name, got, c.pe, c.ee, c.mi)
			}
			if d := got.PredictiveEntropy - got.ExpectedEntropy - got.MutualInformation; math.Abs(d) > 1e-14 {
				t.Errorf("%s (%s): PE − EE − MI = %g", c.name, name, d)
			}
		}
	}
}

// The acceptance line: MC dropout with p=0 gives zero mutual information.
// With rate 0 every pass is the same model, so the K rows are identical
// and MI must be exactly 0, not merely small.
func TestTokenDropoutZeroGivesZeroMI(t *testing.T) {
	row := []float64{0.3, -1.2, 2.5, 0.1, math.Inf(-1), -7.25, 1e-3, 0.7}
	for _, K := range []int{1, 2, 3, 5, 7, 10, 32} {
		rows := make([][]float64, K)
		for k := range rows {
			rows[k] = append([]float64(nil), row...)
		}
		got, err := Token(rows)
		if err != nil {
			t.Fatal(err)
		}
		if got.MutualInformation != 0 {
			t.Errorf("K=%d: MI = %g, want exactly 0", K, got.MutualInformation)
		}
		if got.PredictiveEntropy != got.ExpectedEntropy || !(got.PredictiveEntropy > 0) {
			t.Errorf("K=%d: PE %v, EE %v; want equal and positive", K, got.PredictiveEntropy, got.ExpectedEntropy)
		}
		probs := make([][]float64, K)
		for k := range probs {
			probs[k] = []float64{0.1, 0.2, 0.3, 0.4, 0}
		}
		if got, err := TokenFromProbs(probs); err != nil || got.MutualInformation != 0 || got.PredictiveEntropy != got.ExpectedEntropy {
			t.Errorf("K=%d: TokenFromProbs = %+v, %v; want MI exactly 0", K, got, err)
		}
	}
}

func TestTokenErrors(t *testing.T) {
	inf := math.Inf(1)
	for name, rows := range map[string][][]float64{
		"no passes":  nil,
		"empty row":  {{}},
		"ragged":     {{0, 0}, {0}},
		"NaN":        {{0, math.NaN()}},
		"+Inf":       {{0, inf}},
		"all -Inf":   {{math.Inf(-1), math.Inf(-1)}},
		"second bad": {{0, 0}, {0, math.NaN()}},
	} {
		if got, err := Token(rows); err == nil || !math.IsNaN(got.MutualInformation) {
			t.Errorf("Token(%s) = %+v, %v; want NaN and an error", name, got, err)
		}
	}
	for name, rows := range map[string][][]float64{
		"no passes": nil,
		"negative":  {{0.5, -0.1, 0.6}},
		"zero sum":  {{0, 0}},
		"ragged":    {{0.5, 0.5}, {1}},
		"+Inf":      {{inf, 1}},
	} {
		if _, err := TokenFromProbs(rows); err == nil {
			t.Errorf("TokenFromProbs(%s): no error", name)
		}
	}
}
