package lora

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"

	"github.com/lethe-ml/lethe/models"
	"github.com/lethe-ml/lethe/peft"
	"github.com/lethe-ml/lethe/peft/internal/host"
)

// Set is the LoRA adapters attached to one model, PEFT's LoraModel: several
// named adapters, which of them are active, whether adapters are enabled,
// and which are merged into the base weights.
//
// Attaching an adapter adds its tensors to the model's store (under
// "peft/<name>/") but leaves the model's own forward pass alone: an adapter
// acts only through the hooks that Hooks returns, passed to a forward pass
// (models.Options.Hooks) or a trainer (train.CausalLM). Merge is the one
// operation that changes the base weights, and says so.
//
// Hooks read the set's state (active, enabled, merged) when a graph is
// built; rebuild graphs (a new trainer, a new executor) after changing it.
type Set struct {
	m        *models.Model
	adapters map[string]*Adapter
	order    []string
	active   []string
	disabled bool
	merged   []*Adapter // in merge order
}

// NewSet returns an empty set of adapters for m.
func NewSet(m *models.Model) *Set { return &Set{m: m, adapters: map[string]*Adapter{}} }

// Model returns the model the set adapts.
func (s *Set) Model() *models.Model { return s.m }

// Adapter returns the adapter called name.
func (s *Set) Adapter(name string) (*Adapter, bool) {
	a, ok := s.adapters[name]
	return a, ok
}

// Names lists the adapters in the order they were added.
func (s *Set) Names() []string { return slices.Clone(s.order) }

// Active lists the active adapters.
func (s *Set) Active() []string { return slices.Clone(s.active) }

// SetActive makes the named adapters the active ones (PEFT's set_adapter;
// several may be active, their updates add up). Two active adapters may not
// both keep a copy of the same module (modules_to_save).
func (s *Set) SetActive(names ...string) error {
	seen := map[string]string{}
	for _, n := range names {
		a, ok := s.adapters[n]
		if !ok {
			return fmt.Errorf("lora: no adapter %q (have %q)", n, s.order)
		}
		for _, sv := range a.saved {
			if other, dup := seen[sv.mod.Name]; dup {
				return fmt.Errorf("lora: adapters %q and %q both keep a copy of %q (modules_to_save); only one of them can be active", other, n, sv.mod.Name)
			}
			seen[sv.mod.Name] = n
		}
	}
	s.active = slices.Clone(names)
	return nil
}

// SetEnabled enables or disables all adapters (PEFT's
// enable_adapter_layers / disable_adapter_layers): disabled, Hooks returns
// no hooks and the model computes its base outputs. Adapters merged into
// the weights cannot be disabled: unmerge them first.
func (s *Set) SetEnabled(enabled bool) error {
	if !enabled && len(s.merged) > 0 {
		return fmt.Errorf("lora: adapter %q is merged into the base weights; unmerge it before disabling adapters", s.merged[0].name)
	}
	s.disabled = !enabled
	return nil
}

// Enabled reports whether adapters are enabled.
func (s *Set) Enabled() bool { return !s.disabled }

// Hooks returns the hooks that apply the active adapters (none when
// disabled; merged adapters act through the weights). train enables the
// adapters' dropout.
func (s *Set) Hooks(train bool) models.Hooks {
	if s.disabled {
		return models.Hooks{}
	}
	var hs []models.Hooks
	for _, n := range s.active {
		hs = append(hs, s.adapters[n].Hooks(train))
	}
	return peft.ComposeHooks(hs...)
}

// Delete removes an adapter and its tensors from the store. A merged
// adapter must be unmerged first.
func (s *Set) Delete(name string) error {
	a, ok := s.adapters[name]
	if !ok {
		return fmt.Errorf("lora: no adapter %q", name)
	}
	if a.merged {
		return fmt.Errorf("lora: adapter %q is merged; unmerge it first", name)
	}
	if err := s.m.Store.DeleteVariablesInScope(a.scope()); err != nil {
		return fmt.Errorf("lora: delete %q: %w", name, err)
	}
	delete(s.adapters, name)
	s.order = slices.DeleteFunc(s.order, func(n string) bool { return n == name })
	s.active = slices.DeleteFunc(s.active, func(n string) bool { return n == name })
	return nil
}

