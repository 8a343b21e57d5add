package moe

import (
	"errors"
	"fmt"
	"math"
	"os"
	"slices"

	"github.com/lethe-ml/lethe/peft"
	"github.com/lethe-ml/lethe/peft/internal/adapterio"
	"github.com/lethe-ml/lethe/peft/internal/jsonfile"
	"github.com/lethe-ml/lethe/peft/lora"
)

// PEFTType is the peft_type of lethe's mixture-of-LoRA-experts adapters.
const PEFTType = "LETHE_MOLORA"

// FormatVersion is the version of the file format documented in the
// package comment.
const FormatVersion = 1

// Share says which LoRA matrix the experts of a module share.
type Share string

// The sharing modes.
const (
	// ShareNone gives every expert its own A and B (SiRA).
	ShareNone Share = ""
	// ShareA shares A (the projection from the input) and keeps one B per
	// expert (MoSLD).
	ShareA Share = "A"
	// ShareB shares B and keeps one A per expert.
	ShareB Share = "B"
)

// Config configures a mixture of LoRA experts (in brackets the default
// Attach applies to a zero value; a config read from a file keeps the
// file's values, with these defaults for absent keys). The JSON names are
// in the package documentation.
type Config struct {
	// Experts is N, the experts per module [4]; TopK is k [min(2, N)].
	Experts, TopK int
	// R and Alpha are each expert's rank [8] and lora_alpha [8]; the update
	// is scaled by Alpha/R (Alpha/√R with UseRSLoRA).
	R         int
	Alpha     float64
	UseRSLoRA bool
	// TargetModules, ExcludeModules, LayersToTransform and LayersPattern
	// select modules as PEFT's LoraConfig does [TargetModules: PEFT's
	// default for the model type, q_proj and v_proj for llama].
	TargetModules     peft.Targets
	ExcludeModules    peft.Targets
	LayersToTransform []int
	LayersPattern     []string
	// Dropout is dropout on the experts' input in training (lora_dropout;
	// the router sees the input undropped).
	Dropout float64
	// ExpertDropout drops gates (an expert's output for a token) in
	// training, scaling the kept ones by 1/(1−p).
	ExpertDropout float64
	// Capacity is the most tokens an expert takes per batch (0: use
	// CapacityFactor; both 0: no limit).
	Capacity int
	// CapacityFactor sets the capacity to ⌈factor·k·tokens/N⌉.
	CapacityFactor float64
	// Share selects MoSLD's shared projection.
	Share Share
	// SharedDropout drops entries of the shared matrix in training.
	SharedDropout float64
	// BalanceCoef weights the load-balancing loss in CausalLM and
	// AddBalance [0.01]; a negative value turns the loss off (it is saved
	// as 0, which a file may also hold).
	BalanceCoef float64
	// Init initialises A and B like LoRA's (lora.InitDefault,
	// lora.InitRandom, lora.InitGaussian); routers start as torch's
	// nn.Linear, U(±1/√in).
	Init lora.Init
	// TaskType is task_type ["CAUSAL_LM"]; BaseModel
	// base_model_name_or_path (Attach uses the model's folder).
	TaskType, BaseModel string

	// raw is the adapter_config.json the config was read from (its unknown
	// keys are written back); a config with one gets no defaults.
	raw *jsonfile.Object
}

var knownKeys = []string{
	"peft_type", "format_version", "task_type", "base_model_name_or_path", "target_modules", "exclude_modules",
	"layers_to_transform", "layers_pattern", "r", "lora_alpha", "use_rslora", "lora_dropout", "init_lora_weights",
	"num_experts", "top_k", "expert_capacity", "capacity_factor", "expert_dropout", "shared_projection",
	"shared_dropout", "router_aux_loss_coef", "inference_mode",
}

// fill applies the defaults (to a config not read from a file) and checks
// the values.
func (c *Config) fill() error {
	if c.raw == nil {
		c.defaults()
	}
	var errs []error
	if c.Experts < 1 {
		errs = append(errs, fmt.Errorf("num_experts: must be positive, got %d", c.Experts))
	}
	if c.R < 1 {
		errs = append(errs, fmt.Errorf("r: must be positive, got %d", c.R))
	}
	if c.TopK < 1 || c.TopK > c.Experts {
		errs = append(errs, fmt.Errorf("top_k: must be in [1, num_experts=%d], got %d", c.Experts, c.TopK))
	}
	for _, d := range []struct {
		name string
		p    float64
	}{{"lora_dropout", c.Dropout}, {"expert_dropout", c.ExpertDropout}, {"shared_dropout", c.SharedDropout}} {
		if d.p < 0 || d.p >= 1 {
			errs = append(errs, fmt.Errorf("%s: must be in [0, 1), got %g", d.name, d.p))
		}
	}
	if c.Capacity < 0 {
		errs = append(errs, fmt.Errorf("expert_capacity: must be >= 0, got %d", c.Capacity))
	}
	if c.CapacityFactor < 0 {
		errs = append(errs, fmt.Errorf("capacity_factor: must be >= 0, got %g", c.CapacityFactor))
	}
	switch c.Share {
	case ShareNone, ShareA, ShareB:
	default:
		errs = append(errs, fmt.Errorf("shared_projection: %q is not null, \"A\" or \"B\"", c.Share))
	}
	if c.SharedDropout > 0 && c.Share == ShareNone {
		errs = append(errs, errors.New("shared_dropout: needs a shared_projection (\"A\" or \"B\")"))
	}
	switch c.Init {
	case lora.InitDefault, lora.InitRandom, lora.InitGaussian:
	default:
		errs = append(errs, fmt.Errorf("init_lora_weights: %q is not supported for mixtures (true, false or \"gaussian\")", c.Init))
	}
	return errors.Join(errs...)
}

