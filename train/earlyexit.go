package train

import (
	"errors"
	"fmt"

	"github.com/gomlx/compute/dtypes"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"

	"github.com/lethe-ml/lethe/models"
)

// EarlyExitConfig configures EarlyExitLoss.
type EarlyExitConfig struct {
	// Scale is LayerSkip's e_scale, the weight of the early exits against
	// the last layer [1]: layer l of N (counted from 1) gets
	// e(l) = Scale·(1+2+…+l) for l < N and e(N) = 1+2+…+N, normalised to
	// sum 1 over the layers in use. Ignored when Weights is set.
	Scale float64 `yaml:"scale" json:"scale"`
	// Weights, when set, are the NumLayers per-layer weights instead
	// (non-negative, normalised over the layers in use): [0, …, 0, 1] is
	// the plain causal-LM loss.
	Weights []float64 `yaml:"weights,omitempty" json:"weights,omitempty"`
	// Every, when > 1, is LayerSkip's rotational curriculum: at training
	// step t only the early exits of layers l with (l−1) mod Every =
	// t mod Every count, and the last layer always does. The step counter
	// is a store variable (EarlyExitStepVar), so it resumes from
	// checkpoints; every training graph run advances it (every
	// micro-batch with gradient accumulation). 0 or 1: every layer at
	// every step.
	Every int `yaml:"every,omitempty" json:"every,omitempty"`
	// EvalLayer picks the loss of evaluation graphs: 0 the last layer's
	// causal-LM loss (what CausalLM evaluates), L in [1, NumLayers] that
	// of exiting after L layers.
	EvalLayer int `yaml:"eval_layer,omitempty" json:"eval_layer,omitempty"`
}

// EarlyExitStepVar is the store scope and name of the rotational
// curriculum's step counter (an int32 scalar).
const EarlyExitStepVar = "early_exit/step"

// EarlyExitScales returns the per-layer weights of cfg for a model of
// numLayers layers with every layer in use: layer l+1 has out[l], and they
// sum to 1.
func EarlyExitScales(numLayers int, cfg EarlyExitConfig) ([]float64, error) {
	e, err := earlyExitScales(numLayers, cfg)
	if err != nil {
		return nil, err
	}
	sum := 0.0
	for _, x := range e {
		sum += x
	}
	for i := range e {
		e[i] /= sum
	}
	return e, nil
}

// earlyExitScales returns the unnormalised e(l), validated.
func earlyExitScales(n int, cfg EarlyExitConfig) ([]float64, error) {
	if n < 1 {
		return nil, fmt.Errorf("early exit: %d layers", n)
	}
	if cfg.Weights != nil {
		if len(cfg.Weights) != n {
			return nil, fmt.Errorf("early exit: %d weights for %d layers", len(cfg.Weights), n)
		}
		sum := 0.0
		for i, w := range cfg.Weights {
			if !(w >= 0) {
				return nil, fmt.Errorf("early exit: weight of layer %d is %v, want >= 0", i+1, w)
			}
			sum += w
		}
		if !(sum > 0) {
			return nil, errors.New("early exit: the weights are all zero")
		}
		return append([]float64(nil), cfg.Weights...), nil
	}
	scale := cfg.Scale
	if scale == 0 {
		scale = 1
	}
	if !(scale > 0) {
		return nil, fmt.Errorf("early exit: scale %v, want > 0", cfg.Scale)
	}
	e := make([]float64, n)
	for l := 1; l <= n; l++ {
		e[l-1] = scale * float64(l*(l+1)/2)
	}
	e[n-1] = float64(n * (n + 1) / 2)
	return e, nil
}

