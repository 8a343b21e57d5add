// Package models loads Hugging Face causal language models (config.json +
// safetensors) into GoMLX graphs: the Llama family (Llama 2/3, Mistral,
// Qwen2/3, Gemma, Mixtral) and GPT-2. Forward passes give the same logits,
// hidden states and loss as transformers; Generate decodes with a KV cache;
// Export writes a checkpoint transformers loads unchanged.
//
// Weights live in a GoMLX model.Store under their Hugging Face names
// ("model.layers.0.self_attn.q_proj.weight"), so adapters and optimizers
// address them as PEFT and torch do.
package models

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"sort"
	"strings"
)

// Family is the architecture family a model_type belongs to.
type Family string

// The supported families.
const (
	FamilyLlama   Family = "llama"   // llama, mistral, qwen2, qwen3
	FamilyGemma   Family = "gemma"   // gemma
	FamilyMixtral Family = "mixtral" // mixtral (mixture of experts)
	FamilyGPT2    Family = "gpt2"    // gpt2
)

// modelTypes maps config.json's model_type to its family.
var modelTypes = map[string]Family{
	"llama":   FamilyLlama,
	"mistral": FamilyLlama,
	"qwen2":   FamilyLlama,
	"qwen3":   FamilyLlama,
	"gemma":   FamilyGemma,
	"mixtral": FamilyMixtral,
	"gpt2":    FamilyGPT2,
}

// Config is a model's config.json, normalised across families (GPT-2's
// n_embd becomes HiddenSize, and so on). Raw keeps the whole file.
type Config struct {
	ModelType        string
	Family           Family
	VocabSize        int
	HiddenSize       int
	IntermediateSize int
	NumLayers        int
	NumHeads         int
	NumKVHeads       int
	HeadDim          int
	// MaxPositions is max_position_embeddings (n_positions for GPT-2).
	MaxPositions int
	// NormEps is rms_norm_eps, or layer_norm_epsilon for GPT-2.
	NormEps float64
	// Activation is hidden_act / hidden_activation / activation_function.
	Activation        string
	TieWordEmbeddings bool
	// AttentionBias: q/k/v (and o for Llama) projections have biases. Qwen2
	// always has q/k/v biases and no o bias.
	AttentionBias bool
	// OutputBias: o_proj has a bias (Llama's attention_bias).
	OutputBias bool
	MLPBias    bool
	// QKNorm: RMSNorm over each head of q and k before RoPE (Qwen3).
	QKNorm bool
	// SlidingWindow > 0 limits attention to that many tokens (Mistral).
	SlidingWindow int
	// Rope describes rotary position embeddings (nil for GPT-2).
	Rope *RopeConfig
	// NumExperts and ExpertsPerToken configure Mixtral's MoE layers.
	NumExperts      int
	ExpertsPerToken int
	// ScaleAttnWeights: GPT-2 divides attention scores by sqrt(head_dim).
	ScaleAttnWeights bool
	BOSTokenID       []int
	EOSTokenID       []int
	PadTokenID       []int
	// TorchDType is the dtype the checkpoint declares ("float32",
	// "bfloat16", ...), informational.
	TorchDType string
	Raw        map[string]json.RawMessage
}

// RopeConfig is rotary embedding configuration, from either rope_theta +
// rope_scaling (as on the Hub) or transformers 5's rope_parameters.
type RopeConfig struct {
	Theta float64
	// Type is "default", "llama3", "linear" or "dynamic" (NTK).
	Type string
	// Factor scales positions (linear, dynamic) or frequencies (llama3).
	Factor float64
	// Llama 3's frequency-dependent scaling.
	LowFreqFactor, HighFreqFactor float64
	OriginalMaxPositions          int
}

// LoadConfig reads and validates a config.json.
func LoadConfig(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("load config: %w", err)
	}
	cfg, err := ParseConfig(data)
	if err != nil {
		return nil, fmt.Errorf("load config %s: %w", path, err)
	}
	return cfg, nil
}

