package main

import (
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/gomlx/compute"
	"github.com/gomlx/compute/dtypes"
	"github.com/spf13/cobra"

	"github.com/lethe-ml/lethe/internal/backend"
	"github.com/lethe-ml/lethe/models"
)

// modelFlags are the flags of the commands that run a model.
type modelFlags struct {
	dir     string
	backend string
	dtype   string
	adapter string
	// hooks apply the adapter, after open.
	hooks models.Hooks
}

func (f *modelFlags) bind(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.dir, "model", "", "checkpoint folder: config.json, *.safetensors, tokenizer.json (required)")
	cmd.Flags().StringVar(&f.backend, "backend", "", "compute backend: auto, go[:options], xla[:plugin] (default $LETHE_BACKEND or auto)")
	cmd.Flags().StringVar(&f.dtype, "dtype", "float32", "compute dtype: float32 or bfloat16")
	cmd.Flags().StringVar(&f.adapter, "adapter", "", "adapter folder (PEFT LoRA/DoRA, or lethe's mixture of LoRA experts) applied to the model")
}

// open loads the model and creates the backend, saying which one on w.
func (f *modelFlags) open(w io.Writer) (*models.Model, compute.Backend, error) {
	if f.dir == "" {
		return nil, nil, fmt.Errorf("--model is required")
	}
	dt, err := parseDType(f.dtype)
	if err != nil {
		return nil, nil, err
	}
	b, info, err := backend.New(backend.Resolve(f.backend))
	if err != nil {
		return nil, nil, fmt.Errorf("--backend: %w", err)
	}
	backend.Log(w, info)
	m, err := models.Load(f.dir, models.LoadOptions{DType: dt})
	if err != nil {
		return nil, nil, err
	}
	if f.adapter != "" {
		a, err := loadAdapter(m, f.adapter, func(s string) { fmt.Fprintf(w, "lethe: warning: %s\n", s) })
		if err != nil {
			return nil, nil, err
		}
		f.hooks = a.hooks
	}
	return m, b, nil
}

func parseDType(s string) (dtypes.DType, error) {
	switch strings.ToLower(s) {
	case "float32", "f32", "fp32", "":
		return dtypes.Float32, nil
	case "bfloat16", "bf16":
		return dtypes.BFloat16, nil
	case "float16", "f16", "fp16":
		return dtypes.Float16, nil
	}
	return dtypes.InvalidDType, fmt.Errorf("--dtype: %q is not one of float32, bfloat16, float16", s)
}

// parseIDs reads "1,2,3" (spaces allowed).
func parseIDs(flag, s string) ([]int, error) {
	var out []int
	for _, part := range strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' }) {
		v, err := strconv.Atoi(part)
		if err != nil {
			return nil, fmt.Errorf("%s: %q is not a token id", flag, part)
		}
		out = append(out, v)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s: no token ids", flag)
	}
	return out, nil
}