// EarlyExitLoss is LayerSkip's early-exit loss (Elhoushi et al. 2024):
// the causal-LM cross-entropy of every layer's early exit — the model's
// final norm and shared LM head applied to the layer's output — weighted
// by cfg's per-layer scales, which put more weight on later layers and
// sum to 1 over the layers in use:
//
//	J = Σ_l ẽ(l) · CE(head(norm(h_l)), labels),  ẽ(l) = C(t,l)·e(l) / Σ_i C(t,i)·e(i)
//
// with C the rotational curriculum (cfg.Every) or 1. The scale rule is
// the one of Meta's torchtune-based LayerSkip training code
// (loss_scale_type "sum_l": e(l) grows as 1+2+…+l, the early exits scaled
// by e_scale); pair it with layer dropout (finetune's LayerDrop hooks) for
// the full LayerSkip recipe. Training graphs use hooks (the Penultimate
// hook sees the last layer only; head samples are not supported),
// evaluation graphs evalHooks and the loss cfg.EvalLayer picks. Outputs
// carry the last layer's logits and the number of predicted tokens.
func EarlyExitLoss(m *models.Model, hooks, evalHooks models.Hooks, cfg EarlyExitConfig) (LossFunc, error) {
	N := m.Config.NumLayers
	e, err := earlyExitScales(N, cfg)
	if err != nil {
		return nil, err
	}
	if cfg.EvalLayer < 0 || cfg.EvalLayer > N {
		return nil, fmt.Errorf("early exit: eval layer %d is not in [0, %d]", cfg.EvalLayer, N)
	}
	var step *model.Variable
	if cfg.Every > 1 {
		scope := m.Store.RootScope().In("early_exit")
		if step = scope.GetVariable("step"); step == nil {
			if step, err = scope.CreateVariable("step", tensors.FromScalar(int32(0))); err != nil {
				return nil, fmt.Errorf("early exit: %w", err)
			}
		}
	}
	return func(in Inputs, train bool) models.Outputs {
		if !train {
			return m.Forward(in.ModelInputs(), models.Options{Hooks: evalHooks, ExitLayer: cfg.EvalLayer})
		}
		g := in.IDs.Graph()
		// The layers whose exits count, and their weights (nodes, so that
		// the curriculum can depend on the step counter).
		var layers []int
		var weights []*Node
		if step == nil {
			sum := 0.0
			for _, x := range e {
				sum += x
			}
			for l := 1; l <= N; l++ {
				if e[l-1] > 0 {
					layers = append(layers, l)
					weights = append(weights, Scalar(g, dtypes.Float32, e[l-1]/sum))
				}
			}
		} else {
			t := step.NodeValue(g)
			step.SetNodeValue(AddScalar(t, 1))
			phase := ModScalar(t, cfg.Every)
			var raw []*Node
			for l := 1; l <= N; l++ {
				on := ScalarOne(g, dtypes.Float32)
				if l < N {
					on = ConvertDType(Equal(phase, Scalar(g, dtypes.Int32, (l-1)%cfg.Every)), dtypes.Float32)
				}
				layers = append(layers, l)
				raw = append(raw, MulScalar(on, e[l-1]))
			}
			total := raw[0]
			for _, r := range raw[1:] {
				total = Add(total, r)
			}
			total = Max(total, Scalar(g, dtypes.Float32, 1e-30))
			for _, r := range raw {
				weights = append(weights, StopGradient(Div(r, total)))
			}
		}
		early := layers
		if layers[len(layers)-1] == N {
			early = layers[:len(layers)-1]
		}
		out := m.Forward(in.ModelInputs(), models.Options{Hooks: hooks, LayerLogits: early})
		var loss *Node
		add := func(w, l *Node) {
			term := Mul(ConvertDType(w, l.DType()), l)
			if loss == nil {
				loss = term
			} else {
				loss = Add(loss, term)
			}
		}
		for i, logits := range out.LayerLogits {
			l, _ := models.CausalLMLoss(logits, in.Labels)
			add(weights[i], l)
		}
		if len(early) < len(layers) {
			add(weights[len(weights)-1], out.Loss)
		}
		out.Loss = loss
		out.LayerLogits = nil
		return out
	}, nil
}
