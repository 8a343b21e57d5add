package decoding

import (
	"cmp"
	"fmt"
	"math"
	"slices"
)

// Processor rewrites one row of next-token logits in place, as one of
// transformers' LogitsProcessor / LogitsWarper classes does to one row of its
// scores tensor. Filtered tokens are set to -Inf.
//
// history is the sequence so far, prompt followed by the generated ids (the
// input_ids transformers hands its processors); step is the number of
// generated ids in it. Processors ignore history ids outside the row; Chain
// rejects them before any processor runs.
//
// The processors of this package hold no state between calls and are safe
// for concurrent use. Like transformers they keep at least one token
// (min_tokens_to_keep = 1, its value outside beam search). Rows must not hold
// NaN or +Inf (which no softmax survives); Softmax and the Sampler report
// them, the processors leave the result unspecified.
type Processor interface {
	Process(logits []float32, history []int, step int)
}

// RepetitionPenalty is transformers' RepetitionPenaltyLogitsProcessor: every
// distinct token of history has its logit x replaced by x*Penalty when x < 0
// and by x/Penalty otherwise, once however often it occurs. The arithmetic is
// float32, and the division a multiplication by the float32 reciprocal, as
// torch does on CUDA (see Temperature).
type RepetitionPenalty struct {
	// Penalty > 1 discourages repeats, < 1 encourages them.
	Penalty float64
}

// Process applies the penalty.
func (p RepetitionPenalty) Process(logits []float32, history []int, _ int) {
	pen := float32(p.Penalty)
	inv := 1 / pen
	s := getScratch()
	defer putScratch(s)
	// Gather every score first and scatter afterwards, as torch.gather /
	// scatter do, so that a repeated id is penalised once.
	vals := s.floats32(len(history))
	for j, id := range history {
		if uint(id) >= uint(len(logits)) {
			continue
		}
		x := logits[id]
		if x < 0 {
			x *= pen
		} else {
			x *= inv
		}
		vals[j] = x
	}
	for j, id := range history {
		if uint(id) < uint(len(logits)) {
			logits[id] = vals[j]
		}
	}
}

// String names the processor and its parameters, as Chain.String lists it.
func (p RepetitionPenalty) String() string { return fmt.Sprintf("RepetitionPenalty(%g)", p.Penalty) }

// MinNewTokens is transformers' MinNewTokensLengthLogitsProcessor: while
// fewer than Min tokens have been generated (step < Min) every id of EOS gets
// -Inf.
type MinNewTokens struct {
	// Min is min_new_tokens.
	Min int
	// EOS are the ids to forbid.
	EOS []int
}

// Process masks the EOS ids while step < Min.
func (p MinNewTokens) Process(logits []float32, _ []int, step int) {
	if step < p.Min {
		maskIDs(logits, p.EOS)
	}
}

// String names the processor and its parameters, as Chain.String lists it.
func (p MinNewTokens) String() string { return fmt.Sprintf("MinNewTokens(%d, eos=%v)", p.Min, p.EOS) }

// MinLength is transformers' MinLengthLogitsProcessor: while the whole
// sequence (prompt included) is shorter than Min every id of EOS gets -Inf.
type MinLength struct {
	// Min is min_length, counting the prompt.
	Min int
	// EOS are the ids to forbid.
	EOS []int
}

// Process masks the EOS ids while len(history) < Min.
func (p MinLength) Process(logits []float32, history []int, _ int) {
	if len(history) < p.Min {
		maskIDs(logits, p.EOS)
	}
}

// String names the processor and its parameters, as Chain.String lists it.
func (p MinLength) String() string { return fmt.Sprintf("MinLength(%d, eos=%v)", p.Min, p.EOS) }

func maskIDs(logits []float32, ids []int) {
	for _, id := range ids {
		if uint(id) < uint(len(logits)) {
			logits[id] = negInf
		}
	}
}

