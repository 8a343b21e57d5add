package unlearn

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"

	"github.com/gomlx/compute/dtypes"
	. "github.com/gomlx/gomlx/core/graph"
)

// MethodConfig selects an unlearning objective and its hyperparameters.
// Each method reads the keys its documentation names; defaults (in
// brackets) are open-unlearning's.
type MethodConfig struct {
	// Name is one of Methods().
	Name string `yaml:"name" json:"name"`
	// Gamma weights the forget term [1]; Alpha the retain term [1, except
	// grad_ascent: 0].
	Gamma *float64 `yaml:"gamma" json:"gamma,omitempty"`
	Alpha *float64 `yaml:"alpha" json:"alpha,omitempty"`
	// RetainLoss is the retain term: "nll" (the retain data's
	// negative log-likelihood) or "kl" (KL from the frozen reference's
	// next-token distributions on the retain data) [nll].
	RetainLoss string `yaml:"retain_loss" json:"retain_loss,omitempty"`
	// Beta is the inverse temperature of npo [0.1], simnpo [4.5] and dpo
	// [0.1], the strength of undial's logit adjustment [10] and the
	// exponent of wga's weights [1].
	Beta float64 `yaml:"beta" json:"beta,omitempty"`
	// Delta is SimNPO's reward margin γ [0].
	Delta float64 `yaml:"delta" json:"delta,omitempty"`
	// Layer is RMU's layer l (0-based; its output is steered) [the middle
	// layer].
	Layer *int `yaml:"layer" json:"layer,omitempty"`
	// SteeringCoef is RMU's c: forget activations are pushed to c·u [2].
	SteeringCoef float64 `yaml:"steering_coef" json:"steering_coef,omitempty"`
	// Scale is task_vector's λ: after fine-tuning on the forget data to θ,
	// the model becomes θ₀ − λ·(θ − θ₀) [1].
	Scale float64 `yaml:"scale" json:"scale,omitempty"`
	// Saliency, in (0, 1), restricts any method to the weights whose
	// forget-loss gradient is in the top Saliency fraction by magnitude
	// (SalUn, Fan et al. 2024) [0: every weight]. Full weights only.
	Saliency float64 `yaml:"saliency" json:"saliency,omitempty"`
	// StepSizes are the step sizes slsg tries, in parameter-space norm
	// units of the chosen layer [0.5, 1, 2, 4, 8, 16]; RetainTolerance is
	// how much the retain NLL may rise (nats) [0.1].
	StepSizes       []float64 `yaml:"step_sizes" json:"step_sizes,omitempty"`
	RetainTolerance float64   `yaml:"retain_tolerance" json:"retain_tolerance,omitempty"`
	// FalsePositiveRate is the share of retain prompts ksd may refuse
	// [0.01]; ksd reads keys at Layer [the middle layer].
	FalsePositiveRate float64 `yaml:"false_positive_rate" json:"false_positive_rate,omitempty"`
	// DropFraction is the share of each layer's feed-forward neurons send
	// drops [0.02].
	DropFraction float64 `yaml:"drop_fraction" json:"drop_fraction,omitempty"`
}

// Methods lists the objectives MethodConfig.Name accepts.
func Methods() []string {
	return []string{"grad_ascent", "grad_diff", "npo", "simnpo", "dpo", "rmu", "undial", "wga", "task_vector", "mudman", "slsg", "stochastic_teacher", "ksd", "send"}
}

// Method is an unlearning objective: a loss over a step's forget, retain
// and (for dpo) alternate rows.
type Method struct {
	cfg        MethodConfig
	gamma      float64
	alpha      float64
	layer      int
	steer      []float32 // RMU's c·u
	needsRef   bool
	randomRef  bool
	needsAlt   bool
	needHidden bool
}

