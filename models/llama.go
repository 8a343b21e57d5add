package models

import (
	"fmt"

	. "github.com/gomlx/gomlx/core/graph"
)

// The Llama family: Llama 2/3 (llama3 rope scaling), Mistral (sliding
// window), Qwen2 (q/k/v biases) and Qwen3 (RMSNorm on q and k heads).
//
//	x = embed_tokens[ids]
//	per layer: x += o_proj(attn(rope(q), rope(k), v)) of input_layernorm(x)
//	           x += down_proj(silu(gate_proj(h)) · up_proj(h)), h = post_attention_layernorm(x)
//	logits = lm_head(norm(x))   (embed_tokens when tied)
var llamaFamily = family{
	embed: func(st *passState, ids, _ *Node) *Node {
		return tokenEmbed(st, ids, "model.embed_tokens.weight")
	},
	layer: func(st *passState, i int, x *Node) *Node {
		return decoderLayer(st, i, x, false, func(h *Node) *Node {
			return gatedMLP(st, fmt.Sprintf("model.layers.%d.mlp.", i), h)
		})
	},
	norm: func(st *passState, x *Node) *Node {
		return rmsNorm(x, st.m.weight(x.Graph(), "model.norm.weight"), st.m.Config.NormEps, false)
	},
	head: lmHead,
}

func llamaWeights(c *Config) []weightSpec {
	return decoderWeights(c, "ones", func(p string) []weightSpec { return gatedMLPWeights(c, p+"mlp.") })
}

// tokenEmbed looks ids [B, T] up in the embedding table [V, H].
func tokenEmbed(st *passState, ids *Node, name string) *Node {
	table := st.m.weight(ids.Graph(), name)
	return Gather(table, InsertAxes(ids, -1)) // [B, T, H]
}

// lmHead maps the final hidden states to logits with lm_head, or with the
// embedding table when the two are tied.
func lmHead(st *passState, x *Node) *Node {
	name := "lm_head"
	if st.m.Config.TieWordEmbeddings {
		name = "model.embed_tokens"
	}
	return st.linear(name, x, false)
}

// decoderLayer is the pre-norm decoder layer shared by the Llama-style
// families; mlp is the feed-forward branch (dense or mixture of experts).
func decoderLayer(st *passState, i int, x *Node, gemmaNorm bool, mlp func(*Node) *Node) *Node {
	g := x.Graph()
	c := st.m.Config
	p := fmt.Sprintf("model.layers.%d.", i)
	h := rmsNorm(x, st.m.weight(g, p+"input_layernorm.weight"), c.NormEps, gemmaNorm)
	x = Add(x, st.residual(i, "attn", selfAttention(st, i, p+"self_attn", h)))
	h = rmsNorm(x, st.m.weight(g, p+"post_attention_layernorm.weight"), c.NormEps, gemmaNorm)
	return Add(x, st.residual(i, "mlp", mlp(h)))
}

// selfAttention is Llama-style attention: q, k, v projections (GQA), the
// optional q/k head norms, rotary embeddings, attention, o_proj.
func selfAttention(st *passState, i int, p string, h *Node) *Node {
	c := st.m.Config
	q := splitHeads(st.linear(p+".q_proj", h, false), c.NumHeads, c.HeadDim)   // [B, T, N, D]
	k := splitHeads(st.linear(p+".k_proj", h, false), c.NumKVHeads, c.HeadDim) // [B, T, K, D]
	v := splitHeads(st.linear(p+".v_proj", h, false), c.NumKVHeads, c.HeadDim)
	if c.QKNorm {
		g := h.Graph()
		q = rmsNorm(q, st.m.weight(g, p+".q_norm.weight"), c.NormEps, false)
		k = rmsNorm(k, st.m.weight(g, p+".k_norm.weight"), c.NormEps, false)
	}
	q = applyRope(q, st.cos, st.sin)
	k = applyRope(k, st.cos, st.sin)
	out := st.attention(i, q, k, v, defaultScale(c.HeadDim)) // [B, T, N·D]
	return st.linear(p+".o_proj", out, false)
}

// gatedMLP is down_proj(act(gate_proj(h)) · up_proj(h)).
func gatedMLP(st *passState, p string, h *Node) *Node {
	act := activations[st.m.Config.Activation]
	gate := act(st.linear(p+"gate_proj", h, false))
	up := st.linear(p+"up_proj", h, false)
	return st.linear(p+"down_proj", Mul(gate, up), false)
}
