package moe

import (
	"fmt"
	"slices"
	"strings"

	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"

	"github.com/lethe-ml/lethe/models"
	"github.com/lethe-ml/lethe/peft"
	"github.com/lethe-ml/lethe/train"
)

// Adapter is one named mixture of LoRA experts attached to a model.
//
// Attaching an adapter adds its tensors to the model's store (under
// "/peft/<name>/<module>/": lora_router, lora_A and lora_B) but leaves the
// model's forward pass alone: the adapter acts only through the hooks that
// Hooks returns. Its update depends on the input through the router, so,
// unlike LoRA, it cannot be merged into the base weights.
//
// Training graphs (Hooks(true)) record each adapted module's load-balancing
// loss; CausalLM and AddBalance add it to the training loss.
type Adapter struct {
	m        *models.Model
	name     string
	cfg      Config
	layers   []*layer
	byHook   map[string][]*layer
	warnings []string
}

// balanceKey keys an adapter's balance losses in the state of the graph
// being built (Graph.AttachState), so that they live and die with it.
type balanceKey struct{ a *Adapter }

// Name is the adapter's name.
func (a *Adapter) Name() string { return a.name }

// Config returns the adapter's configuration, defaults filled in.
func (a *Adapter) Config() Config { return a.cfg }

// Model returns the model the adapter is attached to.
func (a *Adapter) Model() *models.Model { return a.m }

// Warnings lists what loading or attaching the adapter noticed without
// failing (unknown config keys).
func (a *Adapter) Warnings() []string { return slices.Clone(a.warnings) }

// Modules lists the names of the modules the adapter wraps, in the model's
// order.
func (a *Adapter) Modules() []string {
	out := make([]string, len(a.layers))
	for i, l := range a.layers {
		out[i] = l.mod.Name
	}
	return out
}

func (a *Adapter) scope() string { return "/peft/" + a.name }

// Attach adds a new mixture adapter called name to m, initialised from
// seed as cfg.Init says (experts like LoRA's A and B, routers U(±1/√in)),
// and returns it. It fills cfg's defaults (see Config); the model's weights
// are unchanged and, with the default init (every B zero), so are its
// outputs.
func Attach(m *models.Model, name string, cfg Config, seed uint64) (*Adapter, error) {
	a, err := build(m, name, cfg)
	if err != nil {
		return nil, err
	}
	if err := a.initialize(seed); err != nil {
		_ = m.Store.DeleteVariablesInScope(a.scope())
		return nil, err
	}
	return a, nil
}

// Delete removes the adapter's tensors from the model's store; the adapter
// must not be used afterwards.
func (a *Adapter) Delete() error {
	if err := a.m.Store.DeleteVariablesInScope(a.scope()); err != nil {
		return fmt.Errorf("moe: delete %q: %w", a.name, err)
	}
	a.layers, a.byHook = nil, map[string][]*layer{}
	return nil
}

// build validates cfg, selects the modules and creates the adapter's
// variables (zero-valued).
func build(m *models.Model, name string, cfg Config) (*Adapter, error) {
	if name == "" || strings.ContainsAny(name, "/") {
		return nil, fmt.Errorf("moe: adapter name %q must be non-empty and contain no '/'", name)
	}
	for v := range m.Store.RootScope().At("peft").At("%s", name).IterVariables() {
		return nil, fmt.Errorf("moe: the model's store already holds adapter tensors under %s (e.g. %s); pick another name", "/peft/"+name, v.Path())
	}
	if err := cfg.fill(); err != nil {
		return nil, fmt.Errorf("moe: adapter %q: %w", name, err)
	}
	if cfg.TargetModules.IsZero() {
		def, ok := peft.DefaultTargets[m.Config.ModelType]
		if !ok {
			return nil, fmt.Errorf("moe: adapter %q: target_modules is not set and PEFT has no default for model_type %q", name, m.Config.ModelType)
		}
		cfg.TargetModules = peft.NameList(def...)
	}
	if cfg.BaseModel == "" {
		cfg.BaseModel = m.Dir
	}
	targets, err := peft.SelectModules(cfg.selector(), peft.Modules(m), peft.ModuleNames(m))
	if err != nil {
		return nil, fmt.Errorf("moe: adapter %q: %w", name, err)
	}
	a := &Adapter{m: m, name: name, cfg: cfg, byHook: map[string][]*layer{}}
	newVar := func(mod, kind string, dims ...int) (*model.Variable, error) {
		t := tensors.FromFlatDataAndDimensions(make([]float32, prod(dims)), dims...)
		v, err := m.Store.CreateVariable(model.JoinPath(a.scope(), mod, kind), t)
		if err != nil {
			_ = m.Store.DeleteVariablesInScope(a.scope())
			return nil, fmt.Errorf("moe: adapter %q: %w", name, err)
		}
		return v, nil
	}
	N, r := cfg.Experts, cfg.R
	for _, t := range targets {
		l := &layer{mod: t, scale: cfg.scaling()}
		if l.router, err = newVar(t.Name, "lora_router", t.In, N); err != nil {
			return nil, err
		}
		aDims, bDims := []int{N, t.In, r}, []int{N, r, t.Out}
		switch cfg.Share {
		case ShareA:
			aDims = []int{t.In, r}
		case ShareB:
			bDims = []int{r, t.Out}
		}
		if l.a, err = newVar(t.Name, "lora_A", aDims...); err != nil {
			return nil, err
		}
		if l.b, err = newVar(t.Name, "lora_B", bDims...); err != nil {
			return nil, err
		}
		a.layers = append(a.layers, l)
		a.byHook[t.Hook] = append(a.byHook[t.Hook], l)
	}
	return a, nil
}

