package decoding

import (
	"math"
	"sync"
)

var negInf = float32(math.Inf(-1))

// expNeg returns e^x for x <= 0 (x may be -Inf) within a few ulp of
// math.Exp and faster: results below the smallest normal float64
// (x < -708.39) flush to 0, which changes no probability that a float64
// softmax can tell apart from 0 anyway. Inputs > 0 are not expected.
//
// It is the table method: x = (64m + j)·ln2/64 + r with |r| <= ln2/128, so
// e^x = 2^m · 2^(j/64) · e^r, and a degree-5 Taylor polynomial gives e^r - 1
// with truncation error below 4e-17.
func expNeg(x float64) float64 {
	if !(x >= -708.39) { // also -Inf and NaN
		return 0
	}
	const (
		invLn2x64 = 64 / math.Ln2
		shifter   = 0x1.8p52 // adding it rounds to an integer held in the low mantissa bits
		// fdlibm's split of ln 2 divided by 64: kf*ln2by64Hi is exact for |kf| < 2^21.
		ln2by64Hi = 6.93147180369123816490e-01 / 64
		ln2by64Lo = 1.90821492927058770002e-10 / 64
	)
	t := x*invLn2x64 + shifter
	kf := t - shifter
	k := int64(math.Float64bits(t) - math.Float64bits(shifter))
	r := x - kf*ln2by64Hi - kf*ln2by64Lo
	p := r * (1 + r*(1.0/2+r*(1.0/6+r*(1.0/24+r*(1.0/120)))))
	s := math.Float64frombits(math.Float64bits(exp2Table[k&63]) + uint64(k>>6)<<52)
	return s + s*p
}

// exp2Table[j] = 2^(j/64).
var exp2Table = func() (t [64]float64) {
	for j := range t {
		t[j] = math.Exp2(float64(j) / 64)
	}
	return t
}()

const negInfBits = 0xff800000

// rowScan is what one pass over a row learns: its maximum, how many entries
// are not -Inf, those entries themselves while there are at most the
// capacity of cands, and the first NaN or +Inf.
type rowScan struct {
	m     float32     // largest value; -Inf when n is 0
	n     int         // entries that are not -Inf
	cands []candidate // the entries that are not -Inf (w unset), if n <= cap(cands)
	bad   int         // index of the first NaN or +Inf, or -1
}

// scanRow makes one pass over row, collecting up to cap(cands) candidates
// into cands[:0]. Branches are arranged to be predictable both on rows that
// are mostly -Inf (after TopK) and on dense ones.
func scanRow(row []float32, cands []candidate) rowScan {
	r := rowScan{m: negInf, cands: cands[:0], bad: -1}
	limit := cap(cands)
	for i, x := range row {
		bits := math.Float32bits(x)
		if bits == negInfBits {
			continue
		}
		r.n++
		if bits&0x7f800000 == 0x7f800000 { // NaN or +Inf
			if r.bad < 0 {
				r.bad = i
			}
			continue
		}
		if x > r.m {
			r.m = x
		}
		if r.n <= limit {
			r.cands = append(r.cands, candidate{v: x, i: int32(i)})
		}
	}
	if r.n > limit {
		r.cands = r.cands[:0]
	}
	return r
}

// sparse reports whether scanRow collected every entry that is not -Inf.
func (r rowScan) sparse() bool { return r.n <= cap(r.cands) }

// candidate is one token of a row being ranked: its logit, its id and its
// unnormalised probability exp(logit - max).
type candidate struct {
	v float32
	i int32
	w float64
}

// scratch holds reusable buffers for one call of a processor or sampler, so
// that processors stay safe for concurrent use without allocating per row.
type scratch struct {
	cands []candidate
	f64   []float64
	f32   []float32
	u32   []uint32
}

var scratchPool = sync.Pool{New: func() any { return new(scratch) }}

func getScratch() *scratch { return scratchPool.Get().(*scratch) }

func putScratch(s *scratch) { scratchPool.Put(s) }

// candidates returns an empty slice with room for at least n candidates.
func (s *scratch) candidates(n int) []candidate {
	if cap(s.cands) < n {
		s.cands = make([]candidate, 0, n)
	}
	return s.cands[:0]
}

func (s *scratch) floats(n int) []float64 {
	if cap(s.f64) < n {
		s.f64 = make([]float64, n)
	}
	return s.f64[:n]
}

func (s *scratch) floats32(n int) []float32 {
	if cap(s.f32) < n {
		s.f32 = make([]float32, n)
	}
	return s.f32[:n]
}

func (s *scratch) uints(n int) []uint32 {
	if cap(s.u32) < n {
		s.u32 = make([]uint32, 0, n)
	}
	return s.u32[:0]
}

// sortableKey maps a float32 to a uint32 whose unsigned order is the float
// order (-Inf lowest, +Inf highest, NaN beyond them as torch.topk ranks it).
func sortableKey(f float32) uint32 {
	b := math.Float32bits(f)
	return b ^ (uint32(int32(b)>>31) | 0x80000000)
}

func keyToFloat(k uint32) float32 {
	if k&0x80000000 != 0 {
		return math.Float32frombits(k &^ 0x80000000)
	}
	return math.Float32frombits(^k)
}

// kthLargestHeap returns the k-th largest value of row (1 <= k <=
// len(row)) like kthLargest, keeping the k largest values seen in a min-heap:
// after the first few thousand entries almost every value loses one
// predictable comparison with the heap's root.
func kthLargestHeap(row []float32, k int, s *scratch) float32 {
	h := s.floats32(k)
	copy(h, row[:k])
	for i := k/2 - 1; i >= 0; i-- {
		siftDown(h, i)
	}
	for _, x := range row[k:] {
		if x > h[0] {
			h[0] = x
			siftDown(h, 0)
		}
	}
	return h[0]
}

func siftDown(h []float32, i int) {
	for {
		c := 2*i + 1
		if c >= len(h) {
			return
		}
		if c+1 < len(h) && h[c+1] < h[c] {
			c++
		}
		if !(h[c] < h[i]) {
			return
		}
		h[i], h[c] = h[c], h[i]
		i = c
	}
}

// kthLargest returns the k-th largest value of row (1 <= k <= len(row)),
// counting repeated values separately, as torch.topk(row, k).values[-1].
// It is a three-level radix selection (11, 11 and 10 bits of the sortable
// key): one histogram pass over the row, one pass collecting the bucket that
// holds the answer, then passes over that bucket only.
func kthLargest(row []float32, k int, s *scratch) float32 {
	var hist [2048]int32
	for _, x := range row {
		hist[sortableKey(x)>>21]++
	}
	rem := int32(k)
	b := 2047
	for ; b > 0 && hist[b] < rem; b-- {
		rem -= hist[b]
	}
	keys := s.uints(int(hist[b]))
	for _, x := range row {
		if kk := sortableKey(x); kk>>21 == uint32(b) {
			keys = append(keys, kk)
		}
	}
	prefix := uint32(b) << 21
	for _, level := range [2]struct{ shift, bits uint32 }{{10, 11}, {0, 10}} {
		mask := uint32(1)<<level.bits - 1
		hist = [2048]int32{}
		for _, kk := range keys {
			hist[kk>>level.shift&mask]++
		}
		b = int(mask)
		for ; b > 0 && hist[b] < rem; b-- {
			rem -= hist[b]
		}
		prefix |= uint32(b) << level.shift
		kept := keys[:0]
		for _, kk := range keys {
			if kk>>level.shift&mask == uint32(b) {
				kept = append(kept, kk)
			}
		}
		keys = kept
	}
	s.u32 = keys[:0]
	return keyToFloat(prefix)
}