// defaults sets the zero fields to their defaults.
func (c *Config) defaults() {
	if c.Experts == 0 {
		c.Experts = 4
	}
	if c.TopK == 0 {
		c.TopK = min(2, c.Experts)
	}
	if c.R == 0 {
		c.R = 8
	}
	if c.Alpha == 0 {
		c.Alpha = 8
	}
	if c.TaskType == "" {
		c.TaskType = "CAUSAL_LM"
	}
	if c.BalanceCoef == 0 {
		c.BalanceCoef = 0.01
	}
}

// balanceCoef is the weight of the load-balancing loss (0 when off).
func (c *Config) balanceCoef() float64 { return max(c.BalanceCoef, 0) }

// selector is the config's module selection.
func (c *Config) selector() *peft.Selector {
	return &peft.Selector{Targets: c.TargetModules, Exclude: c.ExcludeModules, LayersToTransform: c.LayersToTransform,
		LayersPattern: c.LayersPattern}
}

func (c *Config) scaling() float64 {
	if c.UseRSLoRA {
		return c.Alpha / math.Sqrt(float64(c.R))
	}
	return c.Alpha / float64(c.R)
}

// capacity returns the expert capacity for S tokens (0: unlimited).
func (c *Config) capacity(tokens int) int {
	if c.Capacity > 0 {
		return c.Capacity
	}
	if c.CapacityFactor > 0 {
		return int(math.Ceil(c.CapacityFactor * float64(c.TopK*tokens) / float64(c.Experts)))
	}
	return 0
}

// ReadConfig reads dir/adapter_config.json of a mixture adapter. Keys
// lethe does not know are kept (Save writes them back) and reported as
// warnings; bad values are errors naming the file and the field.
func ReadConfig(dir string) (Config, []string, error) {
	obj, path, err := adapterio.ReadConfig(dir)
	if err != nil {
		return Config{}, nil, fmt.Errorf("moe: %w", err)
	}
	c, warnings, err := parseConfig(obj)
	if err != nil {
		return Config{}, nil, fmt.Errorf("moe: %s: %w", path, err)
	}
	for i := range warnings {
		warnings[i] = path + ": " + warnings[i]
	}
	return c, warnings, nil
}

// ParseConfig parses the contents of an adapter_config.json (see
// ReadConfig).
func ParseConfig(data []byte) (Config, []string, error) {
	v, err := jsonfile.Decode(data)
	if err != nil {
		return Config{}, nil, fmt.Errorf("moe: adapter config: %w", err)
	}
	obj, ok := v.(*jsonfile.Object)
	if !ok {
		return Config{}, nil, errors.New("moe: adapter config is not a JSON object")
	}
	c, warnings, err := parseConfig(obj)
	if err != nil {
		return Config{}, nil, fmt.Errorf("moe: adapter config: %w", err)
	}
	return c, warnings, nil
}