// NewMethod validates cfg and returns the method for a model with
// numLayers layers of width hidden; seed draws RMU's random direction.
func NewMethod(cfg MethodConfig, numLayers, hidden int, seed uint64) (*Method, error) {
	cfg.Name = strings.ToLower(cfg.Name)
	m := &Method{cfg: cfg, gamma: 1, alpha: 1}
	if cfg.Name == "grad_ascent" || cfg.Name == "task_vector" {
		m.alpha = 0
	}
	if cfg.Gamma != nil {
		m.gamma = *cfg.Gamma
	}
	if cfg.Alpha != nil {
		m.alpha = *cfg.Alpha
	}
	var errs []error
	beta := func(def float64) {
		if m.cfg.Beta == 0 {
			m.cfg.Beta = def
		}
		if m.cfg.Beta < 0 {
			errs = append(errs, fmt.Errorf("method.beta: must be positive, got %g", m.cfg.Beta))
		}
	}
	switch cfg.Name {
	case "grad_ascent", "grad_diff", "mudman":
	case "slsg":
		if len(m.cfg.StepSizes) == 0 {
			m.cfg.StepSizes = []float64{0.5, 1, 2, 4, 8, 16}
		}
		if m.cfg.RetainTolerance == 0 {
			m.cfg.RetainTolerance = 0.1
		}
		for _, v := range m.cfg.StepSizes {
			if v <= 0 {
				errs = append(errs, fmt.Errorf("method.step_sizes: must be positive, got %g", v))
			}
		}
	case "task_vector":
		if m.cfg.Scale == 0 {
			m.cfg.Scale = 1
		}
	case "npo", "dpo":
		beta(0.1)
		m.needsRef = true
		m.needsAlt = cfg.Name == "dpo"
	case "simnpo":
		beta(4.5)
	case "undial":
		beta(10)
		m.needsRef = true
	case "stochastic_teacher":
		m.needsRef, m.randomRef = true, true
	case "send":
		if m.cfg.DropFraction == 0 {
			m.cfg.DropFraction = 0.02
		}
		if m.cfg.DropFraction < 0 || m.cfg.DropFraction >= 1 {
			errs = append(errs, fmt.Errorf("method.drop_fraction: must be in (0, 1), got %g", m.cfg.DropFraction))
		}
	case "ksd":
		m.layer = numLayers / 2
		if cfg.Layer != nil {
			m.layer = *cfg.Layer
		}
		if m.layer < 0 || m.layer >= numLayers {
			errs = append(errs, fmt.Errorf("method.layer: %d is not a layer of the model (0..%d)", m.layer, numLayers-1))
		}
		if m.cfg.FalsePositiveRate == 0 {
			m.cfg.FalsePositiveRate = 0.01
		}
		if m.cfg.FalsePositiveRate < 0 || m.cfg.FalsePositiveRate >= 1 {
			errs = append(errs, fmt.Errorf("method.false_positive_rate: must be in [0, 1), got %g", m.cfg.FalsePositiveRate))
		}
	case "wga":
		beta(1)
	case "rmu":
		m.needsRef, m.needHidden = true, true
		m.layer = numLayers / 2
		if cfg.Layer != nil {
			m.layer = *cfg.Layer
		}
		if m.layer < 0 || m.layer >= numLayers {
			errs = append(errs, fmt.Errorf("method.layer: %d is not a layer of the model (0..%d)", m.layer, numLayers-1))
		}
		if m.cfg.SteeringCoef == 0 {
			m.cfg.SteeringCoef = 2
		}
		m.steer = steeringVector(hidden, m.cfg.SteeringCoef, seed)
	case "":
		errs = append(errs, fmt.Errorf("method.name: required, one of %s", strings.Join(Methods(), ", ")))
	default:
		errs = append(errs, fmt.Errorf("method.name: %q is not one of %s", cfg.Name, strings.Join(Methods(), ", ")))
	}
	switch strings.ToLower(cfg.RetainLoss) {
	case "", "nll":
		m.cfg.RetainLoss = "nll"
	case "kl":
		m.cfg.RetainLoss = "kl"
		m.needsRef = true
	default:
		errs = append(errs, fmt.Errorf("method.retain_loss: %q is not nll or kl", cfg.RetainLoss))
	}
	if cfg.Saliency < 0 || cfg.Saliency >= 1 {
		errs = append(errs, fmt.Errorf("method.saliency: must be in [0, 1), got %g", cfg.Saliency))
	}
	if cfg.Name == "rmu" && cfg.RetainLoss != "" {
		errs = append(errs, errors.New("method.retain_loss: rmu keeps retain activations close to the reference's; leave it out"))
	}
	return m, errors.Join(errs...)
}

// steeringVector is c·u for a unit vector u drawn uniformly from [0, 1)
// per coordinate and normalised (as WMDP's RMU draws it).
func steeringVector(hidden int, c float64, seed uint64) []float32 {
	rng := rand.New(rand.NewPCG(seed, 0x726d75))
	u := make([]float64, hidden)
	norm := 0.0
	for i := range u {
		u[i] = rng.Float64()
		norm += u[i] * u[i]
	}
	norm = math.Sqrt(norm)
	out := make([]float32, hidden)
	for i := range u {
		out[i] = float32(c * u[i] / norm)
	}
	return out
}

// Name is the method's name.
func (m *Method) Name() string { return m.cfg.Name }

// Config returns the configuration with its defaults filled in.
func (m *Method) Config() MethodConfig { return m.cfg }

// NeedsReference reports whether the loss reads the frozen reference
// model's pass; NeedsAlternate whether steps carry alternate answers.
func (m *Method) NeedsReference() bool { return m.needsRef }

// RandomReference reports whether the reference must be a randomly
// initialised copy of the model (stochastic_teacher) rather than the
// starting model.
func (m *Method) RandomReference() bool { return m.randomRef }

