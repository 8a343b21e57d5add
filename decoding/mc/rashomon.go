package mc

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"

	"github.com/gomlx/compute"
	"github.com/gomlx/compute/dtypes"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"

	"github.com/lethe-ml/lethe/decoding/uncertainty"
	"github.com/lethe-ml/lethe/models"
)

// Example is a prompt and the completion a model should give.
type Example struct{ Prompt, Completion []int }

// RashomonOptions configure NewRashomon.
type RashomonOptions struct {
	// Masks is the number of dropout masks (models) sampled [20].
	Masks int
	// Rate is the fraction of hidden units each mask drops in every
	// residual branch [0.05].
	Rate float64
	// Epsilon is the loss tolerance of the Rashomon set: masks whose mean
	// loss is within Epsilon of the best model's (the model itself
	// included) belong to it [0.05 nats].
	Epsilon float64
	// Seed draws the masks.
	Seed uint64
	// Hooks apply to every pass (adapters).
	Hooks models.Hooks
}

// Rashomon explores a dropout Rashomon set (Hsu et al. 2024): each
// sampled mask drops a fixed set of hidden units — the same for every
// token and example — in every attention and MLP branch, rescaling the
// others by 1/(1−rate), and so is one model near the original. The masks
// whose loss on a dataset stays within ε of the best form the empirical
// Rashomon set, over which predictive multiplicity is measured.
type Rashomon struct {
	m     *models.Model
	b     compute.Backend
	opts  RashomonOptions
	masks [][]float32 // per mask [L, 2, H]
	mu    sync.Mutex
	exec  *model.Exec
}

// RashomonResult is the evaluation of the masks on a dataset.
type RashomonResult struct {
	// BaseLoss is the model's mean completion loss (nats per token);
	// Losses that of every mask.
	BaseLoss float64   `json:"base_loss"`
	Losses   []float64 `json:"losses"`
	// Set lists the masks in the Rashomon set (within Epsilon of the
	// best of the model and its masks); LossMin, LossMax and LossStd
	// spread the losses of the set, the model included when it is in it.
	Set     []int   `json:"set"`
	LossMin float64 `json:"loss_min"`
	LossMax float64 `json:"loss_max"`
	LossStd float64 `json:"loss_std"`
	// Accuracies are the base model's and each mask's fraction of
	// examples whose every completion token is the greedy prediction.
	BaseAccuracy float64   `json:"base_accuracy"`
	Accuracies   []float64 `json:"accuracies"`
	// BaseCorrect and Correct are those per example (1 right, 0 wrong).
	BaseCorrect []int   `json:"-"`
	Correct     [][]int `json:"-"`
	// Ambiguity, Discrepancy and Disagreement are the predictive
	// multiplicity of the set's per-example correctness against the base
	// model (uncertainty.Rashomon).
	Ambiguity    float64 `json:"ambiguity"`
	Discrepancy  float64 `json:"discrepancy"`
	Disagreement float64 `json:"disagreement"`
}

// NewRashomon samples the masks.
func NewRashomon(m *models.Model, b compute.Backend, opts RashomonOptions) (*Rashomon, error) {
	if opts.Masks == 0 {
		opts.Masks = 20
	}
	if opts.Rate == 0 {
		opts.Rate = 0.05
	}
	if opts.Epsilon == 0 {
		opts.Epsilon = 0.05
	}
	if opts.Masks < 1 || opts.Rate < 0 || opts.Rate >= 1 || opts.Epsilon < 0 {
		return nil, fmt.Errorf("mc: rashomon: masks must be positive, rate in [0, 1) and epsilon >= 0; got %d, %g, %g", opts.Masks, opts.Rate, opts.Epsilon)
	}
	r := &Rashomon{m: m, b: b, opts: opts}
	L, H := m.Config.NumLayers, m.Config.HiddenSize
	rng := rand.New(rand.NewPCG(opts.Seed, 0x7261))
	scale := float32(1 / (1 - opts.Rate))
	for range opts.Masks {
		mask := make([]float32, L*2*H)
		for i := range mask {
			if rng.Float64() >= opts.Rate {
				mask[i] = scale
			}
		}
		r.masks = append(r.masks, mask)
	}
	return r, nil
}

