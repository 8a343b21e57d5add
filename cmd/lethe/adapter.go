package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"github.com/lethe-ml/lethe/models"
	"github.com/lethe-ml/lethe/peft/lora"
	"github.com/lethe-ml/lethe/peft/moe"
)

// adapter is a trained adapter loaded onto a model.
type adapter struct {
	hooks models.Hooks
	// merge folds the adapter into the model's weights (nil when it
	// cannot be: a mixture of experts routes by input).
	merge func() error
}

// loadAdapter reads an adapter folder (adapter_config.json and
// adapter_model.safetensors) onto m: PEFT's LoRA/DoRA, or lethe's mixture
// of LoRA experts, by its peft_type. It prints the adapter's warnings on
// warn.
func loadAdapter(m *models.Model, dir string, warn func(string)) (*adapter, error) {
	path := filepath.Join(dir, "adapter_config.json")
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("--adapter: %w", err)
	}
	var head struct {
		PEFTType string `json:"peft_type"`
	}
	if err := json.Unmarshal(raw, &head); err != nil {
		return nil, fmt.Errorf("--adapter: %s: %w", path, err)
	}
	var (
		a        adapter
		warnings []string
	)
	switch head.PEFTType {
	case moe.PEFTType:
		ad, err := moe.Load(m, dir, "default")
		if err != nil {
			return nil, fmt.Errorf("--adapter: %w", err)
		}
		a.hooks, warnings = ad.Hooks(false), ad.Warnings()
	default: // lora.Load names an unsupported peft_type
		ad, err := lora.Load(m, dir, "default")
		if err != nil {
			return nil, fmt.Errorf("--adapter: %w", err)
		}
		a.hooks, a.merge, warnings = ad.Hooks(false), ad.Merge, ad.Warnings()
	}
	for _, w := range warnings {
		warn(w)
	}
	return &a, nil
}
