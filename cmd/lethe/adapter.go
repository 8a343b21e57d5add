package main

import (
	"fmt"

	"github.com/lethe-ml/lethe/models"
	"github.com/lethe-ml/lethe/peft/lora"
)

// adapter is a trained adapter loaded onto a model.
type adapter struct {
	hooks models.Hooks
	// merge folds the adapter into the model's weights.
	merge func() error
}

// loadAdapter reads an adapter folder (adapter_config.json and
// adapter_model.safetensors) onto m, printing its warnings on warn.
func loadAdapter(m *models.Model, dir string, warn func(string)) (*adapter, error) {
	a, err := lora.Load(m, dir, "default")
	if err != nil {
		return nil, fmt.Errorf("--adapter: %w", err)
	}
	for _, w := range a.Warnings() {
		warn(w)
	}
	return &adapter{hooks: a.Hooks(false), merge: a.Merge}, nil
}
