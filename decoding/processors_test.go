package decoding

import (
	"cmp"
	"math"
	"math/rand/v2"
	"slices"
	"sort"
	"testing"
)

var inf = float32(math.Inf(-1))

// logitsOf returns ln p as float32 logits, so softmax(logits) = p.
func logitsOf(p ...float64) []float32 {
	out := make([]float32, len(p))
	for i, v := range p {
		out[i] = float32(math.Log(v))
	}
	return out
}

// kept lists the ids whose logit is not -Inf.
func kept(row []float32) []int {
	var ids []int
	for i, x := range row {
		if x != inf {
			ids = append(ids, i)
		}
	}
	return ids
}

func TestRepetitionPenalty(t *testing.T) {
	for _, tc := range []struct {
		name    string
		penalty float64
		logits  []float32
		history []int
		want    []float32
	}{
		{
			// Positive logits are divided, negative ones multiplied, zero stays; a
			// token seen three times is penalised once; unseen tokens are untouched.
			name:    "penalty 2",
			penalty: 2,
			logits:  []float32{2, -2, 0.5, -0.5, 0, 3},
			history: []int{0, 1, 0, 3, 3, 3, 4},
			want:    []float32{1, -4, 0.5, -1, 0, 3},
		},
		{
			name:    "penalty 0.5 rewards repeats",
			penalty: 0.5,
			logits:  []float32{2, -2, 1},
			history: []int{0, 1},
			want:    []float32{4, -1, 1},
		},
		{
			// Division is a multiplication by the float32 reciprocal, as torch on CUDA.
			name:    "penalty 1.2 in float32",
			penalty: 1.2,
			logits:  []float32{1, -1, 7},
			history: []int{2, 1, 0},
			want:    []float32{1 * (1 / float32(1.2)), -1 * float32(1.2), 7 * (1 / float32(1.2))},
		},
		{
			name:    "masked token stays masked",
			penalty: 1.3,
			logits:  []float32{inf, 1},
			history: []int{0},
			want:    []float32{inf, 1},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			row := slices.Clone(tc.logits)
			RepetitionPenalty{Penalty: tc.penalty}.Process(row, tc.history, 0)
			if !slices.Equal(row, tc.want) {
				t.Errorf("got %v, want %v", row, tc.want)
			}
		})
	}
	// The closed form for 1.2 is 0.8333333 and -1.2.
	row := []float32{1, -1}
	RepetitionPenalty{Penalty: 1.2}.Process(row, []int{0, 1}, 0)
	if math.Abs(float64(row[0])-1/1.2) > 1e-7 || math.Abs(float64(row[1])+1.2) > 1e-7 {
		t.Errorf("penalty 1.2 gave %v, want [0.8333333 -1.2]", row)
	}
}

func TestMinNewTokensAndMinLength(t *testing.T) {
	eos := []int{2, 4}
	base := []float32{0.1, 0.2, 0.3, 0.4, 0.5}
	masked := []float32{0.1, 0.2, inf, 0.4, inf}
	for _, tc := range []struct {
		name string
		p    Processor
		hist int // history length (prompt of 5 + step)
		step int
		want []float32
	}{
		{"new: step 0 of min 3", MinNewTokens{Min: 3, EOS: eos}, 5, 0, masked},
		{"new: step 2 of min 3", MinNewTokens{Min: 3, EOS: eos}, 7, 2, masked},
		{"new: step 3 of min 3", MinNewTokens{Min: 3, EOS: eos}, 8, 3, base},
		{"new: step 9 of min 3", MinNewTokens{Min: 3, EOS: eos}, 14, 9, base},
		{"new: min 0", MinNewTokens{Min: 0, EOS: eos}, 5, 0, base},
		{"length: 7 of min 8", MinLength{Min: 8, EOS: eos}, 7, 2, masked},
		{"length: 8 of min 8", MinLength{Min: 8, EOS: eos}, 8, 3, base},
	} {
		t.Run(tc.name, func(t *testing.T) {
			row := slices.Clone(base)
			tc.p.Process(row, make([]int, tc.hist), tc.step)
			if !slices.Equal(row, tc.want) {
				t.Errorf("got %v, want %v", row, tc.want)
			}
		})
	}
}

func TestTemperature(t *testing.T) {
	for _, tc := range []struct {
		t    float64
		in   []float32
		want []float32
	}{
		{0.5, []float32{1, -2, 0.5, inf}, []float32{2, -4, 1, inf}},
		{2, []float32{1, -2, 0.5}, []float32{0.5, -1, 0.25}},
		// Multiplication by the float32 reciprocal, as torch on CUDA.
		{0.7, []float32{1, -3}, []float32{1 * (1 / float32(0.7)), -3 * (1 / float32(0.7))}},
	} {
		row := slices.Clone(tc.in)
		Temperature{T: tc.t}.Process(row, nil, 0)
		if !slices.Equal(row, tc.want) {
			t.Errorf("T=%v: got %v, want %v", tc.t, row, tc.want)
		}
	}
	row := []float32{1}
	Temperature{T: 0.7}.Process(row, nil, 0)
	if math.Abs(float64(row[0])-1/0.7) > 2e-7 {
		t.Errorf("1/0.7 = %v, want 1.4285714", row[0])
	}
}

