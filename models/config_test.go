package models

import (
	"context"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gomlx/compute/dtypes"

	"github.com/lethe-ml/lethe/models/safetensors"
)

func TestParseConfigErrors(t *testing.T) {
	base := `"model_type": "llama", "vocab_size": 10, "hidden_size": 8, "intermediate_size": 16, "num_hidden_layers": 1, "num_attention_heads": 2`
	for _, c := range []struct{ json, want string }{
		{`{"model_type": "bert"}`, `model_type "bert" is not supported`},
		{`{"vocab_size": 3}`, "model_type: missing"},
		{`{"model_type": "llama", "vocab_size": 10}`, "hidden_size: missing"},
		{`{` + base + `, "num_key_value_heads": 3}`, "num_key_value_heads"},
		{`{` + base + `, "hidden_act": "swiglu2"}`, `hidden_act: "swiglu2" is not supported`},
		{`{` + base + `, "rope_scaling": {"rope_type": "yarn", "factor": 4}}`, `rope_scaling.rope_type: "yarn" is not supported`},
		{`{` + base + `, "rope_parameters": {"rope_type": "llama3", "factor": 8}}`, "original_max_position_embeddings: required"},
		{`{` + base + `, "vocab_size": "ten"}`, "vocab_size: want an integer"},
		{`{"model_type": "gpt2", "vocab_size": 10, "n_embd": 8, "n_layer": 1, "n_head": 2, "n_positions": 4, "scale_attn_by_inverse_layer_idx": true}`, "scale_attn_by_inverse_layer_idx"},
		{`not json`, "not a config.json"},
	} {
		_, err := ParseConfig([]byte(c.json))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want %q", c.json, err, c.want)
		}
	}
}

func TestParseConfigRope(t *testing.T) {
	// The Hub's older form (rope_theta + rope_scaling) and transformers 5's
	// rope_parameters give the same configuration.
	base := `"model_type": "llama", "vocab_size": 10, "hidden_size": 8, "intermediate_size": 16, "num_hidden_layers": 1, "num_attention_heads": 2`
	hub, err := ParseConfig([]byte(`{` + base + `, "rope_theta": 500000, "rope_scaling": {"rope_type": "llama3", "factor": 8, "low_freq_factor": 1, "high_freq_factor": 4, "original_max_position_embeddings": 8192}}`))
	if err != nil {
		t.Fatal(err)
	}
	v5, err := ParseConfig([]byte(`{` + base + `, "rope_parameters": {"rope_theta": 500000, "rope_type": "llama3", "factor": 8, "low_freq_factor": 1, "high_freq_factor": 4, "original_max_position_embeddings": 8192}}`))
	if err != nil {
		t.Fatal(err)
	}
	if *hub.Rope != *v5.Rope || hub.Rope.Theta != 500000 || hub.Rope.OriginalMaxPositions != 8192 {
		t.Errorf("hub %+v, v5 %+v", *hub.Rope, *v5.Rope)
	}
	// Llama 3's published frequencies: the highest stays, the lowest is
	// divided by the factor.
	inv := ropeInvFreq(hub.Rope, 128)
	if inv[0] != 1 || inv[63] != 1/pow(500000, 126.0/128)/8 {
		t.Errorf("inv_freq[0]=%g inv_freq[63]=%g", inv[0], inv[63])
	}
}