// Temperature is transformers' TemperatureLogitsWarper: logits / T. It
// multiplies by the float32 reciprocal of T, as torch does on CUDA for a
// tensor divided by a Python float (aten/src/ATen/native/cuda/
// BinaryDivTrueKernel.cu); torch on the CPU divides (native/cpu/
// BinaryOpsKernel.cpp, div_true_kernel), which can differ in the last bit.
type Temperature struct {
	// T > 0.
	T float64
}

// Process divides every logit by T.
func (p Temperature) Process(logits []float32, _ []int, _ int) {
	inv := 1 / float32(p.T)
	for i := range logits {
		logits[i] *= inv
	}
}

// String names the processor and its parameters, as Chain.String lists it.
func (p Temperature) String() string { return fmt.Sprintf("Temperature(%g)", p.T) }

// TopK is transformers' TopKLogitsWarper: every logit below the K-th largest
// gets -Inf, so values tied with the K-th largest all stay. The K-th largest
// is found without sorting: with a K-element min-heap in one pass when K is
// small, by radix selection otherwise. Rows must not hold NaN.
type TopK struct {
	// K >= 1; K >= the row length keeps everything.
	K int
}

// heapTopK is the largest K for which TopK uses a heap.
const heapTopK = 1024

// Process keeps the K largest logits and their ties.
func (p TopK) Process(logits []float32, _ []int, _ int) {
	if p.K <= 0 || p.K >= len(logits) {
		return
	}
	s := getScratch()
	defer putScratch(s)
	var kth float32
	if p.K <= heapTopK {
		kth = kthLargestHeap(logits, p.K, s)
	} else {
		kth = kthLargest(logits, p.K, s)
	}
	for i, x := range logits {
		if x < kth {
			logits[i] = negInf
		}
	}
}

// String names the processor and its parameters, as Chain.String lists it.
func (p TopK) String() string { return fmt.Sprintf("TopK(%d)", p.K) }

// TopP is transformers' TopPLogitsWarper (nucleus filtering) with
// min_tokens_to_keep = 1. transformers sorts the row ascending (a stable
// sort), takes the cumulative sum of the softmax in that order and removes
// every token whose cumulative sum is <= 1 - P, comparing in float32, except
// the most probable. So a token survives when the probability mass of itself
// and everything ranked below it exceeds 1 - P; among equal logits the higher
// id ranks higher. This implementation gives the same set, computing the
// probabilities in float64 and rounding the cumulative sums to float32 for
// the comparison, as torch's float32 scores are compared.
//
// It does not sort the row. On a row with few finite logits (after TopK) it
// works on those; on a dense row one pass builds a histogram of the
// probability mass in 0.25-nat bands below the maximum, which fixes the band
// holding the cut. Within that band (or among the few finite logits) a
// mass-weighted quickselect finds the cut in expected linear time.
type TopP struct {
	// P in [0, 1); P >= 1 keeps everything, P <= 0 only the top token.
	P float64
}

// sparseRow is how many finite logits a row may have for TopP and the
// sampler to work on them directly rather than on the whole row.
const sparseRow = 4096

// Process removes the tokens outside the nucleus.
func (p TopP) Process(logits []float32, _ []int, _ int) {
	if p.P >= 1 {
		return
	}
	s := getScratch()
	defer putScratch(s)
	r := scanRow(logits, s.candidates(sparseRow)[:0:sparseRow])
	if r.n <= 1 {
		return
	}
	thr := float32(1 - p.P)
	if thr >= 1 {
		// Every cumulative sum is <= 1: only min_tokens_to_keep survives.
		keepTop(logits, r.m)
		return
	}
	var region []candidate
	var head, z float64
	low := negInf
	if r.sparse() {
		region = r.cands
		for j := range region {
			region[j].w = expNeg(float64(region[j].v) - float64(r.m))
			z += region[j].w
		}
	} else {
		region, head, z, low = nucleusBand(logits, r.m, thr, s)
	}
	cut, found := nucleusCut(region, head, z, thr)
	switch {
	case r.sparse():
		if found {
			for _, c := range region {
				if !rankedBefore(c, cut) {
					logits[c.i] = negInf
				}
			}
		}
	case found:
		for i, x := range logits {
			if x <= cut.v && (x < cut.v || int32(i) <= cut.i) {
				logits[i] = negInf
			}
		}
	default:
		for i, x := range logits {
			if x < low {
				logits[i] = negInf
			}
		}
	}
}