func prod(dims []int) int {
	n := 1
	for _, d := range dims {
		n *= d
	}
	return n
}

// Hooks returns the hooks that apply the adapter. train enables the
// dropouts (lora_dropout, expert_dropout, shared_dropout) and records the
// modules' load-balancing losses in the graph for BalanceLoss; build
// training graphs with a loss from CausalLM or AddBalance, which add them
// to the loss.
func (a *Adapter) Hooks(train bool) models.Hooks {
	return models.Hooks{Linear: func(name string, x, y *Node) *Node {
		for _, l := range a.byHook[name] {
			y = l.forward(a, x, y, train)
		}
		return y
	}}
}

// record keeps a module's balance loss in the graph being built.
func (a *Adapter) record(g *Graph, loss *Node) {
	losses, _ := g.State(balanceKey{a}).([]*Node)
	g.AttachState(balanceKey{a}, append(losses, loss))
}

// BalanceLoss returns the mean load-balancing loss (see the package
// documentation) of the modules that training hooks (Hooks(true)) adapted
// so far while building g, a float32 scalar, and clears them (the losses
// are kept in g's state, and go with it); it returns nil when there are
// none. Call it once per graph, after the forward pass: CausalLM and
// AddBalance do.
func (a *Adapter) BalanceLoss(g *Graph) *Node {
	losses, _ := g.State(balanceKey{a}).([]*Node)
	g.AttachState(balanceKey{a}, nil)
	if len(losses) == 0 {
		return nil
	}
	sum := losses[0]
	for _, l := range losses[1:] {
		sum = Add(sum, l)
	}
	return DivScalar(sum, float64(len(losses)))
}

// AddBalance wraps a loss function so that its training loss is
//
//	loss + router_aux_loss_coef · BalanceLoss
//
// (Switch Transformer's auxiliary loss). loss must run the model with the
// adapter's training hooks (Hooks(true), alone or composed with others) in
// training graphs. Evaluation graphs (train false) are left unchanged. The
// Loss a trainer reports for its steps includes the balance term.
func (a *Adapter) AddBalance(loss train.LossFunc) train.LossFunc {
	return func(in train.Inputs, training bool) models.Outputs {
		out := loss(in, training)
		bl := a.BalanceLoss(in.IDs.Graph())
		if !training || bl == nil || out.Loss == nil {
			return out
		}
		if coef := a.cfg.balanceCoef(); coef > 0 {
			out.Loss = Add(out.Loss, ConvertDType(MulScalar(bl, coef), out.Loss.DType()))
		}
		return out
	}
}

// CausalLM is train.CausalLM(m, hooks, evalHooks, headSamples) for the
// adapter's model plus the balance term (see AddBalance). hooks must
// include the adapter's training hooks:
//
//	loss := a.CausalLM(a.Hooks(true), a.Hooks(false), 0)
func (a *Adapter) CausalLM(hooks, evalHooks models.Hooks, headSamples int) train.LossFunc {
	return a.AddBalance(train.CausalLM(a.m, hooks, evalHooks, headSamples))
}

// Params lists the adapter's trainable tensors by name, for
// train.TrainerOptions.Params; Vars maps them to their variables. For every
// module M:
//
//	base_model.model.M.lora_router.<adapter>.weight  [in, N]
//	base_model.model.M.lora_A.<adapter>.weight       [N, in, r] (shared A: [in, r])
//	base_model.model.M.lora_B.<adapter>.weight       [N, r, out] (shared B: [r, out])
//
// The experts' matrices are stacked and, like LoRA's, stored transposed
// relative to the file (see the package documentation for the file keys).
func (a *Adapter) Params() []string {
	var out []string
	for _, l := range a.layers {
		out = append(out, l.paramName(a.name, "lora_router"), l.paramName(a.name, "lora_A"), l.paramName(a.name, "lora_B"))
	}
	return out
}

// Vars maps Params to the adapter's variables.
func (a *Adapter) Vars() map[string]*model.Variable {
	out := map[string]*model.Variable{}
	for _, l := range a.layers {
		out[l.paramName(a.name, "lora_router")] = l.router
		out[l.paramName(a.name, "lora_A")] = l.a
		out[l.paramName(a.name, "lora_B")] = l.b
	}
	return out
}

// NumParams is the number of trainable values: per module
// N·in (router) + N·r·in (A; r·in shared) + N·out·r (B; out·r shared).
func (a *Adapter) NumParams() int {
	n := 0
	for _, v := range a.Vars() {
		n += v.Shape().Size()
	}
	return n
}
