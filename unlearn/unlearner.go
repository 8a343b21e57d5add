package unlearn

import (
	"errors"
	"fmt"
	"sync"

	"github.com/gomlx/compute"
	"github.com/gomlx/compute/dtypes"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/ml/model"

	"github.com/lethe-ml/lethe/data"
	"github.com/lethe-ml/lethe/models"
	"github.com/lethe-ml/lethe/train"
)

// Options configure NewUnlearner.
type Options struct {
	// Method is the objective.
	Method *Method
	// Params and Vars are what is trained (train.TrainerOptions): every
	// weight of the model, a subset, or an adapter's tensors.
	Params []string
	Vars   map[string]*model.Variable
	// Hooks apply to the model's passes in training (adapters, dropout).
	Hooks models.Hooks
	// Reference is the frozen model the method compares with (nil: the
	// model itself with ReferenceHooks, right for adapters, whose base is
	// the reference when they are off). Model.Frozen makes one for full
	// weights.
	Reference      *models.Model
	ReferenceHooks models.Hooks
	// Layout is the number of forget, retain and alternate rows of every
	// step; Step pads shorter parts with empty rows.
	Layout Layout
	// Optimizer, Seed and GradMasks as in train.TrainerOptions.
	Optimizer train.OptimizerConfig
	Seed      int64
	GradMasks map[string]*model.Variable
}

// Unlearner runs optimizer steps of an unlearning objective on a model.
type Unlearner struct {
	m      *models.Model
	opts   Options
	tr     *train.Trainer
	layout Layout
	// terms are the objective's forget and retain terms of the training
	// graphs being built, for masked gradients (mudman).
	mu      sync.Mutex
	terms   map[*Graph][2]*Node
	backend compute.Backend
}

// NewUnlearner prepares unlearning of m on backend.
func NewUnlearner(m *models.Model, backend compute.Backend, opts Options) (*Unlearner, error) {
	if opts.Method == nil {
		return nil, errors.New("unlearn: no method")
	}
	l := opts.Layout
	if l[Forget] <= 0 {
		return nil, fmt.Errorf("unlearn: layout needs forget rows, got %v", l)
	}
	if opts.Method.NeedsAlternate() && l[Alternate] != l[Forget] {
		return nil, fmt.Errorf("unlearn: method %s needs one alternate row per forget row, got layout %v", opts.Method.Name(), l)
	}
	u := &Unlearner{m: m, opts: opts, layout: l, terms: map[*Graph][2]*Node{}, backend: backend}
	loss := func(in train.Inputs, training bool) models.Outputs {
		hooks := models.Hooks{}
		if training {
			hooks = opts.Hooks
		}
		cur := newPass(m, in, models.Options{Hooks: hooks}, u.layout)
		var ref *Pass
		if opts.Method.NeedsReference() {
			r := opts.Reference
			if r == nil {
				r = m
			}
			ref = newPass(r, in, models.Options{Hooks: opts.ReferenceHooks}, u.layout)
		}
		out := cur.out
		out.Loss = opts.Method.Loss(cur, ref)
		if training && opts.Method.Masked() {
			f, r := opts.Method.Terms(cur, ref)
			u.mu.Lock()
			u.terms[in.IDs.Graph()] = [2]*Node{f, r}
			u.mu.Unlock()
		}
		// Steps weigh equally under accumulation; evaluation counts the
		// forget tokens.
		out.LossTokens = ConvertDType(ReduceAllSum(cur.View(Forget).Valid), dtypes.Float32)
		if training {
			out.LossTokens = OnesLike(out.Loss)
		}
		return out
	}
	to := train.TrainerOptions{Params: opts.Params, Vars: opts.Vars,
		Optimizer: opts.Optimizer, Loss: loss, Seed: opts.Seed, GradMasks: opts.GradMasks}
	if opts.Method.Masked() {
		to.GradFunc = func(g *Graph, loss *Node, params []*Node) []*Node {
			u.mu.Lock()
			t, ok := u.terms[g]
			delete(u.terms, g)
			u.mu.Unlock()
			if !ok {
				panic("unlearn: no objective terms recorded for this graph")
			}
			return MaskedGradients(t[0], t[1], params)
		}
	}
	var err error
	u.tr, err = train.NewTrainer(m, backend, to)
	if err != nil {
		return nil, err
	}
	return u, nil
}

