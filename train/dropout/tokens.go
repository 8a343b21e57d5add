package dropout

import (
	"math/rand/v2"
	"slices"

	"github.com/lethe-ml/lethe/data"
)

// MaskTokens is token-level dropout of the input: each token of b is masked
// independently with probability cfg.Rate, drawn from rng, either replaced
// by cfg.MaskID ("replace") or hidden from attention ("attention":
// AttentionMask 0, so no query attends to it; its id is kept). Padding and
// the first token of every example (PositionIDs 0: it carries no label,
// and hidden from attention it would leave its own query nothing to attend
// to) are never masked. Labels are never changed: the model still predicts
// the original tokens. It returns a new batch; b is not changed.
//
// The attention variant is a data-level, all-layer simplification of the
// per-layer connection masking of TLM (Wu et al. 2023), which TLMConfig
// implements in the graph.
func MaskTokens(b *data.Batch, cfg TokenMaskConfig, rng *rand.Rand) *data.Batch {
	out := cloneBatch(b)
	attention := cfg.mode() == MaskAttention
	for i := range b.InputIDs {
		if b.AttentionMask[i] == 0 || b.PositionIDs[i] == 0 {
			continue
		}
		if rng.Float64() >= cfg.Rate {
			continue
		}
		if attention {
			out.AttentionMask[i] = 0
		} else {
			out.InputIDs[i] = int32(cfg.MaskID)
		}
	}
	return out
}

// MaskThought is Masked Thought fine-tuning (Chen et al. 2024, "Masked
// Thought: Simply Masking Partial Reasoning Steps Can Improve Mathematical
// Reasoning Learning of Language Models"): each input token of the
// completion, the tokens with a label (not data.IgnoreIndex), is replaced
// by cfg.MaskID independently with probability cfg.Rate, drawn from rng;
// the prompt, padding and the labels are never changed, so the model
// learns to predict the original reasoning from a partly masked one. It
// returns a new batch; b is not changed.
func MaskThought(b *data.Batch, cfg MaskedThoughtConfig, rng *rand.Rand) *data.Batch {
	out := cloneBatch(b)
	for i, l := range b.Labels {
		if l == data.IgnoreIndex {
			continue
		}
		if rng.Float64() < cfg.Rate {
			out.InputIDs[i] = int32(cfg.MaskID)
		}
	}
	return out
}

// cloneBatch copies b and its slices.
func cloneBatch(b *data.Batch) *data.Batch {
	out := *b
	out.InputIDs = slices.Clone(b.InputIDs)
	out.Labels = slices.Clone(b.Labels)
	out.AttentionMask = slices.Clone(b.AttentionMask)
	out.PositionIDs = slices.Clone(b.PositionIDs)
	out.SegmentIDs = slices.Clone(b.SegmentIDs)
	return &out
}
