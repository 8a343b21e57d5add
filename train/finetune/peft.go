package finetune

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/gomlx/gomlx/ml/model"
	"go.yaml.in/yaml/v3"

	"github.com/lethe-ml/lethe/models"
	"github.com/lethe-ml/lethe/peft"
	"github.com/lethe-ml/lethe/peft/lora"
	"github.com/lethe-ml/lethe/peft/moe"
	"github.com/lethe-ml/lethe/train"
	"github.com/lethe-ml/lethe/train/dropout"
)

// AdapterName is the name of the adapter a recipe trains (PEFT's default
// adapter name, so the saved folder loads with PeftModel.from_pretrained
// without an adapter_name).
const AdapterName = "default"

// PEFTConfig trains adapters on a frozen base instead of every weight. Its
// keys are the names of PEFT's LoraConfig (adapter_config.json), so a
// PEFT user's settings carry over.
type PEFTConfig struct {
	// Method is "lora" (LoRA, DoRA and rsLoRA through the flags below),
	// "moe" (a mixture of LoRA experts: SiRA, or MoSLD with
	// shared_projection; package peft/moe) or "" / "none" for full
	// fine-tuning.
	Method string `yaml:"method" json:"method,omitempty"`
	// Adapter starts from an existing adapter folder (PEFT's or lethe's)
	// and trains it further; its adapter_config.json then defines the
	// adapter and the shape keys below must be left out.
	Adapter string `yaml:"adapter" json:"adapter,omitempty"`
	// R is the rank [8]; LoraAlpha scales the update by lora_alpha/r
	// (lora_alpha/√r with use_rslora) [8].
	R         int     `yaml:"r" json:"r,omitempty"`
	LoraAlpha float64 `yaml:"lora_alpha" json:"lora_alpha,omitempty"`
	// LoraDropout is dropout on the adapter's input in training [0, or
	// dropout.lora].
	LoraDropout float64 `yaml:"lora_dropout" json:"lora_dropout,omitempty"`
	// TargetModules is a list of module-name suffixes, a regular
	// expression, or "all-linear" [PEFT's default for the model type].
	TargetModules any `yaml:"target_modules" json:"target_modules,omitempty"`
	// ExcludeModules are never adapted (same forms as target_modules).
	ExcludeModules any `yaml:"exclude_modules" json:"exclude_modules,omitempty"`
	// LayersToTransform restricts the targets to these layer indices,
	// found after LayersPattern.
	LayersToTransform []int    `yaml:"layers_to_transform" json:"layers_to_transform,omitempty"`
	LayersPattern     []string `yaml:"layers_pattern" json:"layers_pattern,omitempty"`
	// RankPattern and AlphaPattern override r and lora_alpha for modules
	// matching a key (a regular expression), first match in order.
	RankPattern  Patterns `yaml:"rank_pattern" json:"rank_pattern,omitempty"`
	AlphaPattern Patterns `yaml:"alpha_pattern" json:"alpha_pattern,omitempty"`
	// ModulesToSave are trained in full next to the adapter (e.g.
	// [lm_head]) and saved in its file.
	ModulesToSave []string `yaml:"modules_to_save" json:"modules_to_save,omitempty"`
	// UseRSLoRA and UseDoRA select rsLoRA's scaling and DoRA's magnitude
	// vector.
	UseRSLoRA bool `yaml:"use_rslora" json:"use_rslora,omitempty"`
	UseDoRA   bool `yaml:"use_dora" json:"use_dora,omitempty"`
	// InitLoraWeights is PEFT's init_lora_weights: true [default: A
	// kaiming-uniform, B zero], false (both random), "gaussian" or "pissa".
	InitLoraWeights any `yaml:"init_lora_weights" json:"init_lora_weights,omitempty"`
	// WeightDropout is LoRA Dropout (Lin et al. 2024): drop rows of A and
	// columns of B in training, a sparsity regulariser.
	WeightDropout float64 `yaml:"weight_dropout" json:"weight_dropout,omitempty"`

	// The keys of a mixture of LoRA experts (method moe), with the names
	// of its adapter_config.json (see package peft/moe):
	// NumExperts experts per module [4], TopK routed per token [2].
	NumExperts int `yaml:"num_experts" json:"num_experts,omitempty"`
	TopK       int `yaml:"top_k" json:"top_k,omitempty"`
	// ExpertCapacity is the most tokens an expert takes per batch;
	// CapacityFactor sets it to ⌈factor·k·tokens/N⌉ (both 0: no limit).
	ExpertCapacity int     `yaml:"expert_capacity" json:"expert_capacity,omitempty"`
	CapacityFactor float64 `yaml:"capacity_factor" json:"capacity_factor,omitempty"`
	// ExpertDropout drops an expert's output for a token in training.
	ExpertDropout float64 `yaml:"expert_dropout" json:"expert_dropout,omitempty"`
	// SharedProjection is MoSLD's shared matrix: "A" (one A per module for
	// all experts), "B", or "" (SiRA: none); SharedDropout drops its
	// entries in training.
	SharedProjection string  `yaml:"shared_projection" json:"shared_projection,omitempty"`
	SharedDropout    float64 `yaml:"shared_dropout" json:"shared_dropout,omitempty"`
	// RouterAuxLossCoef weights the load-balancing loss [0.01; negative:
	// none].
	RouterAuxLossCoef float64 `yaml:"router_aux_loss_coef" json:"router_aux_loss_coef,omitempty"`
}

