package metrics

import (
	"bytes"
	"compress/zlib"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestGreedyMatchesAndMemorization(t *testing.T) {
	m, err := GreedyMatches([]int{5, 7, 9, 1}, []int{5, 8, 9, 1})
	if err != nil {
		t.Fatal(err)
	}
	if want := []bool{true, false, true, true}; !equalBools(m, want) {
		t.Fatalf("GreedyMatches = %v, want %v", m, want)
	}
	if _, err := GreedyMatches([]int{1}, []int{1, 2}); err == nil {
		t.Error("GreedyMatches with different lengths: no error")
	}
	for _, c := range []struct {
		correct []bool
		em, es  float64
	}{
		// 3 of 4 correct; the all-correct suffix starts at 2: ES = 1 − 2/4.
		{[]bool{true, false, true, true}, 0.75, 0.5},
		{[]bool{true, true, true, true, true}, 1, 1},
		// Only the last token: k = 4 of 5, ES = 1/5.
		{[]bool{false, true, false, false, true}, 0.4, 0.2},
		// Nothing predicted: open-unlearning's loop leaves k = n−1, ES = 1/n.
		{[]bool{false, false, false, false}, 0, 0.25},
		{[]bool{true, true, false}, 2.0 / 3, 1.0 / 3},
		{[]bool{false}, 0, 1},
	} {
		if got := ExactMemorization(c.correct); math.Abs(got-c.em) > 1e-15 {
			t.Errorf("ExactMemorization(%v) = %v, want %v", c.correct, got, c.em)
		}
		if got := ExtractionStrength(c.correct); math.Abs(got-c.es) > 1e-15 {
			t.Errorf("ExtractionStrength(%v) = %v, want %v", c.correct, got, c.es)
		}
	}
	if !math.IsNaN(ExactMemorization(nil)) {
		t.Error("ExactMemorization(nil) should be NaN")
	}
	if ExtractionStrength(nil) != 0 {
		t.Error("ExtractionStrength(nil) should be 0")
	}
}

func equalBools(a, b []bool) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestAttackScores(t *testing.T) {
	lp := []float64{-0.1, -2.0, -0.5, -3.0, -1.0}
	if got, want := LossScore(lp), 6.6/5; math.Abs(got-want) > 1e-15 {
		t.Errorf("LossScore = %v, want %v", got, want)
	}
	for _, c := range []struct {
		k, want float64
	}{
		{0.4, 2.5},        // ⌊5·0.4⌋ = 2 lowest: −3, −2
		{0.2, 3},          // 1 lowest
		{0.1, 3},          // ⌊0.5⌋ = 0 → at least 1
		{1, 6.6 / 5},      // all
		{2, 6.6 / 5},      // capped at all
		{0.6, 6.0 / 3},    // ⌊3.0000000000000004⌋ = 3: −3, −2, −1
		{0.59, 5.0 / 2.0}, // ⌊2.95⌋ = 2
	} {
		if got := MinK(lp, c.k); math.Abs(got-c.want) > 1e-15 {
			t.Errorf("MinK(k=%v) = %v, want %v", c.k, got, c.want)
		}
	}
	if lp[0] != -0.1 || lp[3] != -3.0 {
		t.Error("MinK modified its input")
	}
	if MinK(nil, 0.4) != 0 {
		t.Error("MinK(nil) should be 0")
	}

	// Min-K%++: z = (lp − μ)/σ; tokens: (−1 − (−2))/1 = 1, (−3 − (−1))/2 = −1,
	// (−2 − (−2))/√1e-6 = 0 (variance clamped). Lowest ⌊3·0.67⌋ = 2: −1, 0.
	got, err := MinKPlusPlus([]float64{-1, -3, -2}, []float64{-2, -1, -2}, []float64{1, 4, 0}, 0.67)
	if err != nil {
		t.Fatal(err)
	}
	if want := 0.5; math.Abs(got-want) > 1e-15 {
		t.Errorf("MinKPlusPlus = %v, want %v", got, want)
	}
	if _, err := MinKPlusPlus([]float64{-1}, nil, nil, 0.4); err == nil {
		t.Error("MinKPlusPlus with missing moments: no error")
	}
	if got, _ := MinKPlusPlus(nil, nil, nil, 0.4); got != 0 {
		t.Error("MinKPlusPlus of nothing should be 0")
	}
}

func TestVocabMoments(t *testing.T) {
	// Uniform over 4 tokens: log p = −ln 4 everywhere, μ = −ln 4, σ² = 0.
	l4 := -math.Log(4)
	mu, v := VocabMoments([]float64{l4, l4, l4, l4})
	if math.Abs(mu-l4) > 1e-15 || math.Abs(v) > 1e-15 {
		t.Errorf("uniform: (μ, σ²) = (%v, %v), want (%v, 0)", mu, v, l4)
	}
	// p = (1/2, 1/2, 0): μ = −ln 2, σ² = 0; the −Inf entry adds nothing.
	mu, v = VocabMoments([]float64{-math.Ln2, -math.Ln2, math.Inf(-1)})
	if math.Abs(mu+math.Ln2) > 1e-15 || math.Abs(v) > 1e-15 {
		t.Errorf("half-half: (μ, σ²) = (%v, %v)", mu, v)
	}
	// p = (1/2, 1/4, 1/4): μ = −(½ln2 + ½ln4) = −1.5 ln2,
	// E[(log p)²] = ½ln²2 + ½·4ln²2 = 2.5 ln²2, σ² = 2.5 − 2.25 = 0.25 ln²2.
	mu, v = VocabMoments([]float64{-math.Ln2, -2 * math.Ln2, -2 * math.Ln2})
	if math.Abs(mu+1.5*math.Ln2) > 1e-15 || math.Abs(v-0.25*math.Ln2*math.Ln2) > 1e-15 {
		t.Errorf("(½, ¼, ¼): (μ, σ²) = (%v, %v), want (%v, %v)", mu, v, -1.5*math.Ln2, 0.25*math.Ln2*math.Ln2)
	}
}

func TestAUC(t *testing.T) {
	for _, c := range []struct {
		name     string
		pos, neg []float64
		want     float64
	}{
		{"separated", []float64{3, 4}, []float64{1, 2}, 1},
		{"reversed", []float64{1, 2}, []float64{3, 4}, 0},
		// Pairs (pos, neg): (2,1) win, (2,3) loss, (4,1) win, (4,3) win: 3/4.
		{"mixed", []float64{2, 4}, []float64{1, 3}, 0.75},
		// All tied: every pair counts ½.
		{"ties", []float64{1, 1}, []float64{1, 1, 1}, 0.5},
		// (1 vs 1) ½, (1 vs 0) 1, (2 vs 1) 1, (2 vs 0) 1: 3.5/4.
		{"partial ties", []float64{1, 2}, []float64{1, 0}, 0.875},
	} {
		if got := AUC(c.pos, c.neg); math.Abs(got-c.want) > 1e-15 {
			t.Errorf("%s: AUC = %v, want %v", c.name, got, c.want)
		}
	}
	if !math.IsNaN(AUC(nil, []float64{1})) || !math.IsNaN(AUC([]float64{math.NaN()}, []float64{1})) {
		t.Error("AUC of an empty class or NaN should be NaN")
	}
	// open-unlearning's orientation: forget losses lower than holdout ones
	// (memorised) give an AUC near 1.
	if got := MIAAUC([]float64{0.1, 0.2}, []float64{1.5, 2.5}); got != 1 {
		t.Errorf("MIAAUC(memorised) = %v, want 1", got)
	}
	// Holdout 2 and 3 beat forget 1 but not forget 4: 2/4.
	if got := MIAAUC([]float64{1, 4}, []float64{2, 3}); got != 0.5 {
		t.Errorf("MIAAUC(mixed) = %v, want 0.5", got)
	}
	// Holdout 1.5 beats forget 0.1 only: 1/4.
	if got := MIAAUC([]float64{0.1, 2}, []float64{1.5, 0.05}); got != 0.25 {
		t.Errorf("MIAAUC(forget above holdout) = %v, want 0.25", got)
	}
}

func TestPrivLeak(t *testing.T) {
	for _, c := range []struct {
		u, r, want float64
	}{
		// Target model: open-unlearning AUC 1 vs retrain 0.5 → −100%.
		{1, 0.5, (0 - 0.5) / (0.5 + 1e-10) * 100},
		{0.5, 0.5, 0},
		// Over-unlearned: AUC 0.3 vs 0.5 → (0.7 − 0.5)/0.5 = +40%.
		{0.3, 0.5, (0.7 - 0.5) / (0.5 + 1e-10) * 100},
	} {
		if got := PrivLeak(c.u, c.r); math.Abs(got-c.want) > 1e-12 {
			t.Errorf("PrivLeak(%v, %v) = %.17g, want %.17g", c.u, c.r, got, c.want)
		}
	}
	if got, want := RelDiff(0.6, 0.5), 0.1/(0.5+1e-10)*100; math.Abs(got-want) > 1e-12 {
		t.Errorf("RelDiff = %v, want %v", got, want)
	}
}

// TestZlibLen compares ZlibLen with len(zlib.compress(...)) of CPython
// on zlib 1.2.13 (testdata/gen_zlib.py): sentences, empty and short
// strings, UTF-8, long runs, incompressible bytes (stored blocks), inputs
// past the 64 KiB window (slides) and past 16383 symbols (several
// blocks).
func TestZlibLen(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("testdata", "zlib_len.json"))
	if err != nil {
		t.Fatal(err)
	}
	var f struct {
		Zlib  string `json:"zlib"`
		Cases []struct {
			Text     *string `json:"text"`
			Kind     string  `json:"kind"`
			N        int     `json:"n"`
			Seed     uint32  `json:"seed"`
			Alphabet int     `json:"alphabet"`
			Offset   int     `json:"offset"`
			Len      int     `json:"len"`
		} `json:"cases"`
	}
	if err := json.Unmarshal(raw, &f); err != nil {
		t.Fatal(err)
	}
	goWorse := 0
	for i, c := range f.Cases {
		var data string
		if c.Text != nil {
			data = *c.Text
		} else {
			data = zlibTestInput(c.Kind, c.N, c.Seed, c.Alphabet, c.Offset)
		}
		if got := ZlibLen(data); got != c.Len {
			t.Errorf("case %d (%d bytes): ZlibLen = %d, zlib %s %d", i, len(data), got, f.Zlib, c.Len)
		}
		var b bytes.Buffer
		w, _ := zlib.NewWriterLevel(&b, 6)
		w.Write([]byte(data))
		w.Close()
		if b.Len() != c.Len {
			goWorse++
		}
	}
	t.Logf("%d cases match zlib %s; Go's compress/zlib differs on %d of them", len(f.Cases), f.Zlib, goWorse)
}

