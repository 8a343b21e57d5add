package train

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"sync"

	"github.com/gomlx/compute"
	"github.com/gomlx/compute/dtypes"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"

	"github.com/lethe-ml/lethe/data"
	"github.com/lethe-ml/lethe/models"
)

// Inputs are a batch's graph inputs, as a loss function sees them.
type Inputs struct {
	IDs, Labels, Mask, Positions, Segments *Node // [B, T] int32
	// Extra are the batch's side inputs (data.Batch.Extra) by name, [B, T,
	// K] each.
	Extra map[string]*Node
}

// ModelInputs converts them to the inputs of models.Model.Forward.
func (in Inputs) ModelInputs() models.Inputs {
	return models.Inputs{IDs: in.IDs, Labels: in.Labels, Mask: in.Mask, Positions: in.Positions, SegmentIDs: in.Segments}
}

// LossFunc runs the model on a batch in a graph and returns its outputs
// with Loss (the mean over the predicted tokens) and LossTokens (their
// number) set, so that accumulation can weight batches by tokens, and the
// Logits (evaluation measures accuracy on them). train is false for
// evaluation graphs.
type LossFunc func(in Inputs, train bool) models.Outputs

// CausalLM is the usual objective: transformers' causal-LM loss of m, with
// hooks (dropout, adapters) in training graphs and evalHooks in
// evaluation graphs.
func CausalLM(m *models.Model, hooks, evalHooks models.Hooks, headSamples int) LossFunc {
	return func(in Inputs, train bool) models.Outputs {
		opts := models.Options{Hooks: evalHooks}
		if train {
			opts = models.Options{Hooks: hooks, HeadSamples: headSamples}
		}
		return m.Forward(in.ModelInputs(), opts)
	}
}

// Trainer runs optimizer steps and evaluations of a model on a backend.
// Create it with NewTrainer; it is not safe for concurrent use.
type Trainer struct {
	model   *models.Model
	backend compute.Backend
	opt     *Optimizer
	loss    LossFunc
	names   []string
	accum   int

	// Gradient accumulators (accum > 1): one per parameter, plus the loss
	// sum and token count of the micro-batches so far.
	acc             []*model.Variable
	accLoss, accTok *model.Variable

	stepExec, microExec, applyExec, evalExec *model.Exec
	mu                                       sync.Mutex
	// masks are the gradient masks by parameter index (nil: none).
	masks    []*model.Variable
	gradFunc func(g *Graph, loss *Node, params []*Node) []*Node
	// extra names the side inputs (data.Batch.Extra) of training and of
	// evaluation batches, set by the first batch of each.
	extra, evalExtra extraNames
}

// extraNames are the names of the side inputs of a kind of batch.
type extraNames struct {
	names []string
	set   bool
}

// TrainerOptions configure NewTrainer.
type TrainerOptions struct {
	// Params are the tensors to train, by name (Model.ParamNames for full
	// fine-tuning, the adapter's for LoRA); Vars holds their variables when
	// they are not the model's own (adapters).
	Params []string
	Vars   map[string]*model.Variable
	// Optimizer configures the update.
	Optimizer OptimizerConfig
	// Loss is the objective (default: CausalLM without hooks).
	Loss LossFunc
	// GradAccum is the number of micro-batches per optimizer step [1]; the
	// gradient is that of the token-weighted mean loss over all of them.
	GradAccum int
	// Seed seeds the store's random generator (dropout masks).
	Seed int64
	// GradMasks multiply the gradients of the named parameters before the
	// optimizer (same shapes; 1 trains an entry, 0 freezes it), e.g.
	// SalUn's weight-saliency masks. Entries with a zero mask never change
	// unless weight decay is on.
	GradMasks map[string]*model.Variable
	// GradFunc replaces the gradient of the loss with respect to the
	// trained parameters (nodes in the order of Params) by another update
	// direction, which the optimizer then applies (after GradMasks): e.g.
	// MUDMAN's masked and normalised unlearning gradient. nil: Gradient.
	GradFunc func(g *Graph, loss *Node, params []*Node) []*Node
}