// ParseConfig parses the contents of a config.json.
func ParseConfig(data []byte) (*Config, error) {
	var raw map[string]json.RawMessage
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if err := dec.Decode(&raw); err != nil {
		return nil, fmt.Errorf("not a config.json: %w", err)
	}
	r := configReader{raw: raw}
	c := &Config{Raw: raw}
	c.ModelType = r.str("model_type", true, "")
	if r.err != nil {
		return nil, r.err
	}
	fam, ok := modelTypes[c.ModelType]
	if !ok {
		known := make([]string, 0, len(modelTypes))
		for k := range modelTypes {
			known = append(known, k)
		}
		sort.Strings(known)
		return nil, fmt.Errorf("model_type %q is not supported (lethe supports %s)", c.ModelType, strings.Join(known, ", "))
	}
	c.Family = fam
	c.TorchDType = r.str("torch_dtype", false, r.str("dtype", false, ""))
	c.VocabSize = r.int("vocab_size", true, 0)
	c.TieWordEmbeddings = r.bool("tie_word_embeddings", false, fam == FamilyGPT2 || fam == FamilyGemma)
	c.BOSTokenID = r.ints("bos_token_id")
	c.EOSTokenID = r.ints("eos_token_id")
	c.PadTokenID = r.ints("pad_token_id")
	if fam == FamilyGPT2 {
		c.HiddenSize = r.int("n_embd", true, 0)
		c.NumLayers = r.int("n_layer", true, 0)
		c.NumHeads = r.int("n_head", true, 0)
		c.NumKVHeads = c.NumHeads
		c.IntermediateSize = r.int("n_inner", false, 0)
		if c.IntermediateSize == 0 {
			c.IntermediateSize = 4 * c.HiddenSize
		}
		c.MaxPositions = r.int("n_positions", true, 0)
		c.NormEps = r.float("layer_norm_epsilon", false, 1e-5)
		c.Activation = r.str("activation_function", false, "gelu_new")
		c.ScaleAttnWeights = r.bool("scale_attn_weights", false, true)
		for _, k := range []string{"scale_attn_by_inverse_layer_idx", "reorder_and_upcast_attn", "add_cross_attention"} {
			if r.bool(k, false, false) {
				r.fail(k, "true is not supported")
			}
		}
	} else {
		c.HiddenSize = r.int("hidden_size", true, 0)
		c.IntermediateSize = r.int("intermediate_size", true, 0)
		c.NumLayers = r.int("num_hidden_layers", true, 0)
		c.NumHeads = r.int("num_attention_heads", true, 0)
		c.NumKVHeads = r.int("num_key_value_heads", false, c.NumHeads)
		c.MaxPositions = r.int("max_position_embeddings", false, 0)
		c.NormEps = r.float("rms_norm_eps", false, 1e-6)
		c.Activation = r.str("hidden_activation", false, r.str("hidden_act", false, "silu"))
		c.MLPBias = r.bool("mlp_bias", false, false)
		switch c.ModelType {
		case "qwen2":
			c.AttentionBias = true
		case "llama":
			c.AttentionBias = r.bool("attention_bias", false, false)
			c.OutputBias = c.AttentionBias
		default:
			c.AttentionBias = r.bool("attention_bias", false, false)
		}
		c.QKNorm = c.ModelType == "qwen3"
		c.SlidingWindow = slidingWindow(&r, c.ModelType)
		c.Rope = ropeConfig(&r)
		if fam == FamilyMixtral {
			c.NumExperts = r.int("num_local_experts", true, 0)
			c.ExpertsPerToken = r.int("num_experts_per_tok", true, 0)
			if c.ExpertsPerToken > c.NumExperts {
				r.fail("num_experts_per_tok", fmt.Sprintf("%d is more than num_local_experts %d", c.ExpertsPerToken, c.NumExperts))
			}
		}
	}
	c.HeadDim = r.int("head_dim", false, 0)
	if c.HeadDim == 0 && c.NumHeads > 0 {
		c.HeadDim = c.HiddenSize / c.NumHeads
	}
	if r.err != nil {
		return nil, r.err
	}
	if err := c.validate(); err != nil {
		return nil, err
	}
	return c, nil
}

// slidingWindow reads the attention window: Mistral and Mixtral use
// sliding_window when set; Qwen only with use_sliding_window.
func slidingWindow(r *configReader, modelType string) int {
	w := r.int("sliding_window", false, 0)
	if strings.HasPrefix(modelType, "qwen") && !r.bool("use_sliding_window", false, false) {
		return 0
	}
	if modelType == "llama" || modelType == "gemma" {
		return 0
	}
	return w
}

// ropeConfig reads rope_parameters (transformers 5) or rope_theta and
// rope_scaling (the Hub's older files).
func ropeConfig(r *configReader) *RopeConfig {
	rc := &RopeConfig{Theta: r.float("rope_theta", false, 10000), Type: "default", Factor: 1}
	var params map[string]json.RawMessage
	for _, key := range []string{"rope_parameters", "rope_scaling"} {
		v, ok := r.raw[key]
		if !ok || isNull(v) {
			continue
		}
		if err := json.Unmarshal(v, &params); err != nil {
			r.fail(key, "want an object: "+err.Error())
			return rc
		}
		sub := configReader{raw: params, prefix: key + "."}
		rc.Theta = sub.float("rope_theta", false, rc.Theta)
		rc.Type = sub.str("rope_type", false, sub.str("type", false, "default"))
		rc.Factor = sub.float("factor", false, 1)
		rc.LowFreqFactor = sub.float("low_freq_factor", false, 1)
		rc.HighFreqFactor = sub.float("high_freq_factor", false, 4)
		rc.OriginalMaxPositions = sub.int("original_max_position_embeddings", false, 0)
		if sub.err != nil && r.err == nil {
			r.err = sub.err
		}
		switch rc.Type {
		case "default", "linear", "llama3", "dynamic":
		default:
			r.fail(key+".rope_type", fmt.Sprintf("%q is not supported (lethe supports default, linear, dynamic, llama3)", rc.Type))
		}
		if rc.Type == "llama3" && rc.OriginalMaxPositions == 0 {
			r.fail(key+".original_max_position_embeddings", "required for llama3 rope scaling")
		}
		break
	}
	return rc
}