func TestLoadErrors(t *testing.T) {
	src := filepath.Join("testdata", "hf", "llama")
	copyDir := func(t *testing.T) string {
		dir := t.TempDir()
		for _, f := range []string{"config.json", "model.safetensors"} {
			data, err := os.ReadFile(filepath.Join(src, f))
			if err != nil {
				t.Fatal(err)
			}
			os.WriteFile(filepath.Join(dir, f), data, 0o644)
		}
		return dir
	}
	t.Run("missing weights", func(t *testing.T) {
		dir := copyDir(t)
		os.Remove(filepath.Join(dir, "model.safetensors"))
		if _, err := Load(dir, LoadOptions{}); err == nil || !strings.Contains(err.Error(), dir) {
			t.Errorf("error %v", err)
		}
	})
	t.Run("shape mismatch", func(t *testing.T) {
		dir := copyDir(t)
		cfg, _ := os.ReadFile(filepath.Join(dir, "config.json"))
		os.WriteFile(filepath.Join(dir, "config.json"), []byte(strings.Replace(string(cfg), `"intermediate_size": 160`, `"intermediate_size": 128`, 1)), 0o644)
		_, err := Load(dir, LoadOptions{})
		if err == nil || !strings.Contains(err.Error(), "gate_proj.weight") || !strings.Contains(err.Error(), "[160 64]") {
			t.Errorf("error %v", err)
		}
	})
	t.Run("wrong model_type", func(t *testing.T) {
		dir := copyDir(t)
		cfg, _ := os.ReadFile(filepath.Join(dir, "config.json"))
		os.WriteFile(filepath.Join(dir, "config.json"), []byte(strings.Replace(string(cfg), `"model_type": "llama"`, `"model_type": "qwen3"`, 1)), 0o644)
		_, err := Load(dir, LoadOptions{})
		if err == nil || !strings.Contains(err.Error(), "q_norm") {
			t.Errorf("error %v", err)
		}
	})
	t.Run("truncated safetensors", func(t *testing.T) {
		dir := copyDir(t)
		data, _ := os.ReadFile(filepath.Join(dir, "model.safetensors"))
		os.WriteFile(filepath.Join(dir, "model.safetensors"), data[:len(data)/2], 0o644)
		if _, err := Load(dir, LoadOptions{}); err == nil || !strings.Contains(err.Error(), "model.safetensors") {
			t.Errorf("error %v", err)
		}
	})
}

// TestBFloat16 runs a fixture in bfloat16: logits stay close to the float32
// reference and generation works.
func TestBFloat16(t *testing.T) {
	b := testBackend(t)
	m, err := Load(filepath.Join("testdata", "hf", "llama"), LoadOptions{DType: dtypes.BFloat16})
	if err != nil {
		t.Fatal(err)
	}
	exp := loadExpected(t, "llama")
	ids32, shape := exp.ints(t, "input_ids")
	ids := [][]int{toInts(ids32[:shape[1]]), toInts(ids32[shape[1]:])}
	scores, err := NewScorer(m, b).Score(context.Background(), ids, nil)
	if err != nil {
		t.Fatal(err)
	}
	sum := 0.0
	for _, s := range scores {
		sum += s.Loss * float64(s.Tokens)
	}
	want := float64(exp.floats(t, "loss")[0])
	if got := sum / 22; got < want-0.05 || got > want+0.05 {
		t.Errorf("bf16 loss %.4f, float32 reference %.4f", got, want)
	}
}

func pow(a, b float64) float64 { return math.Pow(a, b) }

// TestFloat16Checkpoint converts the llama fixture's weights to float16 and
// loads them: they are converted on load and the loss stays within float16
// precision of the float32 reference.
func TestFloat16Checkpoint(t *testing.T) {
	src := filepath.Join("testdata", "hf", "llama")
	f, err := safetensors.Open(filepath.Join(src, "model.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var ts []safetensors.Tensor
	for _, name := range f.Names() {
		vals, err := f.Float32(name)
		if err != nil {
			t.Fatal(err)
		}
		info, _ := f.Info(name)
		tt, err := safetensors.FromFloat32(name, info.Shape, vals, safetensors.F16)
		if err != nil {
			t.Fatal(err)
		}
		ts = append(ts, tt)
	}
	dir := t.TempDir()
	if err := safetensors.Write(filepath.Join(dir, "model.safetensors"), ts, map[string]string{"format": "pt"}); err != nil {
		t.Fatal(err)
	}
	cfg, _ := os.ReadFile(filepath.Join(src, "config.json"))
	os.WriteFile(filepath.Join(dir, "config.json"), cfg, 0o644)
	m, err := Load(dir, LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := m.Param("model.norm.weight"); v.DType() != dtypes.Float32 {
		t.Fatalf("weights stored as %s, want float32", v.DType())
	}
	exp := loadExpected(t, "llama")
	ids32, shape := exp.ints(t, "input_ids")
	scores, err := NewScorer(m, testBackend(t)).Score(context.Background(), [][]int{toInts(ids32[:shape[1]]), toInts(ids32[shape[1]:])}, nil)
	if err != nil {
		t.Fatal(err)
	}
	got := (scores[0].Loss + scores[1].Loss) / 2
	if want := float64(exp.floats(t, "loss")[0]); math.Abs(got-want) > 5e-3 {
		t.Errorf("float16 checkpoint loss %.5f, float32 reference %.5f", got, want)
	}
}