// Backend returns the backend the unlearner trains on.
func (u *Unlearner) Backend() compute.Backend { return u.backend }

// Method returns the objective.
func (u *Unlearner) Method() *Method { return u.opts.Method }

// Trainer returns the underlying trainer (checkpoints, evaluation).
func (u *Unlearner) Trainer() *train.Trainer { return u.tr }

// Step runs one optimizer step on a forget batch, a retain batch (nil if
// the method has no retain term) and, for dpo, the alternate answers of
// the forget batch, with learning rate lr. A part with fewer rows than the
// layout is padded with rows that count for nothing.
func (u *Unlearner) Step(forget, retain, alternate *data.Batch, lr float64) (train.StepResult, error) {
	parts := [numParts]*data.Batch{forget, retain, alternate}
	for p := range numParts {
		b := parts[p]
		want := u.layout[p]
		if b == nil && want > 0 {
			b = &data.Batch{Length: 1}
		}
		if b == nil {
			continue
		}
		if b.Size > want {
			return train.StepResult{}, fmt.Errorf("unlearn: %s batch has %d rows, the layout %d", Part(p), b.Size, want)
		}
		parts[p] = padRows(b, want)
	}
	batch, _ := stack(parts)
	return u.tr.Step([]*data.Batch{batch}, lr)
}

// Gradients returns the gradient of the objective on a forget batch alone
// (the retain and alternate parts empty) for every trained parameter:
// SalUn's saliency.
func (u *Unlearner) Gradients(forget *data.Batch) (map[string][]float32, error) {
	return u.GradientsOf(Forget, forget)
}

// GradientsOf returns the gradient of the objective on a batch of one
// part, the others empty: for a forget batch the forget term's gradient,
// for a retain batch the retain term's (times gamma and alpha).
func (u *Unlearner) GradientsOf(part Part, b *data.Batch) (map[string][]float32, error) {
	var parts [numParts]*data.Batch
	parts[part] = b
	for p := range numParts {
		b := parts[p]
		if b == nil && u.layout[p] > 0 {
			b = &data.Batch{Length: 1}
		}
		if b != nil {
			if u.layout[p] == 0 {
				return nil, fmt.Errorf("unlearn: the layout has no %s rows", Part(p))
			}
			if b.Size > u.layout[p] {
				return nil, fmt.Errorf("unlearn: %s batch has %d rows, the layout %d", Part(p), b.Size, u.layout[p])
			}
			parts[p] = padRows(b, u.layout[p])
		}
	}
	batch, _ := stack(parts)
	return u.tr.Gradients(batch)
}

// padRows returns b with empty rows (one visible token, no labels) up to n
// rows.
func padRows(b *data.Batch, n int) *data.Batch {
	if b.Size == n {
		return b
	}
	L := max(b.Length, 1)
	out := *b
	out.Length = L
	grow := func(f []int32, fill int32) []int32 {
		var x []int32
		for r := 0; r < b.Size; r++ {
			x = append(x, b.At(f, r)...)
			for range L - b.Length {
				x = append(x, fill)
			}
		}
		for range (n - b.Size) * L {
			x = append(x, fill)
		}
		return x
	}
	out.InputIDs = grow(b.InputIDs, 0)
	out.Labels = grow(b.Labels, data.IgnoreIndex)
	out.AttentionMask = grow(b.AttentionMask, 0)
	for r := b.Size; r < n; r++ {
		out.AttentionMask[r*L] = 1 // one visible token: no fully masked attention row
	}
	out.PositionIDs = grow(b.PositionIDs, 0)
	out.SegmentIDs = grow(b.SegmentIDs, 0)
	out.Size = n
	return &out
}
