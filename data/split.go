package data

import (
	"math"
	"math/bits"
	"slices"
)

// rowSplit decides which rows a Split keeps. By fraction, row g (its index
// among all files' rows) is in the eval part when perm(g) < round(f*n) for a
// seeded pseudo-random permutation perm of [0, n): the parts have exact sizes,
// are disjoint, and need neither memory per row nor a first pass over the
// data.
type rowSplit struct {
	values []string // by column; nil: not by column
	perm   *permutation
	evalN  uint64
	eval   bool // keep the eval part (else the train part)
}

func newRowSplit(s Split, rows int64) *rowSplit {
	switch {
	case s.Column != "":
		return &rowSplit{values: s.Values}
	case s.Fraction > 0:
		p := newPermutation(uint64(rows), s.Seed)
		return &rowSplit{perm: &p, evalN: uint64(math.Round(s.Fraction * float64(rows))), eval: s.Part == PartEval}
	}
	return &rowSplit{}
}

// keep reports whether the row with global index g and split-column value
// v belongs to the split.
func (s *rowSplit) keep(g int64, v string) bool {
	switch {
	case s.values != nil:
		return slices.Contains(s.values, v)
	case s.perm != nil:
		return (s.perm.at(uint64(g)) < s.evalN) == s.eval
	}
	return true
}

// permutation is a seeded bijection of [0, n) computed one index at a time:
// a 4-round Feistel network on the smallest even number of bits covering n,
// with cycle walking to stay inside [0, n).
type permutation struct {
	n    uint64
	half uint   // bits in each half
	mask uint64 // (1<<half)-1
	keys [4]uint64
}

func newPermutation(n, seed uint64) permutation {
	half := uint(1)
	if n > 1 {
		half = uint(bits.Len64(n-1)+1) / 2
	}
	p := permutation{n: n, half: half, mask: 1<<half - 1}
	g := newRNG(seed)
	for i := range p.keys {
		p.keys[i] = g.next()
	}
	return p
}

// at returns the image of i, which must be below n.
func (p *permutation) at(i uint64) uint64 {
	for x := i; ; {
		l, r := x>>p.half, x&p.mask
		for _, k := range p.keys {
			l, r = r, l^(mix64(r^k)&p.mask)
		}
		x = l<<p.half | r
		if x < p.n {
			return x
		}
	}
}

// rng is a splitmix64 generator. It is written out here, rather than taken
// from math/rand, so that shuffles and resumable positions stay the same
// across Go releases.
type rng struct{ state uint64 }

func newRNG(seed uint64) *rng { return &rng{state: seed} }

func (g *rng) next() uint64 {
	g.state += 0x9e3779b97f4a7c15
	return mix64(g.state)
}

// intn returns a uniform integer in [0, n) (Lemire's multiply-and-reject).
func (g *rng) intn(n int) int {
	bound := uint64(n)
	hi, lo := bits.Mul64(g.next(), bound)
	if lo < bound {
		threshold := -bound % bound
		for lo < threshold {
			hi, lo = bits.Mul64(g.next(), bound)
		}
	}
	return int(hi)
}

// perm returns a uniformly random permutation of [0, n) (Fisher-Yates).
func (g *rng) perm(n int) []int {
	p := make([]int, n)
	for i := range p {
		p[i] = i
	}
	for i := n - 1; i > 0; i-- {
		j := g.intn(i + 1)
		p[i], p[j] = p[j], p[i]
	}
	return p
}

// mix64 is the splitmix64 finaliser, a good 64-bit hash.
func mix64(z uint64) uint64 {
	z = (z ^ z>>30) * 0xbf58476d1ce4e5b9
	z = (z ^ z>>27) * 0x94d049bb133111eb
	return z ^ z>>31
}

// seedFor derives independent seeds for (seed, a, b) triples.
func seedFor(seed uint64, a, b int) uint64 {
	return mix64(mix64(seed^0x6c65746865)+uint64(a)) ^ mix64(uint64(b)+0x9e3779b97f4a7c15)
}
