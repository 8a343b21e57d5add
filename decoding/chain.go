package decoding

import (
	"fmt"
	"strings"
)

// Chain is the list of processors transformers 5 builds for a configuration,
// in its order. It is immutable and safe for concurrent use.
type Chain struct {
	procs []Processor
	vocab int
}

// NewChain builds the processors transformers 5's
// GenerationMixin._get_logits_processor builds for cfg in greedy or
// multinomial-sampling mode, in the same order:
//
//	always:        RepetitionPenalty (repetition_penalty != 1)
//	               MinLength         (min_length > 0 and EOS ids exist)
//	               MinNewTokens      (min_new_tokens > 0 and EOS ids exist)
//	do_sample:     Temperature       (temperature != 1)
//	               TopK              (top_k != 0)
//	               TopP              (top_p < 1)
//	               MinP              (min_p set; 0 is a no-op here)
//	               TypicalP          (typical_p < 1)
//
// When min_new_tokens is set transformers also sets min_length to prompt
// length + min_new_tokens, so both processors mask the same steps; NewChain
// then builds MinNewTokens only. The processors transformers builds between
// these for keys lethe does not implement are listed by cfg.Warnings.
//
// vocabSize is the length of the logits rows (the model's output size, which
// may exceed the tokenizer's). EOS and stop ids must lie inside it.
func NewChain(cfg GenerationConfig, vocabSize int) (*Chain, error) {
	if vocabSize <= 0 {
		return nil, fmt.Errorf("decoding: vocabulary size must be > 0, got %d", vocabSize)
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	end := cfg.endIDs()
	for _, id := range end {
		if id >= vocabSize {
			return nil, fmt.Errorf("decoding: end-of-sequence or stop id %d is outside the vocabulary of %d", id, vocabSize)
		}
	}
	if pad, ok := cfg.PadID(); ok && pad >= vocabSize {
		return nil, fmt.Errorf("decoding: pad id %d is outside the vocabulary of %d", pad, vocabSize)
	}
	c := &Chain{vocab: vocabSize}
	if cfg.RepetitionPenalty != 1 {
		c.procs = append(c.procs, RepetitionPenalty{Penalty: cfg.RepetitionPenalty})
	}
	if len(end) > 0 {
		switch {
		case cfg.MinNewTokens > 0:
			c.procs = append(c.procs, MinNewTokens{Min: cfg.MinNewTokens, EOS: end})
		case cfg.MinLength > 0:
			c.procs = append(c.procs, MinLength{Min: cfg.MinLength, EOS: end})
		}
	}
	if cfg.DoSample {
		if cfg.Temperature != 1 {
			c.procs = append(c.procs, Temperature{T: cfg.Temperature})
		}
		if cfg.TopK != 0 {
			c.procs = append(c.procs, TopK{K: cfg.TopK})
		}
		if cfg.TopP < 1 {
			c.procs = append(c.procs, TopP{P: cfg.TopP})
		}
		if cfg.MinP > 0 {
			c.procs = append(c.procs, MinP{P: cfg.MinP})
		}
		if cfg.TypicalP < 1 {
			c.procs = append(c.procs, TypicalP{Mass: cfg.TypicalP})
		}
	}
	return c, nil
}

// Processors returns the chain's processors in the order they run.
func (c *Chain) Processors() []Processor { return append([]Processor(nil), c.procs...) }

// VocabSize is the row length the chain was built for.
func (c *Chain) VocabSize() int { return c.vocab }

// Process runs every processor on one row in order. history is prompt +
// generated ids, step the number of generated ids (see Processor).
func (c *Chain) Process(logits []float32, history []int, step int) error {
	if len(logits) != c.vocab {
		return fmt.Errorf("decoding: logits row has %d entries, the chain expects %d", len(logits), c.vocab)
	}
	if step < 0 || step > len(history) {
		return fmt.Errorf("decoding: step %d does not fit a history of %d ids", step, len(history))
	}
	for pos, id := range history {
		if uint(id) >= uint(c.vocab) {
			return fmt.Errorf("decoding: history id %d at position %d is outside the vocabulary of %d", id, pos, c.vocab)
		}
	}
	for _, p := range c.procs {
		p.Process(logits, history, step)
	}
	return nil
}

// String lists the processors, for logs: "RepetitionPenalty(1.05) →
// Temperature(0.7) → TopK(20) → TopP(0.8)", or "none".
func (c *Chain) String() string {
	if len(c.procs) == 0 {
		return "none"
	}
	parts := make([]string, len(c.procs))
	for i, p := range c.procs {
		parts[i] = fmt.Sprint(p)
	}
	return strings.Join(parts, " → ")
}