// NeedsAlternate reports whether the loss reads Alternate rows (dpo).
func (m *Method) NeedsAlternate() bool { return m.needsAlt }

// Negates reports whether the trained change is negated afterwards
// (task_vector), and by how much.
func (m *Method) Negates() (bool, float64) { return m.cfg.Name == "task_vector", m.cfg.Scale }

// NeedsHidden reports whether the loss reads hidden states (rmu).
func (m *Method) NeedsHidden() bool { return m.needHidden }

// Loss is the objective of one step: gamma · forget term + alpha · retain
// term, from the pass of the model being unlearned (cur) and of the frozen
// reference (ref; nil unless NeedsReference).
//
//	grad_ascent  forget term −NLL_f (Jang et al. 2023)
//	grad_diff    forget term −NLL_f, retain term NLL_r or KL(ref‖cur) (Liu et al. 2022)
//	npo          −(2/β)·mean log σ(−β·(log π(y|x) − log π_ref(y|x))), sequence log-probabilities (Zhang et al. 2024)
//	simnpo       −(2/β)·mean log σ(−β·log π(y|x)/|y| − δ) (Fan et al. 2024; no reference)
//	dpo          −(2/β)·mean log σ(β·[(log π(a|x) − log π_ref(a|x)) − (log π(y|x) − log π_ref(y|x))]),
//	             a the alternate (refusal) answer, y the forget answer (Rafailov et al. 2023; IdkDPO in TOFU)
//	undial       cross-entropy of cur against softmax(ref logits − β·onehot(y)) on the forget tokens (Dong et al. 2024)
//	wga          −mean_t p(yₜ)^β·log p(yₜ), the weight p^β without gradient (Wang et al. 2025)
//	task_vector  forget term +NLL_f: fine-tune on the forget data; the recipe then negates the
//	             change, θ₀ − λ·(θ − θ₀) (Ilharco et al. 2023, task arithmetic)
//	slsg         Single Layer Single Gradient: no loop; rank the layers by ‖∇NLL_f‖/‖∇NLL_r‖, take
//	             one normalised gradient-ascent step on the forget NLL in the top layer, with the
//	             largest step size (of step_sizes) that raises the retain NLL by at most
//	             retain_tolerance (the recipe runs it)
//	mudman       the update is the forget term's gradient (−NLL_f), kept only where it has the
//	             sign of the retain NLL's gradient and normalised per tensor to unit RMS
//	             (disruption masking and normalisation, Sondej et al. 2025); Loss reports
//	             −NLL_f + alpha·NLL_r, MaskedGradients gives the update
//	stochastic_teacher  forget: KL(teacher‖cur) on the forget tokens, the teacher a randomly
//	             initialised copy of the model (the reference), so the forget answers get
//	             an uninformed distribution; retain: NLL_r (Zhang et al. 2023, stochastic
//	             teacher networks)
//	send         SeND-style sensitive-neuron dropout: drop for good (DropNeurons) the feed-forward
//	             neurons far more active on the forget data than on the retain data
//	             (SensitiveNeurons, drop_fraction per layer); no training loop
//	ksd          training-free: refuse queries whose FFN keys at a layer are close to a forget
//	             query's (KeySpaceDetector); the recipe runs it, the weights never change
//	rmu          forget: mean (h_l − c·u)², retain: mean (h_l − h_l^ref)², over the answer tokens'
//	             positions and the hidden units (Li et al. 2024, WMDP)
//
// Sequence-level terms (npo, simnpo, dpo) average over the rows that have
// answer tokens, token-level terms over the answer tokens.
func (m *Method) Loss(cur, ref *Pass) *Node {
	forget, retain := m.Terms(cur, ref)
	loss := MulScalar(forget, m.gamma)
	if retain == nil || m.alpha == 0 {
		return loss
	}
	return Add(loss, MulScalar(retain, m.alpha))
}

