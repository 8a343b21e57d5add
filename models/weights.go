package models

import (
	"fmt"
	"regexp"
	"strings"
)

// weightSpec is one tensor a family expects, by its Hugging Face name.
type weightSpec struct {
	name  string
	shape []int
	// init is how New initialises it: "normal", "ones", "zeros", or
	// "linear" for a torch Linear weight [out, in], which is normal and is
	// stored transposed (see Model.Param).
	init string
}

// weightSpecs lists the tensors of a model, in the order transformers'
// state_dict lists them. Each family's file defines its own table.
func weightSpecs(c *Config) []weightSpec {
	switch c.Family {
	case FamilyGPT2:
		return gpt2Weights(c)
	case FamilyMixtral:
		return mixtralWeights(c)
	case FamilyGemma:
		return gemmaWeights(c)
	}
	return llamaWeights(c)
}

// ignoredKeys are checkpoint tensors that hold no weights (buffers older
// transformers versions saved) and are skipped, as transformers does.
var ignoredKeys = regexp.MustCompile(`(^|\.)(rotary_emb\.inv_freq|attn\.bias|attn\.masked_bias)$`)

// canonicalName maps a checkpoint key to lethe's name for it: GPT-2
// checkpoints on the Hub often lack the "transformer." prefix.
func canonicalName(c *Config, key string) string {
	if c.Family == FamilyGPT2 && !strings.HasPrefix(key, "transformer.") && key != "lm_head.weight" {
		return "transformer." + key
	}
	return key
}

// decoderAttentionWeights lists a Llama-style layer's attention tensors.
func decoderAttentionWeights(c *Config, p string) []weightSpec {
	H, N, K, D := c.HiddenSize, c.NumHeads, c.NumKVHeads, c.HeadDim
	w := []weightSpec{
		{p + "self_attn.q_proj.weight", []int{N * D, H}, "linear"},
		{p + "self_attn.k_proj.weight", []int{K * D, H}, "linear"},
		{p + "self_attn.v_proj.weight", []int{K * D, H}, "linear"},
		{p + "self_attn.o_proj.weight", []int{H, N * D}, "linear"},
	}
	if c.AttentionBias {
		w = append(w,
			weightSpec{p + "self_attn.q_proj.bias", []int{N * D}, "zeros"},
			weightSpec{p + "self_attn.k_proj.bias", []int{K * D}, "zeros"},
			weightSpec{p + "self_attn.v_proj.bias", []int{K * D}, "zeros"})
	}
	if c.OutputBias {
		w = append(w, weightSpec{p + "self_attn.o_proj.bias", []int{H}, "zeros"})
	}
	if c.QKNorm {
		w = append(w,
			weightSpec{p + "self_attn.q_norm.weight", []int{D}, "ones"},
			weightSpec{p + "self_attn.k_norm.weight", []int{D}, "ones"})
	}
	return w
}

// gatedMLPWeights lists a SwiGLU/GeGLU MLP's tensors under prefix p.
func gatedMLPWeights(c *Config, p string) []weightSpec {
	H, F := c.HiddenSize, c.IntermediateSize
	w := []weightSpec{
		{p + "gate_proj.weight", []int{F, H}, "linear"},
		{p + "up_proj.weight", []int{F, H}, "linear"},
		{p + "down_proj.weight", []int{H, F}, "linear"},
	}
	if c.MLPBias {
		w = append(w,
			weightSpec{p + "gate_proj.bias", []int{F}, "zeros"},
			weightSpec{p + "up_proj.bias", []int{F}, "zeros"},
			weightSpec{p + "down_proj.bias", []int{H}, "zeros"})
	}
	return w
}

// decoderWeights is the common skeleton of Llama-style models: embeddings,
// per layer norms + attention + mlp(layer prefix), final norm, LM head.
func decoderWeights(c *Config, normInit string, mlp func(p string) []weightSpec) []weightSpec {
	w := []weightSpec{{"model.embed_tokens.weight", []int{c.VocabSize, c.HiddenSize}, "normal"}}
	for i := 0; i < c.NumLayers; i++ {
		p := fmt.Sprintf("model.layers.%d.", i)
		w = append(w, weightSpec{p + "input_layernorm.weight", []int{c.HiddenSize}, normInit})
		w = append(w, decoderAttentionWeights(c, p)...)
		w = append(w, weightSpec{p + "post_attention_layernorm.weight", []int{c.HiddenSize}, normInit})
		w = append(w, mlp(p)...)
	}
	w = append(w, weightSpec{"model.norm.weight", []int{c.HiddenSize}, normInit})
	if !c.TieWordEmbeddings {
		w = append(w, weightSpec{"lm_head.weight", []int{c.VocabSize, c.HiddenSize}, "linear"})
	}
	return w
}