func parseConfig(obj *jsonfile.Object) (Config, []string, error) {
	f := &adapterio.Fields{Obj: obj}
	if pt := f.String("peft_type", ""); pt != PEFTType {
		return Config{}, nil, fmt.Errorf("peft_type is %q, want %q (PEFT LoRA adapters load with package peft/lora)", pt, PEFTType)
	}
	if v := f.Int("format_version", FormatVersion); v > FormatVersion {
		return Config{}, nil, fmt.Errorf("format_version %d is newer than lethe's %d", v, FormatVersion)
	}
	c := Config{raw: obj.Clone()}
	c.Experts = f.Int("num_experts", 4)
	c.TopK = f.Int("top_k", min(2, c.Experts))
	c.R = f.Int("r", 8)
	c.Alpha = f.Float("lora_alpha", 8)
	c.UseRSLoRA = f.Bool("use_rslora", false)
	var err error
	tm, _ := obj.Get("target_modules")
	if c.TargetModules, err = peft.ParseTargets(tm, "target_modules"); err != nil {
		f.Errs = append(f.Errs, err)
	}
	em, _ := obj.Get("exclude_modules")
	if c.ExcludeModules, err = peft.ParseTargets(em, "exclude_modules"); err != nil {
		f.Errs = append(f.Errs, err)
	}
	c.LayersToTransform = f.Ints("layers_to_transform")
	c.LayersPattern = f.Strings("layers_pattern")
	c.Dropout = f.Float("lora_dropout", 0)
	c.ExpertDropout = f.Float("expert_dropout", 0)
	c.Capacity = f.Int("expert_capacity", 0)
	c.CapacityFactor = f.Float("capacity_factor", 0)
	c.Share = Share(f.String("shared_projection", ""))
	c.SharedDropout = f.Float("shared_dropout", 0)
	c.BalanceCoef = f.Float("router_aux_loss_coef", 0.01)
	c.TaskType = f.String("task_type", "CAUSAL_LM")
	c.BaseModel = f.String("base_model_name_or_path", "")
	switch v, _ := obj.Get("init_lora_weights"); x := v.(type) {
	case nil:
	case bool:
		if !x {
			c.Init = lora.InitRandom
		}
	case string:
		c.Init = lora.Init(x)
		if x == "" || c.Init == lora.InitRandom {
			f.Errs = append(f.Errs, fmt.Errorf("init_lora_weights: want true, false or \"gaussian\", got %q", x))
		}
	default:
		f.Errs = append(f.Errs, fmt.Errorf("init_lora_weights: want true, false or a string, got %v", x))
	}
	if c.Share == "" {
		if v, ok := obj.Get("shared_projection"); ok && v != nil {
			f.Errs = append(f.Errs, errors.New("shared_projection: want null, \"A\" or \"B\", got \"\""))
		}
	}
	var warnings []string
	if c.TaskType != "CAUSAL_LM" {
		warnings = append(warnings, fmt.Sprintf("task_type %q: lethe runs adapters on causal LMs", c.TaskType))
	}
	for _, k := range obj.Keys() {
		if !slices.Contains(knownKeys, k) {
			warnings = append(warnings, fmt.Sprintf("unknown config key %q (kept, ignored)", k))
		}
	}
	if err := f.Err(); err != nil {
		return Config{}, nil, err
	}
	if err := c.fill(); err != nil {
		return Config{}, nil, err
	}
	return c, warnings, nil
}

// object renders the config as adapter_config.json.
func (c *Config) object() *jsonfile.Object {
	o := jsonfile.NewObject()
	if c.raw != nil {
		o = c.raw.Clone()
	}
	set := func(k string, v any) { adapterio.Set(o, k, v) }
	set("peft_type", PEFTType)
	set("format_version", FormatVersion)
	set("task_type", c.TaskType)
	if c.BaseModel == "" {
		set("base_model_name_or_path", nil)
	} else {
		set("base_model_name_or_path", c.BaseModel)
	}
	set("target_modules", c.TargetModules.JSON())
	set("exclude_modules", c.ExcludeModules.JSON())
	if c.LayersToTransform == nil {
		set("layers_to_transform", nil)
	} else {
		set("layers_to_transform", c.LayersToTransform)
	}
	if c.LayersPattern == nil {
		set("layers_pattern", nil)
	} else {
		set("layers_pattern", c.LayersPattern)
	}
	set("r", c.R)
	set("lora_alpha", adapterio.Number(c.Alpha))
	set("use_rslora", c.UseRSLoRA)
	set("lora_dropout", c.Dropout)
	switch c.Init {
	case lora.InitDefault:
		set("init_lora_weights", true)
	case lora.InitRandom:
		set("init_lora_weights", false)
	default:
		set("init_lora_weights", string(c.Init))
	}
	set("num_experts", c.Experts)
	set("top_k", c.TopK)
	set("expert_capacity", c.Capacity)
	set("capacity_factor", c.CapacityFactor)
	set("expert_dropout", c.ExpertDropout)
	if c.Share == ShareNone {
		set("shared_projection", nil)
	} else {
		set("shared_projection", string(c.Share))
	}
	set("shared_dropout", c.SharedDropout)
	set("router_aux_loss_coef", c.balanceCoef())
	set("inference_mode", true)
	return o
}

// JSON renders the config as adapter_config.json (see Adapter.Save).
func (c Config) JSON() ([]byte, error) {
	if err := c.fill(); err != nil {
		return nil, fmt.Errorf("moe: config: %w", err)
	}
	return jsonfile.Encode(c.object())
}

// WriteConfig writes c to dir/adapter_config.json (through a temporary
// file renamed into place).
func WriteConfig(dir string, c Config) error {
	if err := c.fill(); err != nil {
		return fmt.Errorf("moe: config: %w", err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("moe: %w", err)
	}
	if err := adapterio.WriteConfig(dir, c.object()); err != nil {
		return fmt.Errorf("moe: write %s: %w", dir, err)
	}
	return nil
}
