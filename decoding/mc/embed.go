package mc

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/gomlx/compute"
	"github.com/gomlx/compute/dtypes"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"

	"github.com/lethe-ml/lethe/models"
)

// Embedder gives answers the sentence embedding INSIDE's EigenScore uses
// (Chen et al. 2024): the hidden state of the answer's last token at the
// model's middle layer.
type Embedder struct {
	m     *models.Model
	b     compute.Backend
	hooks models.Hooks
	mu    sync.Mutex
	exec  *model.Exec
}

// NewEmbedder prepares embedding with m (and hooks, e.g. an adapter).
func NewEmbedder(m *models.Model, b compute.Backend, hooks models.Hooks) *Embedder {
	return &Embedder{m: m, b: b, hooks: hooks}
}

// Embed returns the embedding of each answer after prompt.
func (e *Embedder) Embed(ctx context.Context, prompt []int, answers [][]int) ([][]float64, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.exec == nil {
		var err error
		e.exec, err = model.NewExec(e.b, e.m.Store, func(scope *model.Scope, in []*Node) []*Node {
			out := e.m.Forward(models.Inputs{IDs: in[0], Mask: in[1]}, models.Options{Hooks: e.hooks})
			mid := out.Hidden[len(out.Hidden)/2] // the output of the middle layer
			return []*Node{ConvertDType(mid, dtypes.Float64)}
		})
		if err != nil {
			return nil, fmt.Errorf("mc: embed: %w", err)
		}
	}
	var out [][]float64
	for i, a := range answers {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if len(a) == 0 {
			return nil, errors.New("mc: embed: an empty answer")
		}
		seq := append(append([]int(nil), prompt...), a...)
		T := bucket(len(seq))
		ids, mask := make([]int32, T), make([]int32, T)
		for j, id := range seq {
			ids[j], mask[j] = int32(id), 1
		}
		res, err := e.exec.Call(tensors.FromFlatDataAndDimensions(ids, 1, T), tensors.FromFlatDataAndDimensions(mask, 1, T))
		if err != nil {
			return nil, fmt.Errorf("mc: embed answer %d: %w", i, err)
		}
		h := flat(res[0]) // [1, T, H]
		H := len(h) / T
		last := len(seq) - 1
		out = append(out, append([]float64(nil), h[last*H:(last+1)*H]...))
	}
	return out, nil
}
