// Package train runs training on GoMLX: optimizers with torch's semantics,
// learning-rate schedules, gradient clipping and accumulation, evaluation,
// checkpoints that resume exactly, progress and metrics.
package train

import (
	"errors"
	"fmt"
	"strings"

	"github.com/gomlx/compute/dtypes"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"
)

// OptimizerConfig configures the optimizer (the `optimizer:` block of a
// recipe).
type OptimizerConfig struct {
	// Name is "adamw" (default) or "sgd".
	Name string `yaml:"name" json:"name"`
	// LR is the peak learning rate (schedules scale it).
	LR float64 `yaml:"lr" json:"lr"`
	// Betas are AdamW's β₁, β₂ [0.9, 0.999].
	Betas []float64 `yaml:"betas" json:"betas"`
	// Eps is AdamW's ε [1e-8].
	Eps float64 `yaml:"eps" json:"eps"`
	// WeightDecay is decoupled weight decay (AdamW) or L2 (SGD) [0].
	WeightDecay float64 `yaml:"weight_decay" json:"weight_decay"`
	// DecayNormsAndBiases also decays norm weights and biases (off by
	// default, as most fine-tuning recipes; torch's AdamW decays every
	// parameter it is given).
	DecayNormsAndBiases bool `yaml:"decay_norms_and_biases" json:"decay_norms_and_biases"`
	// Momentum is SGD's momentum [0].
	Momentum float64 `yaml:"momentum" json:"momentum"`
	// MaxGradNorm clips the global L2 norm of the gradients (0: off), as
	// torch.nn.utils.clip_grad_norm_.
	MaxGradNorm float64 `yaml:"max_grad_norm" json:"max_grad_norm"`
}

// Validate fills defaults and checks c.
func (c *OptimizerConfig) Validate() error {
	var errs []error
	if c.Name == "" {
		c.Name = "adamw"
	}
	c.Name = strings.ToLower(c.Name)
	if c.Name != "adamw" && c.Name != "sgd" {
		errs = append(errs, fmt.Errorf("optimizer.name: %q is not one of adamw, sgd", c.Name))
	}
	if len(c.Betas) == 0 {
		c.Betas = []float64{0.9, 0.999}
	}
	if len(c.Betas) != 2 || c.Betas[0] < 0 || c.Betas[0] >= 1 || c.Betas[1] < 0 || c.Betas[1] >= 1 {
		errs = append(errs, fmt.Errorf("optimizer.betas: want two values in [0, 1), got %v", c.Betas))
	}
	if c.Eps == 0 {
		c.Eps = 1e-8
	}
	if !(c.LR > 0) {
		errs = append(errs, fmt.Errorf("optimizer.lr: must be positive, got %g", c.LR))
	}
	if c.WeightDecay < 0 {
		errs = append(errs, fmt.Errorf("optimizer.weight_decay: must be >= 0, got %g", c.WeightDecay))
	}
	if c.Momentum < 0 || c.Momentum >= 1 {
		errs = append(errs, fmt.Errorf("optimizer.momentum: must be in [0, 1), got %g", c.Momentum))
	}
	if c.MaxGradNorm < 0 {
		errs = append(errs, fmt.Errorf("optimizer.max_grad_norm: must be >= 0, got %g", c.MaxGradNorm))
	}
	return errors.Join(errs...)
}

// Optimizer updates a set of parameters inside a training graph. Its state
// (moments, step count) lives in variables of the model's store, under the
// scope "optimizer", so checkpoints carry it.
type Optimizer struct {
	cfg    OptimizerConfig
	params []*model.Variable
	decay  []bool
	// state per parameter: AdamW m, v; SGD momentum buffer.
	m, v []*model.Variable
	step *model.Variable // float64 count of applied updates
}

// IsNormOrBias reports whether a parameter name is a bias or a norm weight
// (excluded from weight decay by default).
func IsNormOrBias(name string) bool {
	n := strings.ToLower(name)
	return strings.HasSuffix(n, "bias") || strings.Contains(n, "norm") || strings.Contains(n, "ln_")
}

// NewOptimizer creates the optimizer state for params in store. names give
// the parameters' names (for the weight-decay rule and state variable
// names).
func NewOptimizer(cfg OptimizerConfig, store *model.Store, params []*model.Variable, names []string) (*Optimizer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if len(names) != len(params) {
		return nil, fmt.Errorf("optimizer: %d names for %d parameters", len(names), len(params))
	}
	o := &Optimizer{cfg: cfg, params: params}
	for i, p := range params {
		o.decay = append(o.decay, cfg.WeightDecay > 0 && (cfg.DecayNormsAndBiases || !IsNormOrBias(names[i])))
		zeros := func(kind string) (*model.Variable, error) {
			t := tensors.FromShape(p.Shape().Clone())
			t.MutableBytes(func(b []byte) { clear(b) })
			return store.RootScope().In("optimizer").In("%s", kind).CreateVariable(stateName(names[i]), t)
		}
		switch cfg.Name {
		case "adamw":
			m, err := zeros("exp_avg")
			if err != nil {
				return nil, err
			}
			v, err := zeros("exp_avg_sq")
			if err != nil {
				return nil, err
			}
			o.m, o.v = append(o.m, m), append(o.v, v)
		case "sgd":
			if cfg.Momentum > 0 {
				m, err := zeros("momentum_buffer")
				if err != nil {
					return nil, err
				}
				o.m = append(o.m, m)
			}
		}
	}
	var err error
	if o.step, err = store.RootScope().In("optimizer").CreateVariable("step", tensors.FromScalar(float64(0))); err != nil {
		return nil, err
	}
	return o, nil
}