func TestTopK(t *testing.T) {
	for _, tc := range []struct {
		name string
		k    int
		in   []float32
		want []int
	}{
		{"k=2 keeps both tied maxima", 2, []float32{1, 5, 3, 5, 2}, []int{1, 3}},
		{"k=3", 3, []float32{1, 5, 3, 5, 2}, []int{1, 2, 3}},
		{"ties with the k-th value stay", 2, []float32{1, 3, 3, 3, 0}, []int{1, 2, 3}},
		{"k=1", 1, []float32{-1, -0.5, -3}, []int{1}},
		{"k >= vocab keeps all", 9, []float32{1, 2, 3}, []int{0, 1, 2}},
		{"fewer finite than k", 2, []float32{inf, 1, inf}, []int{1}},
		{"negative and zero", 2, []float32{-0.0, -1, 0, -2}, []int{0, 2}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			row := slices.Clone(tc.in)
			TopK{K: tc.k}.Process(row, nil, 0)
			if got := kept(row); !slices.Equal(got, tc.want) {
				t.Errorf("kept %v, want %v", got, tc.want)
			}
			for _, i := range tc.want {
				if row[i] != tc.in[i] {
					t.Errorf("kept logit %d changed: %v -> %v", i, tc.in[i], row[i])
				}
			}
		})
	}
}

// TestKthLargest checks the heap and the radix selection against sorting on rows with
// many ties, infinities and both signs.
func TestKthLargest(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	s := new(scratch)
	for trial := range 300 {
		n := 1 + rng.IntN(3000)
		row := make([]float32, n)
		for i := range row {
			switch rng.IntN(10) {
			case 0:
				row[i] = inf
			case 1:
				row[i] = float32(rng.IntN(5)) // ties
			case 2:
				row[i] = float32(math.Inf(1))
			default:
				row[i] = float32(rng.NormFloat64() * math.Pow(10, float64(rng.IntN(6)-2)))
			}
		}
		sorted := slices.Clone(row)
		slices.SortFunc(sorted, func(a, b float32) int { return cmp.Compare(b, a) })
		for _, k := range []int{1, 2, 1 + rng.IntN(n), n} {
			if got := kthLargest(row, k, s); got != sorted[k-1] {
				t.Fatalf("radix: trial %d, n=%d, k=%d: got %v, want %v", trial, n, k, got, sorted[k-1])
			}
			if got := kthLargestHeap(row, k, s); got != sorted[k-1] {
				t.Fatalf("heap: trial %d, n=%d, k=%d: got %v, want %v", trial, n, k, got, sorted[k-1])
			}
		}
	}
}

func TestTopP(t *testing.T) {
	probs := logitsOf(0.5, 0.3, 0.15, 0.05)
	for _, tc := range []struct {
		name string
		p    float64
		in   []float32
		want []int
	}{
		// 0.5 + 0.3 = 0.8 reaches top_p exactly: transformers removes the tokens
		// whose ascending cumulative sum is <= 1 - 0.8 = 0.2 (0.05 and 0.05+0.15),
		// so exactly the first two stay.
		{"p=0.8 keeps exactly two", 0.8, probs, []int{0, 1}},
		{"p=0.7", 0.7, probs, []int{0, 1}},
		{"p=0.81", 0.81, probs, []int{0, 1, 2}},
		{"p=0.9", 0.9, probs, []int{0, 1, 2}},
		{"p=0.99", 0.99, probs, []int{0, 1, 2, 3}},
		{"p=0.3 keeps the top token", 0.3, probs, []int{0}},
		{"p=0 keeps the top token", 0, probs, []int{0}},
		{"order of ids does not matter", 0.8, logitsOf(0.05, 0.3, 0.15, 0.5), []int{1, 3}},
		// Four equal tokens: the stable ascending sort ranks lower ids lower, so
		// they go first; cumsum 0.25, 0.5 <= 0.5 removes ids 0 and 1.
		{"ties p=0.5 keep the higher ids", 0.5, []float32{1, 1, 1, 1}, []int{2, 3}},
		{"ties p=0.6", 0.6, []float32{1, 1, 1, 1}, []int{1, 2, 3}},
		{"already filtered tokens stay filtered", 0.8, []float32{inf, probs[0], inf, probs[1], probs[2], probs[3]}, []int{1, 3}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			row := slices.Clone(tc.in)
			TopP{P: tc.p}.Process(row, nil, 0)
			if got := kept(row); !slices.Equal(got, tc.want) {
				t.Errorf("kept %v, want %v", got, tc.want)
			}
		})
	}
}