// String names the processor and its parameters, as Chain.String lists it.
func (p TopP) String() string { return fmt.Sprintf("TopP(%g)", p.P) }

// rankedBefore reports whether a precedes b in transformers' ranking read
// from the top: larger logit first, and the larger id first among ties (the
// reverse of a stable ascending sort).
func rankedBefore(a, b candidate) bool { return a.v > b.v || (a.v == b.v && a.i > b.i) }

func byRank(a, b candidate) int {
	if c := cmp.Compare(b.v, a.v); c != 0 {
		return c
	}
	return cmp.Compare(b.i, a.i)
}

// keepTop sets every logit to -Inf except the first-ranked maximum m (its
// last occurrence, per rankedBefore).
func keepTop(logits []float32, m float32) {
	top := -1
	for i, x := range logits {
		if x == m {
			top = i
		}
	}
	for i := range logits {
		if i != top {
			logits[i] = negInf
		}
	}
}

// nucleusCut returns the first token of cands, in ranking order, whose tail
// mass (z - head - mass ranked before it in cands) / z rounds in float32 to
// <= thr: the first token TopP removes. head is the mass ranked before all of
// cands. found is false when every token of cands stays. It reorders cands:
// a quickselect whose pivot decides from the mass ranked above it which side
// holds the cut, until a few dozen tokens remain to sort and walk.
func nucleusCut(cands []candidate, head, z float64, thr float32) (cut candidate, found bool) {
	tailAfter := func(mass float64) float32 { return float32((z - mass) / z) }
	for len(cands) > 32 {
		a, b, c := cands[0], cands[len(cands)/2], cands[len(cands)-1]
		pivot := b
		if rankedBefore(a, b) != rankedBefore(a, c) {
			pivot = a
		} else if rankedBefore(c, a) != rankedBefore(c, b) {
			pivot = c
		}
		// Lomuto partition: cands[:n] are ranked at or before the pivot.
		n, mass := 0, 0.0
		var nextBest candidate
		haveNext := false
		for j, e := range cands {
			if !rankedBefore(pivot, e) {
				cands[n], cands[j] = cands[j], cands[n]
				mass += e.w
				n++
			} else if !haveNext || rankedBefore(e, nextBest) {
				nextBest, haveNext = e, true
			}
		}
		if tailAfter(head+mass) <= thr {
			// The first token after the upper part is removed, so the cut
			// is inside the upper part or is that token.
			cut, found = nextBest, haveNext
			cands = cands[:n]
		} else {
			head += mass
			cands = cands[n:]
		}
	}
	slices.SortFunc(cands, byRank)
	for _, e := range cands {
		if tailAfter(head) <= thr {
			return e, true
		}
		head += e.w
	}
	return cut, found
}

// nucleusBand finds the 0.25-nat band below the maximum m of a dense row in
// which TopP's cut falls. It returns the band's tokens (with weights), the
// mass ranked above the band, the row's total mass z, and the band's lowest
// logit: every token below it is ranked after the whole band.
func nucleusBand(logits []float32, m float32, thr float32, s *scratch) (band []candidate, head, z float64, low float32) {
	const (
		perNat  = 4
		buckets = 128 // 32 nats; the last bucket takes the rest
	)
	bucket := func(x float32) int {
		if d := float64(m) - float64(x); d < buckets/perNat {
			return int(d * perNat)
		}
		return buckets
	}
	var mass [buckets + 1]float64
	var count [buckets + 1]int
	for _, x := range logits {
		if x == negInf {
			continue
		}
		e := expNeg(float64(x) - float64(m))
		z += e
		b := bucket(x)
		mass[b] += e
		count[b]++
	}
	// The first band after which the remaining mass is <= thr holds the cut
	// (that band always has mass: band 0 holds m, and a later empty band
	// would leave the same remaining mass as the band before it).
	cutBand := buckets
	for b := range buckets {
		if float32((z-(head+mass[b]))/z) <= thr {
			cutBand = b
			break
		}
		head += mass[b]
	}
	band = s.candidates(count[cutBand])
	low = float32(math.Inf(1))
	for i, x := range logits {
		if x != negInf && bucket(x) == cutBand {
			band = append(band, candidate{x, int32(i), expNeg(float64(x) - float64(m))})
			low = min(low, x)
		}
	}
	if len(band) == 0 {
		// Only possible for the last bucket when rounding left it no mass:
		// nothing is ranked after it.
		low = negInf
	}
	return band, head, z, low
}