// stateName turns a parameter name into a variable name.
func stateName(name string) string {
	return strings.ReplaceAll(strings.ReplaceAll(name, "/", "."), " ", "_")
}

// Config returns the optimizer's configuration.
func (o *Optimizer) Config() OptimizerConfig { return o.cfg }

// Params returns the parameters the optimizer updates.
func (o *Optimizer) Params() []*model.Variable { return o.params }

// State returns the optimizer's state variables.
func (o *Optimizer) State() []*model.Variable {
	out := append(append([]*model.Variable{}, o.m...), o.v...)
	return append(out, o.step)
}

// GlobalNorm returns the L2 norm of all grads together, computed in float32
// (float64 when a gradient is float64).
func GlobalNorm(grads []*Node) *Node {
	dt := dtypes.Float32
	for _, g := range grads {
		if g.DType() == dtypes.Float64 {
			dt = dtypes.Float64
		}
	}
	var sum *Node
	for _, g := range grads {
		s := ReduceAllSum(Square(ConvertDType(g, dt)))
		if sum == nil {
			sum = s
		} else {
			sum = Add(sum, s)
		}
	}
	return Sqrt(sum)
}

// Apply builds the update of every parameter in graph g from grads (same
// order as the parameters) and the learning rate lr (a scalar node, so
// schedules do not recompile). It clips the global gradient norm first
// when configured, and returns that norm (before clipping).
func (o *Optimizer) Apply(g *Graph, grads []*Node, lr *Node) (gradNorm *Node) {
	cfg := o.cfg
	gradNorm = GlobalNorm(grads)
	if cfg.MaxGradNorm > 0 {
		// torch: clip_coef = max_norm / (total_norm + 1e-6), clamped to 1.
		coef := Min(OnesLike(gradNorm), Div(ScalarLike(gradNorm, cfg.MaxGradNorm), AddScalar(gradNorm, 1e-6)))
		for i := range grads {
			grads[i] = Mul(grads[i], ConvertDType(coef, grads[i].DType()))
		}
	}
	step := AddScalar(o.step.NodeValue(g), 1)
	o.step.SetNodeValue(step)
	for i, p := range o.params {
		w := p.NodeValue(g)
		dt := w.DType()
		lrT := ConvertDType(lr, dt)
		grad := ConvertDType(grads[i], dt)
		switch cfg.Name {
		case "adamw":
			b1, b2 := cfg.Betas[0], cfg.Betas[1]
			if o.decay[i] {
				// Decoupled decay first, as torch.optim.AdamW.
				w = Mul(w, OneMinus(MulScalar(lrT, cfg.WeightDecay)))
			}
			m := Add(MulScalar(o.m[i].NodeValue(g), b1), MulScalar(grad, 1-b1))
			v := Add(MulScalar(o.v[i].NodeValue(g), b2), MulScalar(Square(grad), 1-b2))
			o.m[i].SetNodeValue(m)
			o.v[i].SetNodeValue(v)
			stepT := ConvertDType(step, dt)
			bc1 := OneMinus(Pow(ScalarLike(stepT, b1), stepT))
			bc2 := OneMinus(Pow(ScalarLike(stepT, b2), stepT))
			denom := AddScalar(Div(Sqrt(v), Sqrt(bc2)), cfg.Eps)
			w = Sub(w, Mul(Div(lrT, bc1), Div(m, denom)))
		case "sgd":
			if cfg.WeightDecay > 0 && o.decay[i] {
				grad = Add(grad, MulScalar(w, cfg.WeightDecay))
			}
			if cfg.Momentum > 0 {
				// torch: buf = momentum·buf + grad (buf = grad at step 1).
				prev := o.m[i].NodeValue(g)
				first := ConvertDType(Equal(step, ScalarLike(step, 1)), dt)
				buf := Add(Mul(first, grad), Mul(OneMinus(first), Add(MulScalar(prev, cfg.Momentum), grad)))
				o.m[i].SetNodeValue(buf)
				grad = buf
			}
			w = Sub(w, Mul(lrT, grad))
		}
		p.SetNodeValue(w)
	}
	return gradNorm
}

// ScalarLike returns a scalar constant of x's dtype.
func ScalarLike(x *Node, v float64) *Node { return Scalar(x.Graph(), x.DType(), v) }
