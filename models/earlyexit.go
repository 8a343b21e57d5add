package models

import (
	"fmt"

	. "github.com/gomlx/gomlx/core/graph"
)

// Early exit (LayerSkip, Elhoushi et al. 2024): every layer shares the
// model's final norm and LM head, so the output of any layer gives logits.
// Options.ExitLayer runs the first layers only, Options.LayerLogits reads
// several layers' logits off one pass (DoLa), Options.StartLayer with
// Inputs.Hidden finishes a pass whose first layers ran elsewhere
// (self-speculative verification, Generator.GenerateSpeculative), and
// train.EarlyExitLoss trains the layers to exit early.

// Logits applies the model's final norm and LM head to hidden states
// [B, T, H] — the raw output of a layer, as Outputs.Hidden holds it for
// every layer but the last —, giving logits [B, T, V]: the logits of an
// early exit there. hooks.Linear and hooks.Weight apply to the head.
func (m *Model) Logits(h *Node, hooks Hooks) *Node {
	if dims := h.Shape().Dimensions; len(dims) != 3 || dims[2] != m.Config.HiddenSize {
		panic(fmt.Errorf("hidden states must be [batch, tokens, %d], got shape %s", m.Config.HiddenSize, h.Shape()))
	}
	st := &passState{m: m, opts: &Options{Hooks: hooks}}
	arch := m.arch()
	return arch.head(st, arch.norm(st, ConvertDType(h, m.DType)))
}

// CausalLMLoss is the loss Forward computes with Inputs.Labels, for logits
// [B, T, V] computed elsewhere (Outputs.LayerLogits): transformers'
// causal-LM loss, labels [B, T] shifted inside (token t predicts t+1),
// -100 ignored, the mean over the predicted tokens in float32, and their
// number.
func CausalLMLoss(logits, labels *Node) (loss, count *Node) { return causalLMLoss(logits, labels) }