// Adapter is one named LoRA (or DoRA) adapter of a model.
type Adapter struct {
	set      *Set
	name     string
	cfg      Config
	layers   []*layer
	byHook   map[string][]*layer
	saved    []*savedModule
	savedBy  map[string]*savedModule
	merged   bool
	warnings []string
}

// savedModule is a trained full copy of a module (modules_to_save).
type savedModule struct {
	mod     peft.Module
	w, bias *model.Variable // w in the store's layout of the base weight
	// orig holds the base values while merged (restored by Unmerge).
	origW, origBias []float32
}

// Name is the adapter's name.
func (a *Adapter) Name() string { return a.name }

// Config returns the adapter's configuration.
func (a *Adapter) Config() Config { return a.cfg }

// Set returns the set the adapter belongs to.
func (a *Adapter) Set() *Set { return a.set }

// Warnings lists what loading or attaching the adapter noticed without
// failing (unknown config keys, adjusted settings).
func (a *Adapter) Warnings() []string { return slices.Clone(a.warnings) }

// Merged reports whether the adapter is merged into the base weights.
func (a *Adapter) Merged() bool { return a.merged }

// Modules lists the names of the modules the adapter wraps.
func (a *Adapter) Modules() []string {
	out := make([]string, len(a.layers))
	for i, l := range a.layers {
		out[i] = l.mod.Name
	}
	return out
}

// SavedModules lists the modules the adapter keeps full copies of.
func (a *Adapter) SavedModules() []string {
	out := make([]string, len(a.saved))
	for i, s := range a.saved {
		out[i] = s.mod.Name
	}
	return out
}

func (a *Adapter) scope() string { return "/peft/" + a.name }

// Attach adds a new adapter called name to m, initialised from seed as
// cfg.Init says, and returns it (in a new Set of its own; use Set.Attach to
// hold several adapters). It fills cfg's defaults; the model's weights are
// unchanged unless cfg.Init is InitPiSSA.
func Attach(m *models.Model, name string, cfg Config, seed uint64) (*Adapter, error) {
	return NewSet(m).Attach(name, cfg, seed)
}

// Attach adds a new adapter to the set (see the package function). The
// first adapter of a set becomes its active one.
func (s *Set) Attach(name string, cfg Config, seed uint64) (*Adapter, error) {
	a, err := s.build(name, cfg)
	if err != nil {
		return nil, err
	}
	if err := a.initialize(seed); err != nil {
		_ = s.m.Store.DeleteVariablesInScope(a.scope())
		return nil, err
	}
	s.add(a)
	return a, nil
}

func (s *Set) add(a *Adapter) {
	s.adapters[a.name] = a
	s.order = append(s.order, a.name)
	if len(s.active) == 0 {
		s.active = []string{a.name}
	}
}