// NewTrainer prepares training of m on backend.
func NewTrainer(m *models.Model, backend compute.Backend, opts TrainerOptions) (*Trainer, error) {
	if len(opts.Params) == 0 {
		return nil, errors.New("train: no parameters to train")
	}
	if opts.GradAccum <= 0 {
		opts.GradAccum = 1
	}
	if opts.Loss == nil {
		opts.Loss = CausalLM(m, models.Hooks{}, models.Hooks{}, 0)
	}
	t := &Trainer{model: m, backend: backend, loss: opts.Loss, names: opts.Params, accum: opts.GradAccum, gradFunc: opts.GradFunc}
	for name, mask := range opts.GradMasks {
		i := slices.Index(opts.Params, name)
		if i < 0 {
			return nil, fmt.Errorf("train: gradient mask for %q, which is not trained", name)
		}
		if t.masks == nil {
			t.masks = make([]*model.Variable, len(opts.Params))
		}
		t.masks[i] = mask
	}
	var vars []*model.Variable
	for _, name := range opts.Params {
		v, ok := opts.Vars[name]
		if !ok {
			v, ok = m.Param(name)
		}
		if !ok {
			return nil, fmt.Errorf("train: no parameter %q", name)
		}
		vars = append(vars, v)
	}
	if err := m.Store.SetRNGStateFromSeed(opts.Seed); err != nil {
		return nil, fmt.Errorf("train: seed: %w", err)
	}
	var err error
	if t.opt, err = NewOptimizer(opts.Optimizer, m.Store, vars, opts.Params); err != nil {
		return nil, err
	}
	if t.accum > 1 {
		scope := m.Store.RootScope().In("grad_accum")
		for i, v := range vars {
			z := tensors.FromShape(v.Shape().Clone())
			z.MutableBytes(func(b []byte) { clear(b) })
			a, err := scope.CreateVariable(stateName(opts.Params[i]), z)
			if err != nil {
				return nil, err
			}
			t.acc = append(t.acc, a)
		}
		if t.accLoss, err = scope.CreateVariable("loss_sum", tensors.FromScalar(float32(0))); err != nil {
			return nil, err
		}
		if t.accTok, err = scope.CreateVariable("tokens", tensors.FromScalar(float32(0))); err != nil {
			return nil, err
		}
	}
	return t, nil
}

// Optimizer returns the trainer's optimizer.
func (t *Trainer) Optimizer() *Optimizer { return t.opt }

// batchInputs turns the graph inputs into Inputs.
func batchInputs(in []*Node, extra extraNames) Inputs { return InputsOf(in, extra.names) }

// InputsOf turns the graph inputs of BatchTensors' arguments into Inputs:
// the five [B, T] fields, then the side inputs named extra, in order.
func InputsOf(in []*Node, extra []string) Inputs {
	bi := Inputs{IDs: in[0], Labels: in[1], Mask: in[2], Positions: in[3], Segments: in[4]}
	for i, name := range extra {
		if bi.Extra == nil {
			bi.Extra = map[string]*Node{}
		}
		bi.Extra[name] = in[5+i]
	}
	return bi
}

// check records the names of the batches' side inputs, which every batch
// of a kind must have alike (the compiled graphs read them by position).
func (e *extraNames) check(batches ...*data.Batch) error {
	for _, b := range batches {
		var names []string
		for _, x := range b.Extra {
			names = append(names, x.Name)
		}
		if !e.set {
			e.names, e.set = names, true
			continue
		}
		if !slices.Equal(names, e.names) {
			return fmt.Errorf("train: batch side inputs %v, earlier batches had %v", names, e.names)
		}
	}
	return nil
}

// BatchTensors are the executor arguments of a batch, in the order of the
// inputs of a trainer's graphs: its five [B, T] int32 fields (InputIDs,
// Labels, AttentionMask, PositionIDs, SegmentIDs), then its side inputs
// [B, T, K].
func BatchTensors(b *data.Batch) []*tensors.Tensor {
	shape := []int{b.Size, b.Length}
	out := []*tensors.Tensor{
		tensors.FromFlatDataAndDimensions(b.InputIDs, shape...),
		tensors.FromFlatDataAndDimensions(b.Labels, shape...),
		tensors.FromFlatDataAndDimensions(b.AttentionMask, shape...),
		tensors.FromFlatDataAndDimensions(b.PositionIDs, shape...),
		tensors.FromFlatDataAndDimensions(b.SegmentIDs, shape...),
	}
	for _, e := range b.Extra {
		if e.Int32 != nil {
			out = append(out, tensors.FromFlatDataAndDimensions(e.Int32, b.Size, b.Length, e.K))
		} else {
			out = append(out, tensors.FromFlatDataAndDimensions(e.Float32, b.Size, b.Length, e.K))
		}
	}
	return out
}

// batchArgs turns a data batch into executor arguments.
func batchArgs(b *data.Batch) []any {
	var args []any
	for _, t := range BatchTensors(b) {
		args = append(args, t)
	}
	return args
}