// Patterns is a rank_pattern or alpha_pattern: a YAML mapping from
// regular expressions to values whose order is kept (the first match
// wins).
type Patterns []lora.Pattern

// UnmarshalYAML reads a mapping in document order.
func (p *Patterns) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.MappingNode {
		return fmt.Errorf("line %d: want a mapping from module patterns to numbers", n.Line)
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		var v float64
		if err := n.Content[i+1].Decode(&v); err != nil {
			return fmt.Errorf("line %d: %s: want a number: %w", n.Content[i+1].Line, n.Content[i].Value, err)
		}
		*p = append(*p, lora.Pattern{Key: n.Content[i].Value, Value: v})
	}
	return nil
}

// MarshalYAML writes the mapping in order.
func (p Patterns) MarshalYAML() (any, error) {
	n := &yaml.Node{Kind: yaml.MappingNode}
	for _, e := range p {
		var v yaml.Node
		if err := v.Encode(e.Value); err != nil {
			return nil, err
		}
		n.Content = append(n.Content, &yaml.Node{Kind: yaml.ScalarNode, Value: e.Key}, &v)
	}
	return n, nil
}

// enabled reports whether the recipe trains adapters.
func (c PEFTConfig) enabled() bool {
	m := strings.ToLower(c.Method)
	return m != "" && m != "none"
}

