package recipe

import (
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"

	"github.com/lethe-ml/lethe/models"
	"github.com/lethe-ml/lethe/unlearn"
)

// hostValues reads float32 variables.
func hostValues(vars map[string]*model.Variable) (map[string][]float32, error) {
	out := map[string][]float32{}
	for name, v := range vars {
		t, err := v.Value()
		if err != nil {
			return nil, err
		}
		if t.DType() != dtypes.Float32 {
			return nil, fmt.Errorf("%s is %s; weight arithmetic needs float32 weights", name, t.DType())
		}
		var x []float32
		t.MustConstFlatData(func(f any) { x = append(x, f.([]float32)...) })
		out[name] = x
	}
	return out, nil
}

// setValues writes host values into variables of the same shapes.
func setValues(vars map[string]*model.Variable, vals map[string][]float32) error {
	for name, v := range vars {
		if err := v.SetValue(tensors.FromFlatDataAndDimensions(vals[name], v.Shape().Dimensions...)); err != nil {
			return fmt.Errorf("set %s: %w", name, err)
		}
	}
	return nil
}

// trainedVars maps the trained parameter names to their variables.
func trainedVars(m *models.Model, opts unlearn.Options) map[string]*model.Variable {
	out := map[string]*model.Variable{}
	for _, name := range opts.Params {
		v, ok := opts.Vars[name]
		if !ok {
			v, _ = m.Param(name)
		}
		out[name] = v
	}
	return out
}

// negate applies task arithmetic's negation θ₀ − λ·(θ − θ₀) to the trained
// variables, from their values θ₀ before training.
func negate(vars map[string]*model.Variable, before map[string][]float32, lambda float64) error {
	after, err := hostValues(vars)
	if err != nil {
		return err
	}
	for name, a := range after {
		b := before[name]
		for i := range a {
			a[i] = float32(float64(b[i]) - lambda*(float64(a[i])-float64(b[i])))
		}
	}
	return setValues(vars, after)
}

// saliencyMasks returns SalUn's masks: 1 for the weights whose summed
// gradient magnitude is among the top fraction over all trained weights,
// 0 elsewhere (ties at the threshold are kept).
func saliencyMasks(grads map[string][]float32, fraction float64) (map[string][]float32, float64) {
	var all []float32
	for _, g := range grads {
		for _, v := range g {
			all = append(all, float32(math.Abs(float64(v))))
		}
	}
	slices.Sort(all)
	k := int(math.Round(float64(len(all)) * (1 - fraction)))
	k = min(max(k, 0), len(all)-1)
	thr := all[k]
	masks := map[string][]float32{}
	for name, g := range grads {
		m := make([]float32, len(g))
		for i, v := range g {
			if float32(math.Abs(float64(v))) >= thr {
				m[i] = 1
			}
		}
		masks[name] = m
	}
	return masks, float64(thr)
}

// maskVariables creates one mask variable of ones per trained parameter.
func maskVariables(m *models.Model, vars map[string]*model.Variable) (map[string]*model.Variable, error) {
	out := map[string]*model.Variable{}
	for name, v := range vars {
		ones := make([]float32, v.Shape().Size())
		for i := range ones {
			ones[i] = 1
		}
		mv, err := m.Store.RootScope().In("salun").CreateVariable(strings.ReplaceAll(name, ".", "_"),
			tensors.FromFlatDataAndDimensions(ones, v.Shape().Dimensions...))
		if err != nil {
			return nil, err
		}
		out[name] = mv
	}
	return out, nil
}

// randomize sets a model's weights to a fresh random initialisation
// (models.New's), keeping its variables: the stochastic teacher.
func randomize(m *models.Model, seed uint64) error {
	fresh, err := models.New(m.Config, models.LoadOptions{}, seed^0x5eed)
	if err != nil {
		return err
	}
	vars := map[string]*model.Variable{}
	src := map[string]*model.Variable{}
	for _, name := range m.ParamNames() {
		v, _ := m.Param(name)
		f, ok := fresh.Param(name)
		if !ok {
			return fmt.Errorf("random teacher: no tensor %q", name)
		}
		vars[name], src[name] = v, f
	}
	vals, err := hostValues(src)
	if err != nil {
		return err
	}
	return setValues(vars, vals)
}