// gradients returns the gradients of loss with respect to the trained
// parameters.
func (t *Trainer) gradients(g *Graph, loss *Node) []*Node {
	nodes := make([]*Node, len(t.opt.params))
	for i, p := range t.opt.params {
		nodes[i] = p.NodeValue(g)
	}
	var grads []*Node
	if t.gradFunc != nil {
		grads = t.gradFunc(g, loss, nodes)
	} else {
		grads = Gradient(loss, nodes...)
	}
	for i, mask := range t.masks {
		if mask != nil {
			grads[i] = Mul(grads[i], ConvertDType(mask.NodeValue(g), grads[i].DType()))
		}
	}
	return grads
}

// Gradients returns the gradient of the loss of batch with respect to each
// trained parameter (host copies, flattened, in the parameters' stored
// layout), without updating anything: e.g. the saliency of SalUn.
func (t *Trainer) Gradients(batch *data.Batch) (map[string][]float32, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	exec, err := model.NewExec(t.backend, t.model.Store, func(scope *model.Scope, in []*Node) []*Node {
		g := in[0].Graph()
		scope.SetTraining(g, true)
		out := t.loss(batchInputs(in, t.extra), true)
		nodes := make([]*Node, len(t.opt.params))
		for i, p := range t.opt.params {
			nodes[i] = p.NodeValue(g)
		}
		grads := Gradient(out.Loss, nodes...)
		for i := range grads {
			grads[i] = ConvertDType(grads[i], dtypes.Float32)
		}
		return grads
	})
	if err != nil {
		return nil, fmt.Errorf("train: gradients: %w", err)
	}
	defer exec.Finalize()
	if err := t.extra.check(batch); err != nil {
		return nil, err
	}
	res, err := exec.Call(batchArgs(batch)...)
	if err != nil {
		return nil, fmt.Errorf("train: gradients: %w", err)
	}
	out := map[string][]float32{}
	for i, name := range t.names {
		var v []float32
		res[i].MustConstFlatData(func(f any) { v = append(v, f.([]float32)...) })
		out[name] = v
	}
	return out, nil
}

// StepResult reports one optimizer step.
type StepResult struct {
	// Loss is the token-weighted mean loss of the step's micro-batches.
	Loss float64
	// Tokens is the number of predicted tokens.
	Tokens int
	// GradNorm is the global gradient norm before clipping.
	GradNorm float64
	// LR is the learning rate used.
	LR float64
}

// Step runs one optimizer step on micro-batches (GradAccum of them) with
// learning rate lr.
func (t *Trainer) Step(batches []*data.Batch, lr float64) (StepResult, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(batches) != t.accum {
		return StepResult{}, fmt.Errorf("train: step needs %d micro-batches, got %d", t.accum, len(batches))
	}
	if err := t.extra.check(batches...); err != nil {
		return StepResult{}, err
	}
	lrT := tensors.FromScalar(float32(lr))
	if t.accum == 1 {
		if t.stepExec == nil {
			var err error
			t.stepExec, err = model.NewExec(t.backend, t.model.Store, func(scope *model.Scope, in []*Node) []*Node {
				g := in[0].Graph()
				scope.SetTraining(g, true)
				out := t.loss(batchInputs(in, t.extra), true)
				loss, tokens := out.Loss, out.LossTokens
				norm := t.opt.Apply(g, t.gradients(g, loss), in[len(in)-1])
				return []*Node{ConvertDType(loss, dtypes.Float32), ConvertDType(tokens, dtypes.Float32), norm}
			})
			if err != nil {
				return StepResult{}, fmt.Errorf("train: %w", err)
			}
		}
		out, err := t.stepExec.Call(append(batchArgs(batches[0]), lrT)...)
		if err != nil {
			return StepResult{}, fmt.Errorf("train: step: %w", err)
		}
		return StepResult{Loss: scalar(out[0]), Tokens: int(scalar(out[1])), GradNorm: scalar(out[2]), LR: lr}, nil
	}
	if t.microExec == nil {
		var err error
		t.microExec, err = model.NewExec(t.backend, t.model.Store, func(scope *model.Scope, in []*Node) []*Node {
			g := in[0].Graph()
			scope.SetTraining(g, true)
			out := t.loss(batchInputs(in, t.extra), true)
			loss, tokens := out.Loss, ConvertDType(out.LossTokens, dtypes.Float32)
			// Accumulate d(sum of token losses), divided by all tokens later.
			sum := Mul(ConvertDType(loss, dtypes.Float32), tokens)
			for i, grad := range t.gradients(g, sum) {
				t.acc[i].SetNodeValue(Add(t.acc[i].NodeValue(g), ConvertDType(grad, t.acc[i].DType())))
			}
			t.accLoss.SetNodeValue(Add(t.accLoss.NodeValue(g), sum))
			t.accTok.SetNodeValue(Add(t.accTok.NodeValue(g), tokens))
			return []*Node{tokens}
		})
		if err != nil {
			return StepResult{}, fmt.Errorf("train: %w", err)
		}
		t.applyExec, err = model.NewExec(t.backend, t.model.Store, func(scope *model.Scope, lr *Node) []*Node {
			g := lr.Graph()
			scope.SetTraining(g, true)
			tokens := Max(t.accTok.NodeValue(g), OnesLike(t.accTok.NodeValue(g)))
			grads := make([]*Node, len(t.acc))
			for i, a := range t.acc {
				grads[i] = Div(a.NodeValue(g), ConvertDType(tokens, a.DType()))
				a.SetNodeValue(ZerosLike(a.NodeValue(g)))
			}
			loss := Div(t.accLoss.NodeValue(g), tokens)
			all := t.accTok.NodeValue(g)
			t.accLoss.SetNodeValue(ZerosLike(loss))
			t.accTok.SetNodeValue(ZerosLike(all))
			norm := t.opt.Apply(g, grads, lr)
			return []*Node{loss, all, norm}
		})
		if err != nil {
			return StepResult{}, fmt.Errorf("train: %w", err)
		}
	}
	for i, b := range batches {
		if _, err := t.microExec.Call(batchArgs(b)...); err != nil {
			return StepResult{}, fmt.Errorf("train: micro-batch %d: %w", i, err)
		}
	}
	out, err := t.applyExec.Call(lrT)
	if err != nil {
		return StepResult{}, fmt.Errorf("train: step: %w", err)
	}
	return StepResult{Loss: scalar(out[0]), Tokens: int(scalar(out[1])), GradNorm: scalar(out[2]), LR: lr}, nil
}

