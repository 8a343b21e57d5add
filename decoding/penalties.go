package decoding

import (
	"fmt"
	"slices"
)

// FrequencyPresencePenalty is OpenAI's frequency and presence penalties, as
// vLLM applies them (apply_penalties in vllm/model_executor/layers/utils.py,
// "We follow the definition in OpenAI API"): with c[t] the number of times
// token t occurs among the generated ids,
//
//	logit[t] −= c[t]·Frequency
//	logit[t] −= Presence   if c[t] > 0
//
// Only the generated ids count, not the prompt: they are the last step ids
// of history (see Processor), so the processor needs no prompt length. (This
// is unlike RepetitionPenalty, which transformers and vLLM apply to prompt
// and output ids alike.) The arithmetic is float32 as in vLLM:
// float32(Frequency)·c[t] is rounded before it is subtracted, and the
// presence term is subtracted separately. Masked tokens (-Inf) stay masked.
//
// Positive values discourage repeats, negative ones encourage them; OpenAI
// accepts -2 to 2. transformers has no such processor; vLLM runs these after
// its repetition penalty and before temperature.
type FrequencyPresencePenalty struct {
	// Frequency is subtracted once per occurrence.
	Frequency float64
	// Presence is subtracted once from every token that occurs.
	Presence float64
}

// Process applies the penalties for the generated ids history[len(history)-step:].
func (p FrequencyPresencePenalty) Process(logits []float32, history []int, step int) {
	if p.Frequency == 0 && p.Presence == 0 {
		return
	}
	step = min(max(step, 0), len(history))
	gen := history[len(history)-step:]
	if len(gen) == 0 {
		return
	}
	s := getScratch()
	defer putScratch(s)
	ids := s.uints(len(gen))
	for _, id := range gen {
		if uint(id) < uint(len(logits)) {
			ids = append(ids, uint32(id))
		}
	}
	slices.Sort(ids)
	freq, pres := float32(p.Frequency), float32(p.Presence)
	for j := 0; j < len(ids); {
		k := j + 1
		for k < len(ids) && ids[k] == ids[j] {
			k++
		}
		id := ids[j]
		logits[id] -= float32(freq * float32(k-j)) // rounded product, no fused multiply-add
		logits[id] -= pres
		j = k
	}
	s.u32 = ids[:0]
}

// String names the processor and its parameters.
func (p FrequencyPresencePenalty) String() string {
	return fmt.Sprintf("FrequencyPresencePenalty(frequency=%g, presence=%g)", p.Frequency, p.Presence)
}
