package models

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/gomlx/compute/dtypes"

	"github.com/lethe-ml/lethe/models/safetensors"
)

// ExportOptions configure Export.
type ExportOptions struct {
	// MaxShardBytes splits the weights into model-0000i-of-0000n.safetensors
	// files with an index when they exceed it, as save_pretrained does;
	// 0 means safetensors.DefaultMaxShardBytes.
	MaxShardBytes int64
}

// Export writes the model as a Hugging Face checkpoint that transformers
// loads unchanged: config.json (the original one for a loaded model) and
// model.safetensors with the checkpoint's own tensor names and layouts
// (GPT-2's Conv1D weights stay [in, out]), in the stored weight dtype. Each
// file is written to a temporary file and renamed.
func (m *Model) Export(dir string, opts ExportOptions) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("export: %w", err)
	}
	var ts []safetensors.Tensor
	var total int64
	for _, name := range m.order {
		v := m.params[name]
		val, err := v.Value()
		if err != nil {
			return fmt.Errorf("export %s: tensor %q: %w", dir, name, err)
		}
		if m.transposed[name] {
			val = transposeTensor(val) // back to torch's [out, in]
		}
		dt, ok := map[dtypes.DType]safetensors.DType{
			dtypes.Float32: safetensors.F32, dtypes.BFloat16: safetensors.BF16, dtypes.Float16: safetensors.F16,
		}[val.DType()]
		if !ok {
			return fmt.Errorf("export %s: tensor %q has dtype %s", dir, name, val.DType())
		}
		var data []byte
		if err := val.ConstBytes(func(b []byte) { data = bytes.Clone(b) }); err != nil {
			return fmt.Errorf("export %s: tensor %q: %w", dir, name, err)
		}
		ts = append(ts, safetensors.Tensor{Name: name, DType: dt, Shape: val.Shape().Dimensions, Data: data})
		total += int64(len(data))
	}
	meta := map[string]string{"format": "pt"}
	limit := opts.MaxShardBytes
	if limit <= 0 {
		limit = safetensors.DefaultMaxShardBytes
	}
	var err error
	if total > limit {
		err = safetensors.WriteSharded(dir, ts, meta, limit)
	} else {
		err = safetensors.Write(filepath.Join(dir, "model.safetensors"), ts, meta)
	}
	if err != nil {
		return fmt.Errorf("export: %w", err)
	}
	cfg, err := m.Config.MarshalJSONFile()
	if err != nil {
		return fmt.Errorf("export %s: %w", dir, err)
	}
	if err := writeFileAtomic(filepath.Join(dir, "config.json"), cfg); err != nil {
		return fmt.Errorf("export: %w", err)
	}
	return nil
}

// MarshalJSONFile renders the config as transformers writes config.json
// (keys sorted, two-space indent, trailing newline). A parsed config is
// written back with all its original fields.
func (c *Config) MarshalJSONFile() ([]byte, error) {
	raw := c.Raw
	if raw == nil {
		raw = c.hubFields()
	}
	out, err := json.MarshalIndent(raw, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(out, '\n'), nil
}

// hubFields are the config.json fields of a config made in code (New).
func (c *Config) hubFields() map[string]json.RawMessage {
	f := map[string]any{
		"model_type":          c.ModelType,
		"vocab_size":          c.VocabSize,
		"tie_word_embeddings": c.TieWordEmbeddings,
		"torch_dtype":         "float32",
	}
	if len(c.BOSTokenID) == 1 {
		f["bos_token_id"] = c.BOSTokenID[0]
	}
	if len(c.EOSTokenID) == 1 {
		f["eos_token_id"] = c.EOSTokenID[0]
	} else if len(c.EOSTokenID) > 1 {
		f["eos_token_id"] = c.EOSTokenID
	}
	if c.Family == FamilyGPT2 {
		f["architectures"] = []string{"GPT2LMHeadModel"}
		f["n_embd"], f["n_layer"], f["n_head"] = c.HiddenSize, c.NumLayers, c.NumHeads
		f["n_inner"], f["n_positions"] = c.IntermediateSize, c.MaxPositions
		f["layer_norm_epsilon"], f["activation_function"] = c.NormEps, c.Activation
		f["scale_attn_weights"] = c.ScaleAttnWeights
	} else {
		f["architectures"] = []string{map[string]string{
			"llama": "LlamaForCausalLM", "mistral": "MistralForCausalLM", "qwen2": "Qwen2ForCausalLM",
			"qwen3": "Qwen3ForCausalLM", "gemma": "GemmaForCausalLM", "mixtral": "MixtralForCausalLM",
		}[c.ModelType]}
		f["hidden_size"], f["intermediate_size"] = c.HiddenSize, c.IntermediateSize
		f["num_hidden_layers"], f["num_attention_heads"], f["num_key_value_heads"] = c.NumLayers, c.NumHeads, c.NumKVHeads
		f["head_dim"], f["max_position_embeddings"] = c.HeadDim, c.MaxPositions
		f["rms_norm_eps"], f["hidden_act"] = c.NormEps, c.Activation
		f["attention_bias"], f["mlp_bias"] = c.AttentionBias, c.MLPBias
		if c.SlidingWindow > 0 {
			f["sliding_window"] = c.SlidingWindow
		}
		if c.Rope != nil {
			rp := map[string]any{"rope_theta": c.Rope.Theta, "rope_type": c.Rope.Type}
			if c.Rope.Type != "default" {
				rp["factor"] = c.Rope.Factor
			}
			if c.Rope.Type == "llama3" {
				rp["low_freq_factor"], rp["high_freq_factor"] = c.Rope.LowFreqFactor, c.Rope.HighFreqFactor
				rp["original_max_position_embeddings"] = c.Rope.OriginalMaxPositions
			}
			f["rope_parameters"] = rp
		}
		if c.Family == FamilyMixtral {
			f["num_local_experts"], f["num_experts_per_tok"] = c.NumExperts, c.ExpertsPerToken
		}
	}
	out := make(map[string]json.RawMessage, len(f))
	for k, v := range f {
		b, _ := json.Marshal(v)
		out[k] = b
	}
	return out
}

// writeFileAtomic writes data to a temporary file beside path and renames
// it into place.
func writeFileAtomic(path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// TokenizerFiles are the files besides the weights and config.json that
// make a checkpoint folder usable: tokenizer, chat template, generation
// settings.
var TokenizerFiles = []string{"tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "chat_template.jinja", "generation_config.json"}

// CopyTokenizerFiles copies the TokenizerFiles that exist into the
// checkpoint folder dst, each written atomically: generation_config.json
// from modelDir, the others from tokenizer (a folder, or a tokenizer.json
// file; "" means modelDir).
func CopyTokenizerFiles(dst, modelDir, tokenizer string) error {
	if tokenizer == "" {
		tokenizer = modelDir
	}
	st, err := os.Stat(tokenizer)
	tokDir := err == nil && st.IsDir()
	for _, name := range TokenizerFiles {
		src := filepath.Join(modelDir, name)
		switch {
		case name == "generation_config.json":
		case tokDir:
			src = filepath.Join(tokenizer, name)
		case name == "tokenizer.json":
			src = tokenizer
		}
		b, err := os.ReadFile(src)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return fmt.Errorf("copy %s: %w", src, err)
		}
		if err := writeFileAtomic(filepath.Join(dst, name), b); err != nil {
			return fmt.Errorf("copy %s: %w", src, err)
		}
	}
	return nil
}