// Terms returns the forget and the retain terms of the objective,
// unweighted (retain is nil when alpha is 0).
func (m *Method) Terms(cur, ref *Pass) (forget, retain *Node) {
	f, r := cur.View(Forget), cur.View(Retain)
	g := f.LogP.Graph()
	switch m.cfg.Name {
	case "grad_ascent", "grad_diff", "mudman", "slsg":
		forget = Neg(f.NLL())
	case "task_vector":
		forget = f.NLL()
	case "npo":
		rf := ref.View(Forget)
		ratio := Sub(f.SeqLogProb(), StopGradient(rf.SeqLogProb()))
		forget = MulScalar(f.RowMean(LogSigmoid(MulScalar(ratio, -m.cfg.Beta))), -2/m.cfg.Beta)
	case "simnpo":
		avg := Div(f.SeqLogProb(), f.SeqTokens())
		forget = MulScalar(f.RowMean(LogSigmoid(AddScalar(MulScalar(avg, -m.cfg.Beta), -m.cfg.Delta))), -2/m.cfg.Beta)
	case "dpo":
		a, rf, ra := cur.View(Alternate), ref.View(Forget), ref.View(Alternate)
		win := Sub(a.SeqLogProb(), StopGradient(ra.SeqLogProb()))
		lose := Sub(f.SeqLogProb(), StopGradient(rf.SeqLogProb()))
		forget = MulScalar(f.RowMean(LogSigmoid(MulScalar(Sub(win, lose), m.cfg.Beta))), -2/m.cfg.Beta)
	case "stochastic_teacher":
		forget = f.TokenMean(klPerToken(StopGradient(ref.View(Forget).shiftedLogits()), f.shiftedLogits()))
	case "undial":
		rf := ref.View(Forget)
		T := f.Labels.Shape().Dimensions[1]
		target := ConvertDType(SliceAxis(f.Labels, 1, AxisRange(1, T)), dtypes.Int32)
		V := f.Logits.Shape().Dimensions[2]
		onehot := OneHot(Max(target, ZerosLike(target)), V, dtypes.Float32)
		teacher := Softmax(Sub(StopGradient(rf.shiftedLogits()), MulScalar(onehot, m.cfg.Beta)), -1)
		ce := Neg(ReduceSum(Mul(teacher, LogSoftmax(f.shiftedLogits(), -1)), -1)) // [b, T-1]
		forget = f.TokenMean(ce)
	case "wga":
		w := StopGradient(Pow(Exp(f.LogP), Scalar(g, dtypes.Float32, m.cfg.Beta)))
		forget = f.TokenMean(Mul(w, f.LogP))
	case "rmu":
		h := f.Hidden[m.layer+1]
		c := ConvertDType(Const(g, m.steer), h.DType())
		forget = f.HiddenMean(Square(Sub(ConvertDType(h, dtypes.Float32), ConvertDType(ExpandLeftToRank(c, 3), dtypes.Float32))))
	}
	if m.alpha == 0 && m.cfg.Name != "mudman" {
		return forget, nil
	}
	switch {
	case m.cfg.Name == "rmu":
		h, hr := r.Hidden[m.layer+1], ref.View(Retain).Hidden[m.layer+1]
		retain = r.HiddenMean(Square(Sub(ConvertDType(h, dtypes.Float32), StopGradient(ConvertDType(hr, dtypes.Float32)))))
	case m.cfg.RetainLoss == "kl":
		retain = r.TokenMean(klPerToken(StopGradient(ref.View(Retain).shiftedLogits()), r.shiftedLogits()))
	default:
		retain = r.NLL()
	}
	return forget, retain
}

// MaskedGradients is MUDMAN's update for params from the forget and
// retain terms: ∇forget where its sign matches ∇retain's, 0 elsewhere,
// each tensor scaled to unit root mean square.
func MaskedGradients(forget, retain *Node, params []*Node) []*Node {
	gf := Gradient(forget, params...)
	gr := Gradient(retain, params...)
	out := make([]*Node, len(params))
	for i := range params {
		agree := ConvertDType(Equal(Sign(gf[i]), Sign(gr[i])), gf[i].DType())
		d := Mul(gf[i], agree)
		rms := Sqrt(AddScalar(ReduceAllMean(Square(d)), 1e-12))
		out[i] = Div(d, rms)
	}
	return out
}

// DropsNeurons reports whether the method is send.
func (m *Method) DropsNeurons() bool { return m.cfg.Name == "send" }

// TrainingFree reports whether the method changes no weight (ksd).
func (m *Method) TrainingFree() bool { return m.cfg.Name == "ksd" }

// Layer is the layer rmu steers and ksd reads.
func (m *Method) Layer() int { return m.layer }

// SingleStep reports whether the method is slsg (one searched step, no
// training loop).
func (m *Method) SingleStep() bool { return m.cfg.Name == "slsg" }

// Masked reports whether the method's update is MaskedGradients (mudman).
func (m *Method) Masked() bool { return m.cfg.Name == "mudman" }

// klPerToken is KL(p‖q) [b, T-1] between the next-token distributions of
// logits p and q [b, T-1, V].
func klPerToken(p, q *Node) *Node {
	lp, lq := LogSoftmax(p, -1), LogSoftmax(q, -1)
	return ReduceSum(Mul(Exp(lp), Sub(lp, lq)), -1)
}

// LogSigmoid is log σ(x) = min(x, 0) − log(1 + e^−|x|), stable for large |x|.
func LogSigmoid(x *Node) *Node {
	return Sub(Min(x, ZerosLike(x)), Log1p(Exp(Neg(Abs(x)))))
}