// refTopP is transformers' TopPLogitsWarper transcribed literally: stable
// ascending sort, softmax, cumulative sum, remove cumsum <= 1 - p in float32,
// keep the last (largest) position.
func refTopP(row []float32, p float64) []bool {
	n := len(row)
	idx := make([]int, n)
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(a, b int) bool { return row[idx[a]] < row[idx[b]] })
	m := float64(slices.Max(row))
	z := 0.0
	for _, x := range row {
		z += math.Exp(float64(x) - m)
	}
	thr := float32(1 - p)
	keep := make([]bool, n)
	cum := 0.0
	for pos, i := range idx {
		cum += math.Exp(float64(row[i])-m) / z
		keep[i] = !(float32(cum) <= thr) || pos == n-1
	}
	return keep
}

// refTypical is transformers' TypicalLogitsWarper transcribed literally.
func refTypical(row []float32, mass float64) []bool {
	n := len(row)
	m := float64(slices.Max(row))
	z := 0.0
	for _, x := range row {
		z += math.Exp(float64(x) - m)
	}
	logZ := math.Log(z)
	lp := make([]float64, n)
	ent := 0.0
	for i, x := range row {
		lp[i] = float64(x) - m - logZ
		if p := math.Exp(lp[i]); p > 0 {
			ent -= lp[i] * p
		}
	}
	shifted := make([]float32, n)
	for i := range row {
		shifted[i] = float32(math.Abs(-lp[i] - ent))
	}
	idx := make([]int, n)
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(a, b int) bool { return shifted[idx[a]] < shifted[idx[b]] })
	last := 0
	cum := 0.0
	for _, i := range idx {
		cum += math.Exp(lp[i])
		if float32(cum) < float32(mass) {
			last++
		}
	}
	last = min(last, n-1)
	keep := make([]bool, n)
	for pos, i := range idx {
		keep[i] = pos == 0 || !(shifted[i] > shifted[idx[last]])
	}
	return keep
}

// randomRow returns LLM-like logits; quantised rows have many exact ties,
// like bfloat16 logits.
func randomRow(rng *rand.Rand, n int, scale float64, quantised bool) []float32 {
	row := make([]float32, n)
	for i := range row {
		x := rng.NormFloat64() * scale
		if quantised {
			x = math.Round(x*4) / 4
		}
		row[i] = float32(x)
	}
	return row
}

func checkAgainst(t *testing.T, name string, row []float32, want []bool, got []float32) {
	t.Helper()
	for i := range row {
		if (got[i] != inf) != want[i] {
			t.Fatalf("%s: token %d (logit %v): kept=%v, transformers keeps=%v", name, i, row[i], got[i] != inf, want[i])
		}
		if want[i] && got[i] != row[i] {
			t.Fatalf("%s: kept token %d changed", name, i)
		}
	}
}

// TestTopPMatchesTransformers compares both code paths (rows with few finite
// logits, and dense rows with a histogram pre-selection) against the literal
// transcription, on flat and peaked rows, rows full of ties and rows around
// the sparse/dense boundary.
func TestTopPMatchesTransformers(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for trial := range 90 {
		n := []int{50, 3000, sparseRow, sparseRow + 1, 20000}[trial%5]
		scale := []float64{0.5, 2, 6}[trial%3]
		row := randomRow(rng, n, scale, trial%2 == 0)
		if trial%4 == 1 { // a confident distribution: a few peaks over the noise
			for range 10 {
				row[rng.IntN(n)] = float32(8 + rng.Float64()*8)
			}
		}
		if trial%6 == 5 { // partly filtered already
			for i := range row {
				if rng.IntN(3) == 0 {
					row[i] = inf
				}
			}
		}
		for _, p := range []float64{1e-3, 0.1, 0.5, 0.9, 0.95, 0.999, 0.999999} {
			got := slices.Clone(row)
			TopP{P: p}.Process(got, nil, 0)
			checkAgainst(t, "top_p", row, refTopP(row, p), got)
		}
	}
	// Dense rows whose cut falls exactly between two bands, and p = 0 with
	// a tied maximum (the higher id is the top token).
	dense := slices.Concat([]float32{0}, slices.Repeat([]float32{-10}, 5000))
	got := slices.Clone(dense)
	TopP{P: 0.5}.Process(got, nil, 0)
	checkAgainst(t, "band edge", dense, refTopP(dense, 0.5), got)
	tied := slices.Concat(slices.Repeat([]float32{-1}, 5000), []float32{3, 2, 3})
	for _, p := range []float64{0, 1e-12} {
		got = slices.Clone(tied)
		TopP{P: p}.Process(got, nil, 0)
		if k := kept(got); !slices.Equal(k, []int{5002}) {
			t.Errorf("p=%v kept %v, want [5002]", p, k)
		}
		checkAgainst(t, "p=0", tied, refTopP(tied, p), got)
	}
}

