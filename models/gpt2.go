package models

import (
	"fmt"
	"math"

	. "github.com/gomlx/gomlx/core/graph"
)

// GPT-2: learned positions, LayerNorm, fused q/k/v projection (c_attn),
// Conv1D weights stored [in, out], tanh GELU, tied LM head.
//
//	x = wte[ids] + wpe[positions]
//	per block: x += c_proj(attn(split(c_attn(ln_1(x)))))
//	           x += mlp.c_proj(gelu(mlp.c_fc(ln_2(x))))
//	logits = ln_f(x) @ wteᵀ
var gpt2Family = family{
	embed: func(st *passState, ids, positions *Node) *Node {
		tok := tokenEmbed(st, ids, "transformer.wte.weight")
		pos := Gather(st.m.weight(ids.Graph(), "transformer.wpe.weight"), InsertAxes(positions, -1))
		return Add(tok, pos)
	},
	layer: gpt2Block,
	norm: func(st *passState, x *Node) *Node {
		g := x.Graph()
		return layerNorm(x, st.m.weight(g, "transformer.ln_f.weight"), st.m.weight(g, "transformer.ln_f.bias"), st.m.Config.NormEps)
	},
	head: func(st *passState, x *Node) *Node {
		name := "lm_head"
		if st.m.Config.TieWordEmbeddings {
			name = "transformer.wte"
		}
		return st.linear(name, x, false)
	},
}

func gpt2Weights(c *Config) []weightSpec {
	H, F := c.HiddenSize, c.IntermediateSize
	w := []weightSpec{
		{"transformer.wte.weight", []int{c.VocabSize, H}, "normal"},
		{"transformer.wpe.weight", []int{c.MaxPositions, H}, "normal"},
	}
	for i := 0; i < c.NumLayers; i++ {
		p := fmt.Sprintf("transformer.h.%d.", i)
		w = append(w,
			weightSpec{p + "ln_1.weight", []int{H}, "ones"},
			weightSpec{p + "ln_1.bias", []int{H}, "zeros"},
			weightSpec{p + "attn.c_attn.weight", []int{H, 3 * H}, "normal"},
			weightSpec{p + "attn.c_attn.bias", []int{3 * H}, "zeros"},
			weightSpec{p + "attn.c_proj.weight", []int{H, H}, "normal"},
			weightSpec{p + "attn.c_proj.bias", []int{H}, "zeros"},
			weightSpec{p + "ln_2.weight", []int{H}, "ones"},
			weightSpec{p + "ln_2.bias", []int{H}, "zeros"},
			weightSpec{p + "mlp.c_fc.weight", []int{H, F}, "normal"},
			weightSpec{p + "mlp.c_fc.bias", []int{F}, "zeros"},
			weightSpec{p + "mlp.c_proj.weight", []int{F, H}, "normal"},
			weightSpec{p + "mlp.c_proj.bias", []int{H}, "zeros"})
	}
	w = append(w,
		weightSpec{"transformer.ln_f.weight", []int{H}, "ones"},
		weightSpec{"transformer.ln_f.bias", []int{H}, "zeros"})
	if !c.TieWordEmbeddings {
		w = append(w, weightSpec{"lm_head.weight", []int{c.VocabSize, H}, "linear"})
	}
	return w
}

func gpt2Block(st *passState, i int, x *Node) *Node {
	g := x.Graph()
	c := st.m.Config
	p := fmt.Sprintf("transformer.h.%d.", i)
	H, N := c.HiddenSize, c.NumHeads
	D := H / N
	h := layerNorm(x, st.m.weight(g, p+"ln_1.weight"), st.m.weight(g, p+"ln_1.bias"), c.NormEps)
	qkv := st.linear(p+"attn.c_attn", h, true) // [B, T, 3H]
	q := splitHeads(SliceAxis(qkv, -1, AxisRange(0, H)), N, D)
	k := splitHeads(SliceAxis(qkv, -1, AxisRange(H, 2*H)), N, D)
	v := splitHeads(SliceAxis(qkv, -1, AxisRange(2*H, 3*H)), N, D)
	scale := 1.0
	if c.ScaleAttnWeights {
		scale = 1 / math.Sqrt(float64(D))
	}
	a := st.linear(p+"attn.c_proj", st.attention(i, q, k, v, scale), true)
	x = Add(x, st.residual(i, "attn", a))
	h = layerNorm(x, st.m.weight(g, p+"ln_2.weight"), st.m.weight(g, p+"ln_2.bias"), c.NormEps)
	act := activations[c.Activation]
	m := st.linear(p+"mlp.c_proj", act(st.linear(p+"mlp.c_fc", h, true)), true)
	return Add(x, st.residual(i, "mlp", m))
}
