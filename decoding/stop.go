package decoding

import (
	"fmt"
	"slices"
)

// StopReason says why a sequence finished.
type StopReason int

const (
	// Running means the sequence has not finished.
	Running StopReason = iota
	// StoppedEOS means it emitted one of the EOS ids.
	StoppedEOS
	// StoppedToken means it emitted one of the extra stop ids.
	StoppedToken
	// StoppedLength means it reached its maximum number of new tokens.
	StoppedLength
)

// String is the reason as a short word: "running", "eos", "stop_token" or
// "length".
func (r StopReason) String() string {
	switch r {
	case Running:
		return "running"
	case StoppedEOS:
		return "eos"
	case StoppedToken:
		return "stop_token"
	case StoppedLength:
		return "length"
	}
	return fmt.Sprintf("StopReason(%d)", int(r))
}

// Stopper tracks which sequences of a batch have finished, as transformers'
// _sample loop does with its stopping criteria: a sequence finishes on the
// step it emits an EOS (or stop) id, which stays in its output, or when it
// has generated its maximum number of tokens; from then on its tokens are
// replaced by the pad id (PadID: pad_token_id, else the first EOS id).
// It is not safe for concurrent use.
type Stopper struct {
	eos, stop []int
	pad       int
	maxNew    []int
	lengths   []int
	reasons   []StopReason
	running   int
}

// NewStopper tracks len(maxNewTokens) sequences; maxNewTokens[i] is sequence
// i's budget of new tokens (GenerationConfig.MaxNewTokensFor), and must be
// > 0. The EOS, stop and pad ids come from cfg.
func NewStopper(cfg GenerationConfig, maxNewTokens []int) (*Stopper, error) {
	for i, n := range maxNewTokens {
		if n <= 0 {
			return nil, fmt.Errorf("decoding: sequence %d has a budget of %d new tokens, want > 0", i, n)
		}
	}
	pad, _ := cfg.PadID()
	b := len(maxNewTokens)
	return &Stopper{
		eos:     slices.Clone(cfg.EOSTokenIDs),
		stop:    slices.Clone(cfg.StopTokenIDs),
		pad:     pad,
		maxNew:  slices.Clone(maxNewTokens),
		lengths: make([]int, b),
		reasons: make([]StopReason, b),
		running: b,
	}, nil
}

// Update takes the tokens picked at this step, one per sequence, in place:
// tokens of sequences that had already finished become the pad id. It then
// marks the sequences this step finishes and reports whether all are done.
func (s *Stopper) Update(tokens []int) (allDone bool, err error) {
	if len(tokens) != len(s.reasons) {
		return false, fmt.Errorf("decoding: %d tokens for a batch of %d sequences", len(tokens), len(s.reasons))
	}
	for i, tok := range tokens {
		if s.reasons[i] != Running {
			if s.pad >= 0 {
				tokens[i] = s.pad
			}
			continue
		}
		s.lengths[i]++
		switch {
		case slices.Contains(s.eos, tok):
			s.reasons[i] = StoppedEOS
		case slices.Contains(s.stop, tok):
			s.reasons[i] = StoppedToken
		case s.lengths[i] >= s.maxNew[i]:
			s.reasons[i] = StoppedLength
		default:
			continue
		}
		s.running--
	}
	return s.running == 0, nil
}

// Done reports whether every sequence has finished.
func (s *Stopper) Done() bool { return s.running == 0 }

// Finished reports whether sequence i has finished.
func (s *Stopper) Finished(i int) bool { return s.reasons[i] != Running }

// Reason returns why sequence i finished, or Running.
func (s *Stopper) Reason(i int) StopReason { return s.reasons[i] }

// Length returns how many tokens sequence i generated, its EOS or stop token
// included and padding excluded.
func (s *Stopper) Length(i int) int { return s.lengths[i] }

// PadID returns the id written after a sequence finished, or -1 when the
// configuration has no pad, EOS or stop id; then only budgets end sequences,
// and a sequence whose budget ran out before the others' keeps the tokens
// picked for it.
func (s *Stopper) PadID() int { return s.pad }