// validate checks c; errors name the key under "peft.". loraInput is
// dropout.lora.
func (c *PEFTConfig) validate(loraInput float64) error {
	if !c.enabled() {
		if c.Adapter != "" || c.R != 0 || c.TargetModules != nil || c.UseDoRA || c.UseRSLoRA || c.NumExperts != 0 {
			return errors.New("peft: adapter settings without peft.method (lora or moe)")
		}
		return nil
	}
	c.Method = strings.ToLower(c.Method)
	if c.Method != "lora" && c.Method != "moe" {
		return fmt.Errorf("peft.method: %q is not one of none, lora, moe", c.Method)
	}
	var errs []error
	if c.Method == "lora" {
		for key, set := range map[string]bool{"num_experts": c.NumExperts != 0, "top_k": c.TopK != 0, "expert_capacity": c.ExpertCapacity != 0,
			"capacity_factor": c.CapacityFactor != 0, "expert_dropout": c.ExpertDropout != 0, "shared_projection": c.SharedProjection != "",
			"shared_dropout": c.SharedDropout != 0, "router_aux_loss_coef": c.RouterAuxLossCoef != 0} {
			if set {
				errs = append(errs, fmt.Errorf("peft.%s: a key of peft.method moe, not lora", key))
			}
		}
	}
	if c.Adapter != "" {
		for key, set := range map[string]bool{"r": c.R != 0, "lora_alpha": c.LoraAlpha != 0, "target_modules": c.TargetModules != nil,
			"use_dora": c.UseDoRA, "use_rslora": c.UseRSLoRA, "init_lora_weights": c.InitLoraWeights != nil, "num_experts": c.NumExperts != 0,
			"top_k": c.TopK != 0, "shared_projection": c.SharedProjection != ""} {
			if set {
				errs = append(errs, fmt.Errorf("peft.%s: set by peft.adapter's adapter_config.json; leave it out", key))
			}
		}
		return errors.Join(errs...)
	}
	if c.Method == "moe" {
		if _, err := c.moeConfig(loraInput); err != nil {
			errs = append(errs, err)
		}
	} else if _, err := c.loraConfig(loraInput); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// moeConfig converts c into a moe.Config.
func (c *PEFTConfig) moeConfig(inputDropout float64) (moe.Config, error) {
	lc, err := c.loraConfig(inputDropout)
	errs := []error{err}
	for key, set := range map[string]bool{"use_dora": lc.UseDoRA, "rank_pattern": len(lc.RankPattern) > 0, "alpha_pattern": len(lc.AlphaPattern) > 0,
		"modules_to_save": len(lc.ModulesToSave) > 0, "weight_dropout": lc.WeightDropout != 0, "init_lora_weights: pissa": lc.Init == lora.InitPiSSA} {
		if set {
			errs = append(errs, fmt.Errorf("peft.%s: not available with peft.method moe", key))
		}
	}
	mc := moe.Config{
		Experts: c.NumExperts, TopK: c.TopK, R: lc.R, Alpha: lc.Alpha, UseRSLoRA: lc.UseRSLoRA,
		TargetModules: lc.TargetModules, ExcludeModules: lc.ExcludeModules,
		LayersToTransform: lc.LayersToTransform, LayersPattern: lc.LayersPattern,
		Dropout: lc.Dropout, ExpertDropout: c.ExpertDropout, Capacity: c.ExpertCapacity, CapacityFactor: c.CapacityFactor,
		Share: moe.Share(c.SharedProjection), SharedDropout: c.SharedDropout, BalanceCoef: c.RouterAuxLossCoef, Init: lc.Init,
	}
	switch {
	case c.NumExperts < 0 || c.TopK < 0 || (c.NumExperts > 0 && c.TopK > c.NumExperts):
		errs = append(errs, fmt.Errorf("peft.top_k: must be in [1, num_experts], got top_k %d and num_experts %d", c.TopK, c.NumExperts))
	case c.ExpertCapacity < 0 || c.CapacityFactor < 0:
		errs = append(errs, errors.New("peft.expert_capacity and peft.capacity_factor: must be >= 0"))
	case c.ExpertDropout < 0 || c.ExpertDropout >= 1 || c.SharedDropout < 0 || c.SharedDropout >= 1:
		errs = append(errs, errors.New("peft.expert_dropout and peft.shared_dropout: must be in [0, 1)"))
	}
	switch mc.Share {
	case moe.ShareNone, moe.ShareA, moe.ShareB:
		if c.SharedDropout != 0 && mc.Share == moe.ShareNone {
			errs = append(errs, errors.New("peft.shared_dropout: needs peft.shared_projection"))
		}
	default:
		errs = append(errs, fmt.Errorf("peft.shared_projection: %q is not \"A\", \"B\" or empty", c.SharedProjection))
	}
	return mc, errors.Join(errs...)
}

// loraConfig converts c into a lora.Config; inputDropout is the rate
// dropout.lora asks for (used when lora_dropout is unset).
func (c *PEFTConfig) loraConfig(inputDropout float64) (lora.Config, error) {
	var errs []error
	if c.R < 0 {
		errs = append(errs, fmt.Errorf("peft.r: must be positive, got %d", c.R))
	}
	if c.LoraAlpha < 0 {
		errs = append(errs, fmt.Errorf("peft.lora_alpha: must be positive, got %g", c.LoraAlpha))
	}
	for key, p := range map[string]float64{"lora_dropout": c.LoraDropout, "weight_dropout": c.WeightDropout} {
		if p < 0 || p >= 1 {
			errs = append(errs, fmt.Errorf("peft.%s: must be in [0, 1), got %g", key, p))
		}
	}
	if c.LoraDropout != 0 && inputDropout != 0 && c.LoraDropout != inputDropout {
		errs = append(errs, fmt.Errorf("peft.lora_dropout (%g) and dropout.lora (%g) disagree: set one", c.LoraDropout, inputDropout))
	}
	tm, err := peft.ParseTargets(c.TargetModules, "peft.target_modules")
	if err != nil {
		errs = append(errs, err)
	}
	em, err := peft.ParseTargets(c.ExcludeModules, "peft.exclude_modules")
	if err != nil {
		errs = append(errs, err)
	}
	var init lora.Init
	switch v := c.InitLoraWeights.(type) {
	case nil:
	case bool:
		if !v {
			init = lora.InitRandom
		}
	case string:
		switch strings.ToLower(v) {
		case "true":
		case "false":
			init = lora.InitRandom
		case "gaussian":
			init = lora.InitGaussian
		case "pissa":
			init = lora.InitPiSSA
		default:
			errs = append(errs, fmt.Errorf("peft.init_lora_weights: %q is not true, false, gaussian or pissa", v))
		}
	default:
		errs = append(errs, fmt.Errorf("peft.init_lora_weights: want true, false, gaussian or pissa, got %v", v))
	}
	drop := c.LoraDropout
	if drop == 0 {
		drop = inputDropout
	}
	return lora.Config{
		R: c.R, Alpha: c.LoraAlpha, TargetModules: tm, ExcludeModules: em,
		LayersToTransform: c.LayersToTransform, LayersPattern: c.LayersPattern,
		RankPattern: c.RankPattern, AlphaPattern: c.AlphaPattern, ModulesToSave: c.ModulesToSave,
		Dropout: drop, UseRSLoRA: c.UseRSLoRA, UseDoRA: c.UseDoRA, Init: init, WeightDropout: c.WeightDropout,
	}, errors.Join(errs...)
}

// newTuner returns the tuner the recipe asks for.
func newTuner(m *models.Model, cfg Config, reg *dropout.Regularizer) (tuner, error) {
	p := cfg.PEFT
	if !p.enabled() {
		return fullTuner{m}, nil
	}
	if p.Method == "moe" {
		var (
			a   *moe.Adapter
			err error
		)
		if p.Adapter != "" {
			if a, err = moe.Load(m, p.Adapter, AdapterName); err != nil {
				return nil, fmt.Errorf("peft.adapter: %w", err)
			}
		} else {
			mc, err := p.moeConfig(reg.LoRADropout())
			if err != nil {
				return nil, err
			}
			mc.BaseModel = cfg.Model.Path
			if a, err = moe.Attach(m, AdapterName, mc, uint64(cfg.Training.Seed)); err != nil {
				return nil, fmt.Errorf("peft: %w", err)
			}
		}
		return &moeTuner{a}, nil
	}
	var (
		a   *lora.Adapter
		err error
	)
	if p.Adapter != "" {
		if a, err = lora.Load(m, p.Adapter, AdapterName); err != nil {
			return nil, fmt.Errorf("peft.adapter: %w", err)
		}
	} else {
		lc, err := p.loraConfig(reg.LoRADropout())
		if err != nil {
			return nil, err
		}
		lc.BaseModel = cfg.Model.Path
		if a, err = lora.Attach(m, AdapterName, lc, uint64(cfg.Training.Seed)); err != nil {
			return nil, fmt.Errorf("peft: %w", err)
		}
	}
	return &loraTuner{a: a}, nil
}

// loraTuner trains a LoRA or DoRA adapter on the frozen model.
type loraTuner struct {
	a *lora.Adapter
}

func (t *loraTuner) Hooks(train bool) models.Hooks    { return t.a.Hooks(train) }
func (t *loraTuner) Params() []string                 { return t.a.Params() }
func (t *loraTuner) Vars() map[string]*model.Variable { return t.a.Vars() }
func (t *loraTuner) Warnings() []string               { return t.a.Warnings() }

func (t *loraTuner) Trainable() int64 {
	var n int64
	for _, v := range t.a.Vars() {
		n += int64(v.Shape().Size())
	}
	return n
}

// Save writes the adapter to adapter/ in PEFT's format and, when
// output.save_model is true, the merged model to model/.
func (t *loraTuner) Save(dir string, out OutputConfig, res *Result) error {
	res.Adapter = filepath.Join(dir, AdapterDir)
	if err := t.a.Save(res.Adapter); err != nil {
		return err
	}
	if out.SaveModel == nil || !*out.SaveModel {
		return nil
	}
	if err := t.a.Merge(); err != nil {
		return fmt.Errorf("merge the adapter: %w", err)
	}
	res.Model = filepath.Join(dir, ModelDir)
	if err := t.a.Set().Model().Export(res.Model, models.ExportOptions{}); err != nil {
		return err
	}
	return t.a.Unmerge()
}

// moeTuner trains a mixture of LoRA experts on the frozen model; its loss
// adds the load-balancing term.
type moeTuner struct{ a *moe.Adapter }

func (t *moeTuner) Hooks(train bool) models.Hooks    { return t.a.Hooks(train) }
func (t *moeTuner) Params() []string                 { return t.a.Params() }
func (t *moeTuner) Vars() map[string]*model.Variable { return t.a.Vars() }
func (t *moeTuner) Warnings() []string               { return t.a.Warnings() }
func (t *moeTuner) Trainable() int64                 { return int64(t.a.NumParams()) }

// WrapLoss adds router_aux_loss_coef times the balance loss in training.
func (t *moeTuner) WrapLoss(loss train.LossFunc) train.LossFunc { return t.a.AddBalance(loss) }

// Save writes the adapter to adapter/ in lethe's mixture format; a mixture
// cannot be merged, so output.save_model is refused.
func (t *moeTuner) Save(dir string, out OutputConfig, res *Result) error {
	res.Adapter = filepath.Join(dir, AdapterDir)
	if out.SaveModel != nil && *out.SaveModel {
		return errors.New("output.save_model: a mixture of LoRA experts routes by input and cannot be merged into the weights")
	}
	return t.a.Save(res.Adapter)
}