func TestMinP(t *testing.T) {
	probs := logitsOf(0.5, 0.3, 0.15, 0.05)
	for _, tc := range []struct {
		name string
		p    float64
		in   []float32
		want []int
	}{
		{"0.2 removes p < 0.1", 0.2, probs, []int{0, 1, 2}},
		{"0.5 removes p < 0.25", 0.5, probs, []int{0, 1}},
		{"0.7 removes p < 0.35", 0.7, probs, []int{0}},
		{"0 keeps all", 0, probs, []int{0, 1, 2, 3}},
		{"1 keeps the maxima", 1, []float32{2, 2, 1}, []int{0, 1}},
		// Relative to the top probability, not absolute: 0.02/0.04 = 0.5 >= 0.4.
		{"relative to max", 0.4, logitsOf(0.04, 0.02, 0.01, 0.005), []int{0, 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			row := slices.Clone(tc.in)
			MinP{P: tc.p}.Process(row, nil, 0)
			if got := kept(row); !slices.Equal(got, tc.want) {
				t.Errorf("kept %v, want %v", got, tc.want)
			}
		})
	}
}

func TestTypicalP(t *testing.T) {
	// p = [0.5, 0.3, 0.15, 0.05]: H = 1.14212 nats; |-ln p - H| =
	// [0.4490, 0.0619, 0.7550, 1.8536], so the ranking is ids 1, 0, 2, 3 with
	// cumulative mass 0.3, 0.8, 0.95, 1.
	probs := logitsOf(0.5, 0.3, 0.15, 0.05)
	for _, tc := range []struct {
		mass float64
		want []int
	}{
		{0.2, []int{1}}, // the most typical token, not the most probable
		{0.5, []int{0, 1}},
		{0.9, []int{0, 1, 2}},
		{0.99, []int{0, 1, 2, 3}},
	} {
		row := slices.Clone(probs)
		TypicalP{Mass: tc.mass}.Process(row, nil, 0)
		if got := kept(row); !slices.Equal(got, tc.want) {
			t.Errorf("mass %v: kept %v, want %v", tc.mass, got, tc.want)
		}
	}
	rng := rand.New(rand.NewPCG(5, 6))
	for trial := range 20 {
		row := randomRow(rng, 2000, 2, trial%2 == 0)
		for _, mass := range []float64{0.2, 0.9} {
			got := slices.Clone(row)
			TypicalP{Mass: mass}.Process(got, nil, 0)
			checkAgainst(t, "typical_p", row, refTypical(row, mass), got)
		}
	}
}

func TestExpNeg(t *testing.T) {
	worst := 0.0
	for x := -708.0; x <= 0; x += 0.0137 {
		want := math.Exp(x)
		if rel := math.Abs(expNeg(x)-want) / want; rel > worst {
			worst = rel
		}
	}
	if worst > 1e-15 {
		t.Errorf("largest relative error %g, want <= 1e-15", worst)
	}
	for _, x := range []float64{math.Inf(-1), -709, -1e300, math.NaN()} {
		if got := expNeg(x); got != 0 {
			t.Errorf("expNeg(%v) = %v, want 0", x, got)
		}
	}
	if expNeg(0) != 1 {
		t.Errorf("expNeg(0) = %v, want 1", expNeg(0))
	}
}

func TestScanRow(t *testing.T) {
	nan, pinf := float32(math.NaN()), float32(math.Inf(1))
	row := []float32{inf, 2, inf, -1, 5, inf}
	r := scanRow(row, make([]candidate, 0, 3))
	if r.m != 5 || r.n != 3 || !r.sparse() || r.bad != -1 || len(r.cands) != 3 || r.cands[2] != (candidate{v: 5, i: 4}) {
		t.Errorf("sparse scan %+v", r)
	}
	r = scanRow(row, make([]candidate, 0, 2))
	if r.m != 5 || r.n != 3 || r.sparse() || len(r.cands) != 0 {
		t.Errorf("dense scan %+v", r)
	}
	if r = scanRow([]float32{1, pinf, nan}, nil); r.bad != 1 || r.m != 1 {
		t.Errorf("+Inf scan %+v", r)
	}
	if r = scanRow([]float32{inf, inf}, nil); r.n != 0 || r.m != inf {
		t.Errorf("empty scan %+v", r)
	}
}
