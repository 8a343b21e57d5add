package models

import (
	"fmt"
	"math"

	"github.com/gomlx/compute/dtypes"
	. "github.com/gomlx/gomlx/core/graph"
)

// Gemma (v1) is the Llama layout with three differences: embeddings are
// scaled by √hidden, RMSNorm multiplies by (1 + w), and the MLP uses
// tanh-approximated GELU. Embeddings are tied.
var gemmaFamily = family{
	embed: func(st *passState, ids, _ *Node) *Node {
		x := tokenEmbed(st, ids, "model.embed_tokens.weight")
		// transformers rounds the factor to the hidden dtype first.
		scale := math.Sqrt(float64(st.m.Config.HiddenSize))
		if x.DType() == dtypes.BFloat16 {
			scale = float64(roundToBF16(float32(scale)))
		}
		return MulScalar(x, scale)
	},
	layer: func(st *passState, i int, x *Node) *Node {
		return decoderLayer(st, i, x, true, func(h *Node) *Node {
			return gatedMLP(st, fmt.Sprintf("model.layers.%d.mlp.", i), h)
		})
	},
	norm: func(st *passState, x *Node) *Node {
		return rmsNorm(x, st.m.weight(x.Graph(), "model.norm.weight"), st.m.Config.NormEps, true)
	},
	head: lmHead,
}

// gemmaWeights: Gemma's norm weights are offsets from 1 (initialised to 0).
func gemmaWeights(c *Config) []weightSpec {
	return decoderWeights(c, "zeros", func(p string) []weightSpec { return gatedMLPWeights(c, p+"mlp.") })
}

func roundToBF16(f float32) float32 {
	b := math.Float32bits(f)
	b = (b + 0x7FFF + (b>>16)&1) &^ 0xFFFF
	return math.Float32frombits(b)
}