func (c *Config) validate() error {
	var errs []error
	check := func(ok bool, field, msg string) {
		if !ok {
			errs = append(errs, fmt.Errorf("%s: %s", field, msg))
		}
	}
	check(c.VocabSize > 0, "vocab_size", "must be positive")
	check(c.HiddenSize > 0, "hidden_size", "must be positive")
	check(c.NumLayers > 0, "num_hidden_layers", "must be positive")
	check(c.NumHeads > 0, "num_attention_heads", "must be positive")
	check(c.NumKVHeads > 0 && c.NumHeads%max(c.NumKVHeads, 1) == 0, "num_key_value_heads",
		fmt.Sprintf("must divide num_attention_heads (%d), got %d", c.NumHeads, c.NumKVHeads))
	check(c.HeadDim > 0 && c.HeadDim%2 == 0 || c.Family == FamilyGPT2 && c.HeadDim > 0, "head_dim", fmt.Sprintf("must be positive and even, got %d", c.HeadDim))
	check(c.IntermediateSize > 0, "intermediate_size", "must be positive")
	check(c.NormEps > 0, "rms_norm_eps", "must be positive")
	if _, ok := activations[c.Activation]; !ok {
		errs = append(errs, fmt.Errorf("hidden_act: %q is not supported (lethe supports %s)", c.Activation, strings.Join(activationNames(), ", ")))
	}
	return errors.Join(errs...)
}

// BOS returns the first BOS id, or -1.
func (c *Config) BOS() int { return firstOr(c.BOSTokenID, -1) }

// Pad returns the first pad id, or -1.
func (c *Config) Pad() int { return firstOr(c.PadTokenID, -1) }

func firstOr(xs []int, def int) int {
	if len(xs) == 0 {
		return def
	}
	return xs[0]
}

// NumParameters returns the number of weights of a model with this config.
func (c *Config) NumParameters() int64 {
	var n int64
	for _, w := range weightSpecs(c) {
		size := int64(1)
		for _, d := range w.shape {
			size *= int64(d)
		}
		n += size
	}
	return n
}

// configReader reads typed fields and keeps the first error, naming the
// field.
type configReader struct {
	raw    map[string]json.RawMessage
	prefix string
	err    error
}

func (r *configReader) fail(field, msg string) {
	if r.err == nil {
		r.err = fmt.Errorf("%s%s: %s", r.prefix, field, msg)
	}
}

func (r *configReader) get(field string, required bool) (json.RawMessage, bool) {
	v, ok := r.raw[field]
	if !ok || isNull(v) {
		if required {
			r.fail(field, "missing")
		}
		return nil, false
	}
	return v, true
}

func (r *configReader) int(field string, required bool, def int) int {
	v, ok := r.get(field, required)
	if !ok {
		return def
	}
	var f float64
	if err := json.Unmarshal(v, &f); err != nil || f != math.Trunc(f) {
		r.fail(field, fmt.Sprintf("want an integer, got %s", v))
		return def
	}
	return int(f)
}

func (r *configReader) float(field string, required bool, def float64) float64 {
	v, ok := r.get(field, required)
	if !ok {
		return def
	}
	var f float64
	if err := json.Unmarshal(v, &f); err != nil {
		r.fail(field, fmt.Sprintf("want a number, got %s", v))
		return def
	}
	return f
}

func (r *configReader) str(field string, required bool, def string) string {
	v, ok := r.get(field, required)
	if !ok {
		return def
	}
	var s string
	if err := json.Unmarshal(v, &s); err != nil {
		r.fail(field, fmt.Sprintf("want a string, got %s", v))
		return def
	}
	return s
}

func (r *configReader) bool(field string, required bool, def bool) bool {
	v, ok := r.get(field, required)
	if !ok {
		return def
	}
	var b bool
	if err := json.Unmarshal(v, &b); err != nil {
		r.fail(field, fmt.Sprintf("want true or false, got %s", v))
		return def
	}
	return b
}

// ints reads an id that may be an integer or a list of integers.
func (r *configReader) ints(field string) []int {
	v, ok := r.get(field, false)
	if !ok {
		return nil
	}
	var one int
	if err := json.Unmarshal(v, &one); err == nil {
		return []int{one}
	}
	var list []int
	if err := json.Unmarshal(v, &list); err != nil {
		r.fail(field, fmt.Sprintf("want an integer or a list of integers, got %s", v))
		return nil
	}
	return list
}

func isNull(v json.RawMessage) bool { return string(bytes.TrimSpace(v)) == "null" }
