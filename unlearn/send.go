package unlearn

import (
	"context"
	"fmt"
	"sort"

	"github.com/gomlx/compute"
	"github.com/gomlx/compute/dtypes"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"

	"github.com/lethe-ml/lethe/models"
)

// NeuronActivity returns, for every decoder layer, the mean magnitude of
// each feed-forward neuron's activation (the input of the layer's down
// projection) over all tokens of the prompts (token ids), one prompt at a
// time.
func NeuronActivity(ctx context.Context, m *models.Model, backend compute.Backend, prompts [][]int) ([][]float64, error) {
	L := m.Config.NumLayers
	exec, err := model.NewExec(backend, m.Store, func(_ *model.Scope, ids, mask *Node) []*Node {
		acts := make([]*Node, L)
		hooks := models.Hooks{Linear: func(name string, x, y *Node) *Node {
			for l := range L {
				if name == fmt.Sprintf("model.layers.%d.mlp.down_proj", l) {
					acts[l] = x
				}
			}
			return y
		}}
		m.Forward(models.Inputs{IDs: ids, Mask: mask}, models.Options{Hooks: hooks})
		out := make([]*Node, L)
		for l, a := range acts {
			if a == nil {
				panic(fmt.Errorf("send: layer %d has no mlp.down_proj", l))
			}
			a = Mul(Abs(ConvertDType(a, dtypes.Float32)), InsertAxes(ConvertDType(mask, dtypes.Float32), -1))
			out[l] = ReduceSum(Reshape(a, -1, a.Shape().Dimensions[2]), 0) // [I], padding excluded
		}
		return out
	})
	if err != nil {
		return nil, fmt.Errorf("send: %w", err)
	}
	defer exec.Finalize()
	sums := make([][]float64, L)
	tokens := 0
	for i, p := range prompts {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		ids, mask := padded(p)
		res, err := exec.Call(ids, mask)
		if err != nil {
			return nil, fmt.Errorf("send: prompt %d: %w", i, err)
		}
		for l := range L {
			res[l].MustConstFlatData(func(f any) {
				v := f.([]float32)
				if sums[l] == nil {
					sums[l] = make([]float64, len(v))
				}
				for k, x := range v {
					sums[l][k] += float64(x)
				}
			})
		}
		tokens += len(p)
	}
	for l := range sums {
		for k := range sums[l] {
			sums[l][k] /= float64(max(tokens, 1))
		}
	}
	return sums, nil
}

// SensitiveNeurons ranks each layer's feed-forward neurons by how much more
// active they are on the forget data than on the retain data (the ratio of
// mean activation magnitudes, as selective pruning does) and returns, per
// layer, the top fraction: the neurons SeND-style unlearning drops.
func SensitiveNeurons(forget, retain [][]float64, fraction float64) ([][]int, error) {
	if fraction <= 0 || fraction >= 1 {
		return nil, fmt.Errorf("send: fraction %g is not in (0, 1)", fraction)
	}
	if len(forget) != len(retain) {
		return nil, fmt.Errorf("send: %d forget layers, %d retain layers", len(forget), len(retain))
	}
	out := make([][]int, len(forget))
	for l := range forget {
		n := len(forget[l])
		idx := make([]int, n)
		score := make([]float64, n)
		for k := range idx {
			idx[k] = k
			score[k] = forget[l][k] / (retain[l][k] + 1e-8)
		}
		sort.SliceStable(idx, func(a, b int) bool { return score[idx[a]] > score[idx[b]] })
		keep := max(1, int(fraction*float64(n)+0.5))
		out[l] = append([]int(nil), idx[:keep]...)
		sort.Ints(out[l])
	}
	return out, nil
}

// DropNeurons removes feed-forward neurons for good: the rows of each
// layer's down projection that read them are set to zero (a dropout mask
// that is never resampled), so the neurons no longer reach the residual
// stream.
func DropNeurons(m *models.Model, neurons [][]int) error {
	for l, ns := range neurons {
		name := fmt.Sprintf("model.layers.%d.mlp.down_proj.weight", l)
		v, ok := m.Param(name)
		if !ok {
			return fmt.Errorf("send: no tensor %s", name)
		}
		t, err := v.Value()
		if err != nil {
			return err
		}
		if t.DType() != dtypes.Float32 {
			return fmt.Errorf("send: %s is %s, want float32", name, t.DType())
		}
		dims := t.Shape().Dimensions
		var w []float32
		t.MustConstFlatData(func(f any) { w = append(w, f.([]float32)...) })
		for _, k := range ns {
			if m.Transposed(name) { // stored [in = neurons, out]
				clear(w[k*dims[1] : (k+1)*dims[1]])
			} else { // [out, in]
				for r := range dims[0] {
					w[r*dims[1]+k] = 0
				}
			}
		}
		if err := v.SetValue(tensors.FromFlatDataAndDimensions(w, dims...)); err != nil {
			return err
		}
	}
	m.WeightsChanged()
	return nil
}