// Evaluate scores the base model and every mask on the examples.
func (r *Rashomon) Evaluate(ctx context.Context, examples []Example) (*RashomonResult, error) {
	if len(examples) == 0 {
		return nil, errors.New("mc: rashomon: no examples")
	}
	L, H := r.m.Config.NumLayers, r.m.Config.HiddenSize
	ones := make([]float32, L*2*H)
	for i := range ones {
		ones[i] = 1
	}
	base, baseCorrect, err := r.score(ctx, ones, examples)
	if err != nil {
		return nil, err
	}
	res := &RashomonResult{BaseLoss: base, BaseAccuracy: mean(baseCorrect), BaseCorrect: baseCorrect}
	var correct [][]int
	for _, mask := range r.masks {
		loss, c, err := r.score(ctx, mask, examples)
		if err != nil {
			return nil, err
		}
		res.Losses = append(res.Losses, loss)
		res.Accuracies = append(res.Accuracies, mean(c))
		correct = append(correct, c)
	}
	res.Correct = correct
	// The set is taken over the model and its masks: index 0 is the model.
	set, err := uncertainty.Rashomon(append([]float64{base}, res.Losses...), r.opts.Epsilon,
		append([][]int{baseCorrect}, correct...), baseCorrect)
	if err != nil {
		return nil, err
	}
	for _, k := range set.Members {
		if k > 0 {
			res.Set = append(res.Set, k-1)
		}
	}
	res.LossMin, res.LossMax, res.LossStd = set.MinLoss, set.MaxLoss, set.StdLoss
	res.Ambiguity, res.Discrepancy, res.Disagreement = set.Ambiguity, set.Discrepancy, set.Disagreement
	return res, nil
}

// score returns the mean completion loss per token and, per example,
// whether every completion token is the greedy prediction, with the
// hidden units scaled by mask [L, 2, H].
func (r *Rashomon) score(ctx context.Context, mask []float32, examples []Example) (float64, []int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.exec == nil {
		var err error
		r.exec, err = model.NewExec(r.b, r.m.Store, func(scope *model.Scope, in []*Node) []*Node {
			scope.SetTraining(in[0].Graph(), true) // weights as parameters
			return r.graph(in[0], in[1], in[2], in[3])
		})
		if err != nil {
			return 0, nil, fmt.Errorf("mc: rashomon: %w", err)
		}
	}
	L, H := r.m.Config.NumLayers, r.m.Config.HiddenSize
	maskT := tensors.FromFlatDataAndDimensions(mask, L, 2, H)
	var sum, n float64
	var correct []int
	for _, e := range examples {
		if err := ctx.Err(); err != nil {
			return 0, nil, err
		}
		seq := append(append([]int(nil), e.Prompt...), e.Completion...)
		T := bucket(len(seq))
		ids, valid, targets := make([]int32, T), make([]int32, T), make([]int32, T)
		for j, id := range seq {
			ids[j], valid[j] = int32(id), 1
		}
		for i, id := range e.Completion {
			pos := len(e.Prompt) + i - 1
			targets[pos] = int32(id) + 1 // 0: not a completion position
		}
		res, err := r.exec.Call(tensors.FromFlatDataAndDimensions(ids, 1, T), tensors.FromFlatDataAndDimensions(valid, 1, T),
			tensors.FromFlatDataAndDimensions(targets, 1, T), maskT)
		if err != nil {
			return 0, nil, fmt.Errorf("mc: rashomon: %w", err)
		}
		nll, hits := flat(res[0])[0], flat(res[1])[0]
		sum += nll
		n += float64(len(e.Completion))
		c := 0
		if int(hits) == len(e.Completion) {
			c = 1
		}
		correct = append(correct, c)
	}
	return sum / n, correct, nil
}

// graph returns the summed NLL of the completion tokens (targets > 0 hold
// id+1) and the number of them the argmax predicts, with the residual
// branches scaled by units [L, 2, H].
func (r *Rashomon) graph(ids, valid, targets, units *Node) []*Node {
	hooks := r.opts.Hooks
	inner := hooks.Residual
	hooks.Residual = func(layer int, branch string, x *Node) *Node {
		if inner != nil {
			x = inner(layer, branch, x)
		}
		b := 0
		if branch == "mlp" {
			b = 1
		}
		H := x.Shape().Dimensions[2]
		u := Reshape(Slice(units, AxisElem(layer), AxisElem(b), AxisRange()), 1, 1, H)
		return Mul(x, ConvertDType(u, x.DType()))
	}
	out := r.m.Forward(models.Inputs{IDs: ids, Mask: valid}, models.Options{Hooks: hooks})
	lp := LogSoftmax(ConvertDType(out.Logits, dtypes.Float32)) // [1, T, V]
	V := lp.Shape().Dimensions[2]
	on := GreaterThan(targets, ZerosLike(targets))
	tgt := Sub(targets, OnesLike(targets))
	tgt = Where(on, tgt, ZerosLike(tgt))
	hot := OneHot(tgt, V, dtypes.Float32)
	onF := ConvertDType(on, dtypes.Float32)
	nll := ReduceAllSum(Mul(Neg(ReduceSum(Mul(lp, hot), -1)), onF))
	pred := ArgMax(lp, -1, dtypes.Int32)
	hit := ReduceAllSum(Mul(ConvertDType(Equal(pred, ConvertDType(tgt, dtypes.Int32)), dtypes.Float32), onF))
	return []*Node{ConvertDType(nll, dtypes.Float64), ConvertDType(hit, dtypes.Float64)}
}

func mean(xs []int) float64 {
	s := 0
	for _, x := range xs {
		s += x
	}
	return float64(s) / float64(max(len(xs), 1))
}

func mean64(xs []float64) float64 {
	s := 0.0
	for _, x := range xs {
		s += x
	}
	return s / float64(max(len(xs), 1))
}
