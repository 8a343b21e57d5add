package decoding

import (
	"errors"
	"fmt"
	"math/rand/v2"
)

// Argmax returns the index of the largest logit, the first one among ties,
// as torch.argmax does. A NaN counts as larger than everything (torch.argmax
// propagates NaN), so the first NaN wins. It returns -1 for an empty row and
// 0 for a row of -Inf only, again as torch.argmax.
func Argmax(logits []float32) int {
	if len(logits) == 0 {
		return -1
	}
	best, bv := 0, logits[0]
	if bv != bv {
		return 0
	}
	for i, x := range logits[1:] {
		if x > bv {
			best, bv = i+1, x
		} else if x != x {
			return i + 1
		}
	}
	return best
}

// ErrNoCandidate is returned when sampling from a row in which every token
// was filtered out (all -Inf).
var ErrNoCandidate = errors.New("decoding: every token was filtered out (all logits are -Inf)")

// Softmax writes softmax(logits) into dst (grown as needed) and returns it,
// computed in float64 after subtracting the maximum, so no finite row
// overflows. -Inf logits get probability 0. A row with NaN or +Inf, or with
// no finite value, is an error.
func Softmax(dst []float64, logits []float32) ([]float64, error) {
	r := scanRow(logits, nil)
	if err := r.err(logits); err != nil {
		return nil, err
	}
	if cap(dst) < len(logits) {
		dst = make([]float64, len(logits))
	}
	dst = dst[:len(logits)]
	z := 0.0
	for i, x := range logits {
		dst[i] = expNeg(float64(x) - float64(r.m))
		z += dst[i]
	}
	inv := 1 / z
	for i := range dst {
		dst[i] *= inv
	}
	return dst, nil
}

// err reports a row that cannot be sampled from: one holding NaN or +Inf,
// or only -Inf.
func (r rowScan) err(logits []float32) error {
	switch {
	case r.bad >= 0 && logits[r.bad] != logits[r.bad]:
		return fmt.Errorf("decoding: logit %d is NaN", r.bad)
	case r.bad >= 0:
		return fmt.Errorf("decoding: logit %d is +Inf", r.bad)
	case r.n == 0:
		return ErrNoCandidate
	}
	return nil
}

// SampleLogits draws one token from softmax(logits) using one uniform number
// from rng (always exactly one, so a stream advances the same way whatever
// the row holds). Tokens with probability 0 (-Inf logits, or underflow in
// float64) are never drawn. It is torch.multinomial(softmax(scores), 1) up to
// the random stream. Rows with few finite logits (after TopK or TopP) cost
// one pass; dense rows three.
func SampleLogits(logits []float32, rng *rand.Rand) (int, error) {
	u := rng.Float64()
	s := getScratch()
	defer putScratch(s)
	r := scanRow(logits, s.candidates(sparseRow)[:0:sparseRow])
	if err := r.err(logits); err != nil {
		return 0, err
	}
	if r.sparse() {
		z := 0.0
		for j := range r.cands {
			r.cands[j].w = expNeg(float64(r.cands[j].v) - float64(r.m))
			z += r.cands[j].w
		}
		return pick(r.cands, u*z), nil
	}
	w := s.floats(len(logits))
	z := 0.0
	for i, x := range logits {
		w[i] = expNeg(float64(x) - float64(r.m))
		z += w[i]
	}
	target := u * z
	cum, last := 0.0, -1
	for i, wi := range w {
		if wi > 0 {
			cum += wi
			last = i
			if cum > target {
				return i, nil
			}
		}
	}
	return last, nil
}

// pick returns the id of the candidate whose cumulative-weight interval
// holds target, skipping zero weights; rounding past the end picks the last
// candidate with weight.
func pick(cands []candidate, target float64) int {
	cum, last := 0.0, -1
	for _, c := range cands {
		if c.w > 0 {
			cum += c.w
			last = int(c.i)
			if cum > target {
				return last
			}
		}
	}
	return last
}

// Sampler turns processed logits into tokens: greedy (Argmax) or sampling
// from the softmax with one random stream per sequence. Streams derive from
// (Seed, sequence id) only, so a sequence's samples do not depend on which
// other sequences share its batch or in which order rows are processed.
type Sampler struct {
	// DoSample selects sampling; false is greedy decoding.
	DoSample bool
	// Seed is the run's seed.
	Seed uint64
}

// NewSampler returns the sampler cfg asks for (cfg.DoSample) with the given
// seed.
func NewSampler(cfg GenerationConfig, seed uint64) Sampler {
	return Sampler{DoSample: cfg.DoSample, Seed: seed}
}

// Stream returns the token picker of one sequence. seq must identify the
// sequence across the whole run (e.g. the prompt's index in the dataset,
// times the number of samples per prompt, plus the sample's index), not
// its slot in the current batch. Each Stream is used by one goroutine at a
// time; different Streams are independent.
func (s Sampler) Stream(seq uint64) *Stream {
	st := &Stream{doSample: s.DoSample}
	if s.DoSample {
		st.rng = rand.New(NewPCG(s.Seed, seq))
	}
	return st
}

// NewPCG returns the PCG source of sequence seq under seed: both PCG seeds
// are SplitMix64 hashes of (seed, seq), so nearby seeds and sequence ids give
// unrelated streams.
func NewPCG(seed, seq uint64) *rand.PCG {
	a := splitMix64(seed ^ splitMix64(seq))
	b := splitMix64(a ^ 0xD1B54A32D192ED03)
	return rand.NewPCG(a, b)
}

func splitMix64(x uint64) uint64 {
	x += 0x9E3779B97F4A7C15
	x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9
	x = (x ^ (x >> 27)) * 0x94D049BB133111EB
	return x ^ (x >> 31)
}

// Stream picks the tokens of one sequence.
type Stream struct {
	doSample bool
	rng      *rand.Rand
}

// Next returns the next token for a row of processed logits: Argmax when
// greedy, else a draw from the softmax (SampleLogits). Greedy decoding of an
// empty row is an error; greedy decoding of a row with NaN follows
// torch.argmax (see Argmax).
func (st *Stream) Next(logits []float32) (int, error) {
	if !st.doSample {
		if len(logits) == 0 {
			return 0, errors.New("decoding: empty logits row")
		}
		return Argmax(logits), nil
	}
	return SampleLogits(logits, st.rng)
}
