package dropout

import (
	"fmt"
	"math/rand/v2"
	"sync"

	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/shapes"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"

	"github.com/lethe-ml/lethe/data"
	"github.com/lethe-ml/lethe/models"
)

// Scope is the store scope of the rate variables ("/dropout/attention",
// ...) and of Mixout's pretrained weights ("/dropout/mixout/<name>").
const Scope = "/dropout"

// The sites whose rates live in the store, by variable name.
const (
	siteAttention   = "attention"
	siteResidual    = "residual"
	siteEmbeddings  = "embeddings"
	sitePenultimate = "penultimate"
	siteLayerDrop   = "layer_drop"
	siteMixout      = "mixout"
	siteTLM         = "tlm"
)

// sites lists them in a fixed order (variables are created in it).
var sites = []string{siteEmbeddings, siteAttention, siteTLM, siteResidual, siteLayerDrop, sitePenultimate, siteMixout}

// Rates are the rates of the in-graph sites at one step (the configured
// rates times the schedule's factor).
type Rates struct {
	Attention, Residual, Embeddings, Penultimate, LayerDrop, Mixout, TLM float64
}

// Regularizer builds the hooks of a Config for one model. Create it with
// New before the trainer compiles its graphs.
type Regularizer struct {
	m      *models.Model
	cfg    Config
	factor float64
	// vars holds the rate variable of every site with a non-zero rate.
	vars map[string]*model.Variable
	// pretrained holds Mixout's copies of the weights at setup, by name.
	pretrained map[string]*model.Variable
	// keep lists the layers kept at inference (nil: all).
	keep []int
}

// New validates cfg and prepares its variables in m's store: one float32
// scalar rate per active site under Scope and, with Mixout, a frozen copy of
// every targeted weight as it is now (the pretrained values: call New
// before training changes them).
func New(m *models.Model, cfg Config) (*Regularizer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	r := &Regularizer{m: m, cfg: cfg, factor: 1, vars: map[string]*model.Variable{}}
	if cfg.Schedule.name() == ScheduleLate {
		r.factor = 0
	}
	base := r.base()
	for _, site := range sites {
		rate := base[site]
		if rate == 0 {
			continue
		}
		v, err := m.Store.CreateVariable(Scope+"/"+site, tensors.FromScalar(float32(rate*r.factor)))
		if err != nil {
			return nil, fmt.Errorf("dropout: rate variable %s: %w", site, err)
		}
		if err := v.SetValue(tensors.FromScalar(float32(rate * r.factor))); err != nil {
			return nil, fmt.Errorf("dropout: rate variable %s: %w", site, err)
		}
		v.Trainable = false
		r.vars[site] = v
	}
	if cfg.Mixout.Rate > 0 {
		var err error
		if r.pretrained, err = capturePretrained(m, cfg.Mixout.Targets); err != nil {
			return nil, err
		}
	}
	ld := cfg.LayerDrop
	switch {
	case len(ld.Keep) > 0:
		if last := ld.Keep[len(ld.Keep)-1]; last >= m.Config.NumLayers {
			return nil, fmt.Errorf("dropout.layer_drop.keep: layer %d does not exist (the model has %d)", last, m.Config.NumLayers)
		}
		r.keep = ld.Keep
	case ld.PruneRate > 0:
		r.keep = EveryOther(m.Config.NumLayers, ld.PruneRate)
	}
	return r, nil
}

// base returns the configured rate of every in-graph site.
func (r *Regularizer) base() map[string]float64 {
	c := r.cfg
	return map[string]float64{
		siteAttention: c.Attention, siteResidual: c.Residual, siteEmbeddings: c.Embeddings,
		sitePenultimate: c.Penultimate, siteLayerDrop: c.LayerDrop.Rate, siteMixout: c.Mixout.Rate, siteTLM: c.TLM.Rate,
	}
}

// SetStep writes the rates of optimizer step (0-based) out of total, by the
// schedule, into the store: call it before every step. The compiled graphs
// read them as parameters, so no schedule recompiles.
func (r *Regularizer) SetStep(step, total int) error {
	r.factor = r.cfg.Schedule.Factor(step, total)
	base := r.base()
	for site, v := range r.vars {
		if err := v.SetValue(tensors.FromScalar(float32(base[site] * r.factor))); err != nil {
			return fmt.Errorf("dropout: set %s rate at step %d: %w", site, step, err)
		}
	}
	return nil
}

// Rates returns the rates the last SetStep wrote (the initial ones before
// any).
func (r *Regularizer) Rates() Rates {
	b, f := r.base(), r.factor
	return Rates{
		Attention: b[siteAttention] * f, Residual: b[siteResidual] * f, Embeddings: b[siteEmbeddings] * f,
		Penultimate: b[sitePenultimate] * f, LayerDrop: b[siteLayerDrop] * f, Mixout: b[siteMixout] * f, TLM: b[siteTLM] * f,
	}
}