// EvalResult summarises an evaluation.
type EvalResult struct {
	Loss          float64 `json:"loss"`
	Perplexity    float64 `json:"perplexity"`
	TokenAccuracy float64 `json:"token_accuracy"`
	Tokens        int     `json:"tokens"`
}

// Evaluate computes the token-weighted loss, perplexity and next-token
// accuracy over batches, without dropout.
func (t *Trainer) Evaluate(batches []*data.Batch) (EvalResult, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.evalExec == nil {
		var err error
		t.evalExec, err = model.NewExec(t.backend, t.model.Store, func(scope *model.Scope, in []*Node) []*Node {
			g := in[0].Graph()
			scope.SetTraining(g, true) // bind weights as parameters: they change between evaluations
			bi := batchInputs(in, t.evalExtra)
			out := t.loss(bi, false)
			correct := tokenAccuracy(out.Logits, bi.Labels)
			return []*Node{ConvertDType(out.Loss, dtypes.Float32), ConvertDType(out.LossTokens, dtypes.Float32), correct}
		})
		if err != nil {
			return EvalResult{}, fmt.Errorf("train: %w", err)
		}
	}
	if err := t.evalExtra.check(batches...); err != nil {
		return EvalResult{}, err
	}
	var sum, correct float64
	var tokens int
	for i, b := range batches {
		out, err := t.evalExec.Call(batchArgs(b)...)
		if err != nil {
			return EvalResult{}, fmt.Errorf("train: eval batch %d: %w", i, err)
		}
		n := scalar(out[1])
		sum += scalar(out[0]) * n
		correct += scalar(out[2])
		tokens += int(n)
	}
	r := EvalResult{Tokens: tokens}
	if tokens > 0 {
		r.Loss = sum / float64(tokens)
		r.Perplexity = math.Exp(r.Loss)
		r.TokenAccuracy = correct / float64(tokens)
	}
	return r, nil
}

// tokenAccuracy counts the predicted tokens whose argmax is the label.
func tokenAccuracy(logits, labels *Node) *Node {
	T := logits.Shape().Dimensions[1] // logits [B, T, V]
	pred := ArgMax(SliceAxis(logits, 1, AxisRange(0, T-1)), -1, dtypes.Int32)
	target := ConvertDType(SliceAxis(labels, 1, AxisRange(1, T)), dtypes.Int32)
	hit := And(Equal(pred, target), GreaterOrEqual(target, ZerosLike(target)))
	return ReduceAllSum(ConvertDType(hit, dtypes.Float32))
}

func scalar(t *tensors.Tensor) float64 {
	switch v := t.Value().(type) {
	case float32:
		return float64(v)
	case float64:
		return v
	}
	return math.NaN()
}