// build validates cfg, selects the modules and creates the adapter's
// variables (zero-valued).
func (s *Set) build(name string, cfg Config) (*Adapter, error) {
	m := s.m
	if name == "" || strings.ContainsAny(name, "/") {
		return nil, fmt.Errorf("lora: adapter name %q must be non-empty and contain no '/'", name)
	}
	if _, dup := s.adapters[name]; dup {
		return nil, fmt.Errorf("lora: the set already has an adapter %q", name)
	}
	for v := range m.Store.RootScope().At("peft").At("%s", name).IterVariables() {
		return nil, fmt.Errorf("lora: the model's store already holds adapter tensors under %s (e.g. %s); pick another name", "/peft/"+name, v.Path())
	}
	if err := cfg.fill(); err != nil {
		return nil, fmt.Errorf("lora: adapter %q: %w", name, err)
	}
	a := &Adapter{set: s, name: name, byHook: map[string][]*layer{}, savedBy: map[string]*savedModule{}}
	if cfg.TargetModules.IsZero() {
		def, ok := peft.DefaultTargets[m.Config.ModelType]
		if !ok {
			return nil, fmt.Errorf("lora: adapter %q: target_modules is not set and PEFT has no default for model_type %q", name, m.Config.ModelType)
		}
		cfg.TargetModules = peft.NameList(def...)
	}
	if cfg.BaseModel == "" {
		cfg.BaseModel = m.Dir
	}
	mods := peft.Modules(m)
	names := peft.ModuleNames(m)
	targets, err := peft.SelectModules(cfg.selector(), mods, names)
	if err != nil {
		return nil, fmt.Errorf("lora: adapter %q: %w", name, err)
	}
	saved, warns, err := peft.SavedModules(cfg.ModulesToSave, mods, names)
	if err != nil {
		return nil, fmt.Errorf("lora: adapter %q: %w", name, err)
	}
	a.warnings = append(a.warnings, warns...)
	// PEFT sets fan_in_fan_out to the targets' layout, with a warning.
	for _, t := range targets {
		if t.Conv1D && !cfg.FanInFanOut {
			a.warnings = append(a.warnings, fmt.Sprintf("fan_in_fan_out is false but %s is a Conv1D; setting it to true", t.Name))
			cfg.FanInFanOut = true
		} else if !t.Conv1D && cfg.FanInFanOut {
			a.warnings = append(a.warnings, fmt.Sprintf("fan_in_fan_out is true but %s is a Linear; setting it to false", t.Name))
			cfg.FanInFanOut = false
		}
	}
	a.cfg = cfg
	newVar := func(mod, kind string, dims ...int) (*model.Variable, error) {
		t := tensors.FromFlatDataAndDimensions(make([]float32, prod(dims)), dims...)
		v, err := m.Store.CreateVariable(model.JoinPath(a.scope(), mod, kind), t)
		if err != nil {
			return nil, fmt.Errorf("lora: adapter %q: %w", name, err)
		}
		return v, nil
	}
	for _, t := range targets {
		r, alpha, err := cfg.rankAlpha(t.Name)
		if err != nil {
			return nil, fmt.Errorf("lora: adapter %q: %w", name, err)
		}
		l := &layer{mod: t, r: r, alpha: alpha, scale: cfg.scaling(r, alpha)}
		if l.a, err = newVar(t.Name, "lora_A", t.In, r); err != nil {
			return nil, err
		}
		if l.b, err = newVar(t.Name, "lora_B", r, t.Out); err != nil {
			return nil, err
		}
		if cfg.UseDoRA {
			if l.mag, err = newVar(t.Name, "lora_magnitude_vector", t.Out); err != nil {
				return nil, err
			}
		}
		a.layers = append(a.layers, l)
		a.byHook[t.Hook] = append(a.byHook[t.Hook], l)
	}
	for _, mod := range saved {
		base, _ := m.Param(mod.Weight)
		vals, dims, err := host.Read(base)
		if err != nil {
			return nil, fmt.Errorf("lora: adapter %q: %w", name, err)
		}
		sm := &savedModule{mod: mod}
		t := tensors.FromFlatDataAndDimensions(vals, dims...)
		if sm.w, err = m.Store.CreateVariable(model.JoinPath(a.scope(), mod.Name, "modules_to_save", "weight"), t); err != nil {
			return nil, fmt.Errorf("lora: adapter %q: %w", name, err)
		}
		if mod.Bias != "" {
			bv, _ := m.Param(mod.Bias)
			vals, dims, err := host.Read(bv)
			if err != nil {
				return nil, fmt.Errorf("lora: adapter %q: %w", name, err)
			}
			t := tensors.FromFlatDataAndDimensions(vals, dims...)
			if sm.bias, err = m.Store.CreateVariable(model.JoinPath(a.scope(), mod.Name, "modules_to_save", "bias"), t); err != nil {
				return nil, fmt.Errorf("lora: adapter %q: %w", name, err)
			}
		}
		a.saved = append(a.saved, sm)
		a.savedBy[mod.Hook] = sm
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

// Hooks returns the hooks that apply this adapter alone (whatever the
// set's active adapters); none while it is merged. train enables dropout
// (lora_dropout and WeightDropout).
func (a *Adapter) Hooks(train bool) models.Hooks {
	if a.merged {
		return models.Hooks{}
	}
	m := a.set.m
	return models.Hooks{Linear: func(name string, x, y *Node) *Node {
		for _, l := range a.byHook[name] {
			y = l.forward(m, &a.cfg, x, y, train)
		}
		if sm, ok := a.savedBy[name]; ok {
			y = sm.forward(x, y)
		}
		return y
	}}
}

// forward recomputes the module's output with the trained copy.
func (sm *savedModule) forward(x, y *Node) *Node {
	g := x.Graph()
	w := ConvertDType(sm.w.NodeValue(g), x.DType())
	var out *Node
	if sm.mod.StoredOutIn {
		out = DotGeneral(x, []int{x.Rank() - 1}, nil, w, []int{1}, nil)
	} else {
		out = DotGeneral(x, []int{x.Rank() - 1}, nil, w, []int{0}, nil)
	}
	if sm.bias != nil {
		out = Add(out, ExpandLeftToRank(ConvertDType(sm.bias.NodeValue(g), out.DType()), out.Rank()))
	}
	return ConvertDType(out, y.DType())
}

// Params lists the adapter's trainable tensors by PEFT's parameter names
// ("base_model.model.<module>.lora_A.<adapter>.weight", ...
// "lora_magnitude_vector.<adapter>.weight", "<module>.modules_to_save.
// <adapter>.weight"), for train.TrainerOptions.Params; Vars maps them to
// their variables. lora_A and lora_B are stored transposed ([in, r],
// [r, out]).
func (a *Adapter) Params() []string {
	var out []string
	for _, l := range a.layers {
		out = append(out, l.paramName(a.name, "lora_A"), l.paramName(a.name, "lora_B"))
		if l.mag != nil {
			out = append(out, l.paramName(a.name, "lora_magnitude_vector"))
		}
	}
	for _, sm := range a.saved {
		out = append(out, sm.paramName(a.name, "weight"))
		if sm.bias != nil {
			out = append(out, sm.paramName(a.name, "bias"))
		}
	}
	return out
}

func (sm *savedModule) paramName(adapter, kind string) string {
	return peft.KeyPrefix + sm.mod.Name + ".modules_to_save." + adapter + "." + kind
}

// Vars maps Params to the adapter's variables.
func (a *Adapter) Vars() map[string]*model.Variable {
	out := map[string]*model.Variable{}
	for _, l := range a.layers {
		out[l.paramName(a.name, "lora_A")] = l.a
		out[l.paramName(a.name, "lora_B")] = l.b
		if l.mag != nil {
			out[l.paramName(a.name, "lora_magnitude_vector")] = l.mag
		}
	}
	for _, sm := range a.saved {
		out[sm.paramName(a.name, "weight")] = sm.w
		if sm.bias != nil {
			out[sm.paramName(a.name, "bias")] = sm.bias
		}
	}
	return out
}

// Tensors maps the adapter's file keys (as in adapter_model.safetensors) to
// their variables; Transposed tells which are stored transposed relative to
// the file.
func (a *Adapter) Tensors() map[string]*model.Variable {
	out := map[string]*model.Variable{}
	for _, l := range a.layers {
		out[l.key("lora_A.weight")] = l.a
		out[l.key("lora_B.weight")] = l.b
		if l.mag != nil {
			out[l.key("lora_magnitude_vector")] = l.mag
		}
	}
	for _, sm := range a.saved {
		out[peft.KeyPrefix+sm.mod.Name+".weight"] = sm.w
		if sm.bias != nil {
			out[peft.KeyPrefix+sm.mod.Name+".bias"] = sm.bias
		}
	}
	return out
}

// Transposed reports whether the variable behind file key (see Tensors) is
// stored transposed relative to the file: lora_A and lora_B always, a
// module copy when its base weight is.
func (a *Adapter) Transposed(key string) bool {
	if strings.HasSuffix(key, ".lora_A.weight") || strings.HasSuffix(key, ".lora_B.weight") {
		return true
	}
	for _, sm := range a.saved {
		if key == peft.KeyPrefix+sm.mod.Name+".weight" {
			return !sm.mod.Conv1D && !sm.mod.StoredOutIn
		}
	}
	return false
}

// initialize sets the adapter's tensors as cfg.Init says.
func (a *Adapter) initialize(seed uint64) error {
	rng := host.NewRNG(seed, a.name)
	var errs []error
	for _, l := range a.layers {
		if err := l.initialize(a.set.m, a.cfg.Init, rng); err != nil {
			errs = append(errs, fmt.Errorf("lora: adapter %q: %s: %w", a.name, l.mod.Name, err))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	if a.cfg.Init == InitPiSSA {
		a.set.m.WeightsChanged()
	}
	return nil
}
