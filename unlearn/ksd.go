package unlearn

import (
	"context"
	"fmt"
	"math"
	"slices"

	"github.com/gomlx/compute"
	"github.com/gomlx/compute/dtypes"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"

	"github.com/lethe-ml/lethe/models"
)

// KeySpaceDetector is training-free unlearning by Key Space Detection: a
// query whose feed-forward "keys" (the activations that select the value
// vectors of an FFN layer, the input of its down projection; Geva et al.
// 2021) at one layer lie close to those of the forget queries is
// recognised as asking for forgotten knowledge, and the model abstains on
// it; the weights never change. The features of a prompt are its keys
// averaged over its tokens; closeness is the largest cosine similarity to
// a forget prompt's features, and the threshold is set from the retain
// prompts so that at most FalsePositiveRate of them would be refused.
type KeySpaceDetector struct {
	// Layer is the FFN layer read; Threshold the similarity at and above
	// which a query is refused.
	Layer     int
	Threshold float64
	forget    [][]float32 // unit-normalised features
	m         *models.Model
	backend   compute.Backend
	hooks     models.Hooks
	exec      *model.Exec
}

// NewKeySpaceDetector fits a detector on the forget and retain prompts
// (token ids) of a model with hooks (an adapter, or none).
func NewKeySpaceDetector(ctx context.Context, m *models.Model, backend compute.Backend, hooks models.Hooks, layer int,
	forget, retain [][]int, falsePositiveRate float64) (*KeySpaceDetector, error) {
	if layer < 0 || layer >= m.Config.NumLayers {
		return nil, fmt.Errorf("ksd: layer %d is not a layer of the model (0..%d)", layer, m.Config.NumLayers-1)
	}
	if len(forget) == 0 || len(retain) == 0 {
		return nil, fmt.Errorf("ksd: needs forget and retain prompts, got %d and %d", len(forget), len(retain))
	}
	if falsePositiveRate < 0 || falsePositiveRate >= 1 {
		return nil, fmt.Errorf("ksd: false positive rate %g is not in [0, 1)", falsePositiveRate)
	}
	d := &KeySpaceDetector{Layer: layer, m: m, backend: backend, hooks: hooks}
	var err error
	if d.forget, err = d.features(ctx, forget); err != nil {
		return nil, err
	}
	scores, err := d.Scores(ctx, retain)
	if err != nil {
		return nil, err
	}
	// Refuse at most a falsePositiveRate share of the retain prompts: the
	// threshold is just above the score of the first one let through.
	slices.Sort(scores)
	allowed := int(math.Floor(falsePositiveRate * float64(len(scores))))
	d.Threshold = math.Nextafter(scores[len(scores)-allowed-1], math.Inf(1))
	return d, nil
}

// Scores returns each prompt's largest cosine similarity to the forget
// prompts' features.
func (d *KeySpaceDetector) Scores(ctx context.Context, prompts [][]int) ([]float64, error) {
	feats, err := d.features(ctx, prompts)
	if err != nil {
		return nil, err
	}
	out := make([]float64, len(feats))
	for i, f := range feats {
		best := math.Inf(-1)
		for _, g := range d.forget {
			s := 0.0
			for j := range f {
				s += float64(f[j]) * float64(g[j])
			}
			best = math.Max(best, s)
		}
		out[i] = best
	}
	return out, nil
}

// Refuse reports for each prompt whether the model should abstain.
func (d *KeySpaceDetector) Refuse(ctx context.Context, prompts [][]int) ([]bool, error) {
	s, err := d.Scores(ctx, prompts)
	if err != nil {
		return nil, err
	}
	out := make([]bool, len(s))
	for i, v := range s {
		out[i] = v >= d.Threshold
	}
	return out, nil
}

// padded returns a prompt right-padded to a power-of-two length (at least
// 16) and its mask, so that prompts of many lengths share a few compiled
// graphs.
func padded(p []int) (ids, mask *tensors.Tensor) {
	L := 16
	for L < len(p) {
		L *= 2
	}
	id := make([]int32, L)
	m := make([]int32, L)
	for j, t := range p {
		id[j], m[j] = int32(t), 1
	}
	return tensors.FromFlatDataAndDimensions(id, 1, L), tensors.FromFlatDataAndDimensions(m, 1, L)
}

// maskedMean averages x [B, T, F] over the positions where mask [B, T] is 1.
func maskedMean(x, mask *Node) *Node {
	w := ConvertDType(mask, x.DType())
	sum := ReduceSum(Mul(x, InsertAxes(w, -1)), 1)
	n := ReduceAndKeep(w, ReduceSum, -1)
	return Div(sum, Max(n, OnesLike(n)))
}

// features are the unit-normalised token-mean keys of each prompt, one
// prompt at a time (no padding, so batching cannot change them).
func (d *KeySpaceDetector) features(ctx context.Context, prompts [][]int) ([][]float32, error) {
	if d.exec == nil {
		target := fmt.Sprintf("model.layers.%d.mlp.down_proj", d.Layer)
		var err error
		d.exec, err = model.NewExec(d.backend, d.m.Store, func(_ *model.Scope, ids, mask *Node) *Node {
			var keys *Node
			hooks := d.hooks
			inner := hooks.Linear
			hooks.Linear = func(name string, x, y *Node) *Node {
				if name == target {
					keys = x
				}
				if inner != nil {
					return inner(name, x, y)
				}
				return y
			}
			d.m.Forward(models.Inputs{IDs: ids, Mask: mask}, models.Options{Hooks: hooks})
			if keys == nil {
				panic(fmt.Errorf("ksd: the model has no module %s", target))
			}
			f := maskedMean(ConvertDType(keys, dtypes.Float32), mask) // [1, I]
			return Div(f, Max(Sqrt(ReduceAndKeep(Square(f), ReduceSum, -1)), Scalar(f.Graph(), dtypes.Float32, 1e-12)))
		})
		if err != nil {
			return nil, fmt.Errorf("ksd: %w", err)
		}
	}
	out := make([][]float32, len(prompts))
	for i, p := range prompts {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		ids, mask := padded(p)
		res, err := d.exec.Call(ids, mask)
		if err != nil {
			return nil, fmt.Errorf("ksd: prompt %d: %w", i, err)
		}
		res[0].MustConstFlatData(func(f any) { out[i] = append([]float32(nil), f.([]float32)...) })
	}
	return out, nil
}