// zlibTestInput repeats gen_zlib.py's generator.
func zlibTestInput(kind string, n int, seed uint32, alphabet, offset int) string {
	vocab := strings.Fields("the author novel was born in 1975 and her father a renowned chef while mother worked as an astronaut writes books about fictional worlds of light sound .")
	x := seed
	next := func() uint32 { x = 1664525*x + 1013904223; return x }
	var b strings.Builder
	if kind == "bytes" {
		for range n {
			b.WriteByte(byte(int(next()>>24)%alphabet + offset))
		}
		return b.String()
	}
	var words []string
	for size := 0; size < n; {
		w := vocab[int(next()>>16)%len(vocab)]
		words = append(words, w)
		size += len(w) + 1
	}
	s := strings.Join(words, " ")
	return s[:min(n, len(s))]
}

func TestZlibScore(t *testing.T) {
	// zlib.compress(b"a") is 9 bytes: header 2, fixed block 3+8+7 bits = 3
	// bytes, Adler-32 4.
	if got := ZlibLen("a"); got != 9 {
		t.Fatalf("ZlibLen(a) = %d, want 9", got)
	}
	if got := ZlibScore(1.8, "a"); math.Abs(got-0.2) > 1e-15 {
		t.Errorf("ZlibScore = %v, want 0.2", got)
	}
}