// MinP is transformers' MinPLogitsWarper: tokens whose probability is below
// P times the largest probability get -Inf. p_i < P*p_max is tested as
// logit_i < max + ln P in float64, the same inequality without forming the
// softmax.
type MinP struct {
	// P in [0, 1].
	P float64
}

// Process removes the tokens below the scaled threshold.
func (p MinP) Process(logits []float32, _ []int, _ int) {
	if p.P <= 0 {
		return
	}
	m := negInf
	for _, x := range logits {
		if x > m {
			m = x
		}
	}
	if m == negInf {
		return
	}
	// The smallest float32 t with float64(t) >= max + ln P: x < t exactly
	// when float64(x) < max + ln P.
	lim := float64(m) + math.Log(p.P)
	t := float32(lim)
	if float64(t) < lim {
		t = math.Nextafter32(t, float32(math.Inf(1)))
	}
	for i, x := range logits {
		if x < t {
			logits[i] = negInf
		}
	}
}

// String names the processor and its parameters, as Chain.String lists it.
func (p MinP) String() string { return fmt.Sprintf("MinP(%g)", p.P) }

// TypicalP is transformers' TypicalLogitsWarper (locally typical sampling):
// tokens are ranked by |-log p - H| (H the entropy), ascending with ties by
// id; the cumulative probability in that order is compared (in float32) with
// Mass, and every token ranked after the first one whose cumulative sum
// reaches Mass is removed, except that tokens tied with it in the ranking
// score stay. It sorts every finite token, so it costs O(V log V).
type TypicalP struct {
	// Mass in (0, 1); Mass >= 1 keeps everything.
	Mass float64
}

// Process removes the atypical tokens.
func (p TypicalP) Process(logits []float32, _ []int, _ int) {
	if p.Mass >= 1 {
		return
	}
	s := getScratch()
	defer putScratch(s)
	r := scanRow(logits, s.candidates(len(logits)))
	if r.n <= 1 {
		return
	}
	m, cands, z := r.m, r.cands, 0.0
	for j := range cands {
		cands[j].w = expNeg(float64(cands[j].v) - float64(m))
		z += cands[j].w
	}
	logZ := math.Log(z)
	ent := 0.0
	for _, c := range cands {
		if c.w > 0 {
			lp := float64(c.v) - float64(m) - logZ
			ent -= lp * c.w / z
		}
	}
	// Reuse v as the ranking score |-log p - H|.
	for j := range cands {
		lp := float64(cands[j].v) - float64(m) - logZ
		cands[j].v = float32(math.Abs(-lp - ent))
	}
	slices.SortStableFunc(cands, func(a, b candidate) int { return cmp.Compare(a.v, b.v) })
	mass := float32(p.Mass)
	last := 0
	cum := 0.0
	for _, c := range cands {
		cum += c.w / z
		if float32(cum) >= mass {
			break
		}
		last++
	}
	last = min(last, len(cands)-1)
	limit := cands[last].v
	for j, c := range cands {
		if j > 0 && c.v > limit {
			logits[c.i] = negInf
		}
	}
}

// String names the processor and its parameters, as Chain.String lists it.
func (p TypicalP) String() string { return fmt.Sprintf("TypicalP(%g)", p.Mass) }
