package models

import (
	"fmt"
	"io"
	"path/filepath"
	"sort"
	"strings"

	"github.com/lethe-ml/lethe/models/safetensors"
)

// Report describes a checkpoint without loading its weights: what
// `lethe inspect` prints.
type Report struct {
	Dir          string `json:"dir"`
	ModelType    string `json:"model_type"`
	Family       Family `json:"family"`
	Architecture string `json:"architecture"`
	Parameters   int64  `json:"parameters"`
	// DTypes counts the parameters stored in each dtype.
	DTypes map[string]int64 `json:"dtypes"`
	// FileBytes is the size of the weight files.
	FileBytes int64 `json:"file_bytes"`
	// Memory estimates, in bytes (see Estimate).
	Memory []Estimate `json:"memory"`
}

// Estimate is the memory a use of the model needs, by formula.
type Estimate struct {
	Use   string `json:"use"`
	Bytes int64  `json:"bytes"`
	// How states the formula and its assumptions.
	How string `json:"how"`
}

// Inspect reads a checkpoint's config and safetensors headers.
func Inspect(dir string) (*Report, error) {
	cfg, err := LoadConfig(filepath.Join(dir, "config.json"))
	if err != nil {
		return nil, err
	}
	ckpt, err := safetensors.OpenDir(dir)
	if err != nil {
		return nil, fmt.Errorf("inspect %s: %w", dir, err)
	}
	defer ckpt.Close()
	r := &Report{Dir: dir, ModelType: cfg.ModelType, Family: cfg.Family, DTypes: map[string]int64{}}
	if arch, ok := cfg.Raw["architectures"]; ok {
		r.Architecture = strings.Trim(string(arch), "[]\" \n")
	}
	for _, name := range ckpt.Names() {
		info, _ := ckpt.Info(name)
		if ignoredKeys.MatchString(name) {
			continue
		}
		n := int64(info.NumElements())
		r.Parameters += n
		r.DTypes[info.DType.String()] += n
		r.FileBytes += info.Size
	}
	r.Memory = estimates(cfg, r.Parameters)
	return r, nil
}

// estimates are rules of thumb for a batch of 8 × 512 tokens (training) and
// one 4096-token sequence (inference), bf16 activations.
func estimates(c *Config, params int64) []Estimate {
	const (
		bf16 = 2
		f32  = 4
	)
	K, D, L, H := int64(c.NumKVHeads), int64(c.HeadDim), int64(c.NumLayers), int64(c.HiddenSize)
	if c.Family == FamilyGPT2 {
		D = H / int64(c.NumHeads)
	}
	kvPerToken := 2 * L * K * D * bf16
	// Activations kept for the backward pass, per layer, per token, bf16,
	// without recomputation: about 34·H bytes plus the attention scores
	// (Korthikanti et al. 2022), here for 8 × 512 tokens.
	B, T := int64(8), int64(512)
	acts := L * (34*B*T*H + 5*int64(c.NumHeads)*T*T*B)
	// LoRA r=16 on every attention and MLP projection.
	var lora int64
	perLayer := int64(0)
	if c.Family == FamilyGPT2 {
		perLayer = 16 * (H + 3*H + H + H + H + int64(c.IntermediateSize) + int64(c.IntermediateSize) + H)
	} else {
		N := int64(c.NumHeads)
		F := int64(c.IntermediateSize)
		perLayer = 16 * ((H + N*D) + 2*(H+K*D) + (N*D + H) + 3*(H+F))
	}
	lora = L * perLayer
	return []Estimate{
		{"weights (bf16)", params * bf16, "parameters × 2 bytes"},
		{"inference, 1 × 4096 tokens, bf16", params*bf16 + 4096*kvPerToken,
			fmt.Sprintf("weights + KV cache (%d bytes per token: 2·layers·kv_heads·head_dim·2)", kvPerToken)},
		{"LoRA r=16 (all projections), 8 × 512 tokens", params*bf16 + lora*(f32+f32+2*f32) + acts,
			fmt.Sprintf("bf16 frozen weights + %d adapter parameters × 16 bytes (weights, grads, AdamW) + activations", lora)},
		{"full fine-tuning, 8 × 512 tokens", params*(f32+f32+2*f32+bf16) + acts,
			"fp32 master weights, grads and AdamW moments + bf16 copy + activations"},
	}
}

// Print writes the report as aligned text.
func (r *Report) Print(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "checkpoint   %s\n", r.Dir)
	fmt.Fprintf(&b, "architecture %s (model_type %s, family %s)\n", r.Architecture, r.ModelType, r.Family)
	fmt.Fprintf(&b, "parameters   %s (%d)\n", humanCount(r.Parameters), r.Parameters)
	var dts []string
	for k := range r.DTypes {
		dts = append(dts, k)
	}
	sort.Strings(dts)
	for _, k := range dts {
		fmt.Fprintf(&b, "  %-10s %s\n", k, humanCount(r.DTypes[k]))
	}
	fmt.Fprintf(&b, "weight files %s\n", humanBytes(r.FileBytes))
	b.WriteString("memory (estimates)\n")
	for _, e := range r.Memory {
		fmt.Fprintf(&b, "  %-45s %10s  %s\n", e.Use, humanBytes(e.Bytes), e.How)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func humanCount(n int64) string {
	switch {
	case n >= 1e9:
		return fmt.Sprintf("%.2fB", float64(n)/1e9)
	case n >= 1e6:
		return fmt.Sprintf("%.1fM", float64(n)/1e6)
	case n >= 1e3:
		return fmt.Sprintf("%.1fK", float64(n)/1e3)
	}
	return fmt.Sprint(n)
}

func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
