package moe

import (
	"fmt"
	"os"
	"strconv"

	"github.com/gomlx/gomlx/ml/model"

	"github.com/lethe-ml/lethe/models"
	"github.com/lethe-ml/lethe/models/safetensors"
	"github.com/lethe-ml/lethe/peft/internal/adapterio"
	"github.com/lethe-ml/lethe/peft/internal/host"
)

// fileMatrix is one matrix of the adapter file: rows×cols in the file
// (torch's layout), held at offset off of variable v in lethe's transposed
// layout (cols×rows).
type fileMatrix struct {
	key        string
	v          *model.Variable
	off        int
	rows, cols int
}

// files lists the file's matrices for the layer, in the order of the
// package documentation.
func (l *layer) files(cfg *Config) []fileMatrix {
	in, out, r, N := l.mod.In, l.mod.Out, cfg.R, cfg.Experts
	fs := []fileMatrix{{key: l.key("lora_router.weight"), v: l.router, rows: N, cols: in}}
	if cfg.Share == ShareA {
		fs = append(fs, fileMatrix{key: l.key("lora_A.weight"), v: l.a, rows: r, cols: in})
	} else {
		for e := range N {
			fs = append(fs, fileMatrix{key: l.key("lora_A.experts." + strconv.Itoa(e) + ".weight"), v: l.a, off: e * in * r, rows: r, cols: in})
		}
	}
	if cfg.Share == ShareB {
		fs = append(fs, fileMatrix{key: l.key("lora_B.weight"), v: l.b, rows: out, cols: r})
	} else {
		for e := range N {
			fs = append(fs, fileMatrix{key: l.key("lora_B.experts." + strconv.Itoa(e) + ".weight"), v: l.b, off: e * r * out, rows: out, cols: r})
		}
	}
	return fs
}

// Keys lists the tensor keys of the adapter's file (see the package
// documentation), module by module.
func (a *Adapter) Keys() []string {
	var out []string
	for _, l := range a.layers {
		for _, f := range l.files(&a.cfg) {
			out = append(out, f.key)
		}
	}
	return out
}

// Save writes the adapter to dir (created if needed) as the package
// documentation describes: adapter_model.safetensors (float32, metadata
// {"format": "pt"}) and adapter_config.json (json.dumps(indent=2,
// sort_keys=True); the unknown keys of a loaded file are kept). Each file
// is written to a temporary file and renamed into place.
func (a *Adapter) Save(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("moe: save %q: %w", a.name, err)
	}
	var ts []safetensors.Tensor
	values := map[*model.Variable][]float32{}
	for _, l := range a.layers {
		for _, f := range l.files(&a.cfg) {
			vals, ok := values[f.v]
			if !ok {
				var err error
				if vals, _, err = host.Read(f.v); err != nil {
					return fmt.Errorf("moe: save %q to %s: %w", a.name, dir, err)
				}
				values[f.v] = vals
			}
			m := (&host.Matrix{Rows: f.cols, Cols: f.rows, Data: vals[f.off : f.off+f.rows*f.cols]}).T()
			t, err := safetensors.FromFloat32(f.key, []int{f.rows, f.cols}, m.Data, safetensors.F32)
			if err != nil {
				return fmt.Errorf("moe: save %q to %s: %w", a.name, dir, err)
			}
			ts = append(ts, t)
		}
	}
	if err := adapterio.WriteWeights(dir, ts); err != nil {
		return fmt.Errorf("moe: save %q: %w", a.name, err)
	}
	if err := adapterio.WriteConfig(dir, a.cfg.object()); err != nil {
		return fmt.Errorf("moe: save %q to %s: %w", a.name, dir, err)
	}
	return nil
}

// Load reads a mixture adapter folder written by Save into a new adapter
// of m called name. Every tensor the config implies must be in the file
// with its shape, and the file may hold no other: both are errors naming
// the file and the tensor. Unknown config keys are kept and listed by
// Warnings.
func Load(m *models.Model, dir, name string) (*Adapter, error) {
	cfg, warnings, err := ReadConfig(dir)
	if err != nil {
		return nil, err
	}
	a, err := build(m, name, cfg)
	if err != nil {
		return nil, fmt.Errorf("%w (adapter %s)", err, dir)
	}
	a.warnings = warnings
	if err := a.load(dir); err != nil {
		_ = m.Store.DeleteVariablesInScope(a.scope())
		return nil, err
	}
	return a, nil
}

func (a *Adapter) load(dir string) error {
	w, err := adapterio.OpenWeights(dir)
	if err != nil {
		return fmt.Errorf("moe: load %s: %w", dir, err)
	}
	defer w.Close()
	for _, l := range a.layers {
		values := map[*model.Variable][]float32{}
		for _, f := range l.files(&a.cfg) {
			vals, err := w.Matrix(f.key, []int{f.rows, f.cols}, true)
			if err != nil {
				return fmt.Errorf("moe: load %s: %w", dir, err)
			}
			if values[f.v] == nil {
				values[f.v] = make([]float32, f.v.Shape().Size())
			}
			copy(values[f.v][f.off:], vals)
		}
		for _, v := range []*model.Variable{l.router, l.a, l.b} {
			if err := host.Write(v, values[v]); err != nil {
				return fmt.Errorf("moe: load %s: %w", dir, err)
			}
		}
	}
	if extra := w.Unused(); len(extra) > 0 {
		return fmt.Errorf("moe: load %s: %d tensors the config does not account for, e.g. %q (do target_modules, num_experts and shared_projection match the file?)", w.Path(), len(extra), extra[0])
	}
	return nil
}