// HeadSamples is the Options.HeadSamples of training graphs (multi-sample
// dropout, Inoue 2019): pass it to train.CausalLM.
func (r *Regularizer) HeadSamples() int { return r.cfg.HeadSamples }

// LoRADropout is the LoRA input dropout rate, for the peft package (not
// applied here, and not scheduled).
func (r *Regularizer) LoRADropout() float64 { return r.cfg.LoRA }

// EvalHooks are the hooks of evaluation graphs: none, since every variant
// is the identity (in expectation) at evaluation.
func (r *Regularizer) EvalHooks() models.Hooks { return models.Hooks{} }

// InferenceHooks prune the layers that LayerDrop's keep or prune_rate leave
// out (Fan et al. 2019); without either they are empty.
func (r *Regularizer) InferenceHooks() models.Hooks {
	if r.keep == nil {
		return models.Hooks{}
	}
	layer, _ := Prune(r.m.Config.NumLayers, r.keep) // r.keep was checked in New
	return models.Hooks{Layer: layer}
}

// rate returns the rate variable of site in g's graph (nil when the site
// is off).
func (r *Regularizer) rate(site string, g *Graph) *Node {
	v := r.vars[site]
	if v == nil {
		return nil
	}
	return v.NodeValue(g)
}

// Hooks are the hooks of training graphs: every site with a non-zero rate
// (combine them with an adapter's with peft.ComposeHooks). They draw their masks from the store's generator; graphs must be built
// with the store in training mode (see the package documentation).
func (r *Regularizer) Hooks() models.Hooks {
	var h models.Hooks
	store := r.m.Store
	if r.vars[siteEmbeddings] != nil {
		h.Embeddings = func(x *Node) *Node { return Apply(store, x, r.rate(siteEmbeddings, x.Graph())) }
	}
	att, tlm := r.vars[siteAttention] != nil, r.vars[siteTLM] != nil
	if att || tlm {
		mode := r.cfg.TLM.mode()
		h.AttentionProbs = func(_ int, p *Node) *Node {
			if tlm {
				p = TokenLevelMask(store, p, r.rate(siteTLM, p.Graph()), mode)
			}
			if att {
				p = Apply(store, p, r.rate(siteAttention, p.Graph()))
			}
			return p
		}
	}
	if r.vars[siteResidual] != nil {
		h.Residual = func(_ int, _ string, x *Node) *Node { return Apply(store, x, r.rate(siteResidual, x.Graph())) }
	}
	if r.vars[siteLayerDrop] != nil {
		h.Layer = func(_ int, in, out *Node) *Node { return DropLayer(store, in, out, r.rate(siteLayerDrop, in.Graph())) }
	}
	if r.vars[sitePenultimate] != nil {
		h.Penultimate = func(_ int, x *Node) *Node { return Apply(store, x, r.rate(sitePenultimate, x.Graph())) }
	}
	if r.vars[siteMixout] != nil {
		// One mask per weight per graph, even when a weight is read twice
		// (the LM head with several head samples).
		var mu sync.Mutex
		var last *Graph
		mixed := map[string]*Node{}
		h.Weight = func(name string, w *Node) *Node {
			pre, ok := r.pretrained[name]
			if !ok {
				return w
			}
			g := w.Graph()
			mu.Lock()
			defer mu.Unlock()
			if g != last {
				last, mixed = g, map[string]*Node{}
			}
			if n, ok := mixed[name]; ok {
				return n
			}
			n := Mix(store, w, pre.NodeValue(g), r.rate(siteMixout, g))
			mixed[name] = n
			return n
		}
	}
	return h
}

// MaskBatch applies the host-side transforms of the config to a training
// batch: token masking, then Masked Thought. It returns a new batch (b
// itself when neither is configured) and never changes b.
func (r *Regularizer) MaskBatch(b *data.Batch, rng *rand.Rand) *data.Batch {
	if r.cfg.TokenMask.Rate > 0 {
		b = MaskTokens(b, r.cfg.TokenMask, rng)
	}
	if r.cfg.MaskedThought.Rate > 0 {
		b = MaskThought(b, r.cfg.MaskedThought, rng)
	}
	return b
}

// Apply is inverted dropout (Srivastava et al. 2014) of x with rate, a
// float32 scalar node in [0, 1): each entry is zeroed with probability
// rate, the others are scaled by 1/(1-rate), so E[Apply(x)] = x; rate 0 is
// exactly the identity. The mask comes from the store's generator.
func Apply(store *model.Store, x, rate *Node) *Node {
	g := x.Graph()
	rate = ConvertDType(rate, dtypes.Float32)
	u := store.RandomUniform(g, shapes.Make(dtypes.Float32, x.Shape().Dimensions...))
	scale := Div(OnesLike(rate), OneMinus(rate))
	factor := Where(GreaterOrEqual(u, rate), scale, ZerosLike(scale)) // keep with probability 1-rate
	if x.DType() == dtypes.Float32 {
		return Mul(x, factor)
	}
	return ConvertDType(Mul(ConvertDType(x, dtypes.Float32), factor), x.DType())
}
