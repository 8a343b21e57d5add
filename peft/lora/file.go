package lora

import (
	"fmt"
	"os"

	"github.com/lethe-ml/lethe/models"
	"github.com/lethe-ml/lethe/models/safetensors"
	"github.com/lethe-ml/lethe/peft"
	"github.com/lethe-ml/lethe/peft/internal/adapterio"
	"github.com/lethe-ml/lethe/peft/internal/host"
)

// Save writes the adapter to dir as PEFT 0.21's save_pretrained writes an
// adapter: adapter_config.json (json.dumps(indent=2, sort_keys=True), the
// fields PEFT writes, unknown keys of a loaded file kept) and
// adapter_model.safetensors (metadata {"format": "pt"}) with PEFT's keys,
// which carry no adapter name:
//
//	base_model.model.<module>.lora_A.weight          [r, in]
//	base_model.model.<module>.lora_B.weight          [out, r]
//	base_model.model.<module>.lora_magnitude_vector  [out]      (DoRA)
//	base_model.model.<module>.weight / .bias                    (modules_to_save)
//
// PEFT saves a non-default adapter in a subfolder named after it; Save
// writes into dir itself.
func (a *Adapter) Save(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("lora: save %q: %w", a.name, err)
	}
	var ts []safetensors.Tensor
	tensors := a.Tensors()
	for _, key := range sortedKeys(tensors) {
		t, err := adapterio.VarTensor(key, tensors[key], a.Transposed(key))
		if err != nil {
			return fmt.Errorf("lora: save %q to %s: %w", a.name, dir, err)
		}
		ts = append(ts, t)
	}
	if err := adapterio.WriteWeights(dir, ts); err != nil {
		return fmt.Errorf("lora: save %q: %w", a.name, err)
	}
	if err := adapterio.WriteConfig(dir, a.cfg.object()); err != nil {
		return fmt.Errorf("lora: save %q to %s: %w", a.name, dir, err)
	}
	return nil
}

// Load reads a PEFT LoRA or DoRA adapter folder (adapter_config.json and
// adapter_model.safetensors, as PEFT's save_pretrained writes them) into a
// new adapter of m called name, in a new Set. Every tensor the config
// implies must be in the file with its shape, and the file may hold no
// other: both are errors naming the tensor.
func Load(m *models.Model, dir, name string) (*Adapter, error) {
	return NewSet(m).Load(dir, name)
}

// Load reads an adapter folder into the set (see the package function).
func (s *Set) Load(dir, name string) (*Adapter, error) {
	cfg, warnings, err := ReadConfig(dir)
	if err != nil {
		return nil, err
	}
	a, err := s.build(name, cfg)
	if err != nil {
		return nil, fmt.Errorf("%w (adapter %s)", err, dir)
	}
	a.warnings = append(warnings, a.warnings...)
	if err := a.load(dir); err != nil {
		_ = s.m.Store.DeleteVariablesInScope(a.scope())
		return nil, err
	}
	s.add(a)
	return a, nil
}

func (a *Adapter) load(dir string) error {
	w, err := adapterio.OpenWeights(dir)
	if err != nil {
		return fmt.Errorf("lora: load %s: %w", dir, err)
	}
	defer w.Close()
	for _, l := range a.layers {
		in, r, out := l.mod.In, l.r, l.mod.Out
		va, err := w.Matrix(l.key("lora_A.weight"), []int{r, in}, true)
		if err != nil {
			return fmt.Errorf("lora: load %s: %w", dir, err)
		}
		vb, err := w.Matrix(l.key("lora_B.weight"), []int{out, r}, true)
		if err != nil {
			return fmt.Errorf("lora: load %s: %w", dir, err)
		}
		if err := host.Write(l.a, va); err != nil {
			return fmt.Errorf("lora: load %s: %w", dir, err)
		}
		if err := host.Write(l.b, vb); err != nil {
			return fmt.Errorf("lora: load %s: %w", dir, err)
		}
		if l.mag != nil {
			vm, err := w.Matrix(l.key("lora_magnitude_vector"), []int{out}, false)
			if err != nil {
				return fmt.Errorf("lora: load %s: %w", dir, err)
			}
			if err := host.Write(l.mag, vm); err != nil {
				return fmt.Errorf("lora: load %s: %w", dir, err)
			}
		}
	}
	for _, sm := range a.saved {
		key := peft.KeyPrefix + sm.mod.Name + ".weight"
		dims := sm.w.Shape().Dimensions
		transpose := a.Transposed(key)
		fileDims := dims
		if transpose {
			fileDims = []int{dims[1], dims[0]}
		}
		vals, err := w.Matrix(key, fileDims, transpose)
		if err != nil {
			return fmt.Errorf("lora: load %s: %w", dir, err)
		}
		if err := host.Write(sm.w, vals); err != nil {
			return fmt.Errorf("lora: load %s: %w", dir, err)
		}
		if sm.bias != nil {
			vals, err := w.Matrix(peft.KeyPrefix+sm.mod.Name+".bias", sm.bias.Shape().Dimensions, false)
			if err != nil {
				return fmt.Errorf("lora: load %s: %w", dir, err)
			}
			if err := host.Write(sm.bias, vals); err != nil {
				return fmt.Errorf("lora: load %s: %w", dir, err)
			}
		}
	}
	if extra := w.Unused(); len(extra) > 0 {
		return fmt.Errorf("lora: load %s: %d tensors the config does not account for, e.g. %q (does target_modules match the file?)", w.Path(), len(extra), extra[0])
	}
	return nil
}
