package lora

import (
	"errors"
	"fmt"
	"math"
	"os"
	"slices"
	"sort"
	"strings"

	"github.com/lethe-ml/lethe/peft"
	"github.com/lethe-ml/lethe/peft/internal/adapterio"
	"github.com/lethe-ml/lethe/peft/internal/jsonfile"
)

// PEFTVersion is the PEFT release whose adapter_config.json lethe writes
// (its peft_version field and set of fields).
const PEFTVersion = "0.21.0"

// Init is how Attach initialises A and B (PEFT's init_lora_weights).
type Init string

// The initialisations. PEFT writes true and false for InitDefault and
// InitRandom, strings for the others.
const (
	// InitDefault: A kaiming-uniform with a = √5 (U(±1/√in)), B zero, so
	// the adapter starts as the identity (init_lora_weights=true).
	InitDefault Init = ""
	// InitRandom: A and B as torch initialises nn.Linear, A U(±1/√in) and
	// B U(±1/√r) (init_lora_weights=false; the fixtures use it).
	InitRandom Init = "random"
	// InitGaussian: A ~ N(0, (1/r)²), B zero ("gaussian").
	InitGaussian Init = "gaussian"
	// InitPiSSA: A and B from the top r singular triplets of the base
	// weight, which keeps W − scale·B·A ("pissa"). It changes the base
	// weights.
	InitPiSSA Init = "pissa"
)

// Pattern is one entry of rank_pattern or alpha_pattern: modules whose name
// matches Key (a Python regular expression; see peft.PatternKey) get
// Value as their rank or alpha.
type Pattern struct {
	Key   string
	Value float64
}

// Config is a LoRA adapter's configuration: the fields of PEFT's LoraConfig
// that lethe implements, with PEFT's meaning and JSON names (in brackets the
// default Attach applies to a zero value).
type Config struct {
	// R is the rank r [8].
	R int
	// Alpha is lora_alpha [8]; the update is scaled by Alpha/R, or
	// Alpha/√R with UseRSLoRA.
	Alpha float64
	// TargetModules selects the modules to adapt (target_modules); unset
	// means PEFT's default for the model type (q_proj and v_proj; c_attn for
	// GPT-2).
	TargetModules peft.Targets
	// ExcludeModules are never adapted (exclude_modules).
	ExcludeModules peft.Targets
	// LayersToTransform restricts list targets to these layers
	// (layers_to_transform; nil means all), found after LayersPattern
	// (layers_pattern).
	LayersToTransform []int
	LayersPattern     []string
	// RankPattern and AlphaPattern override R and Alpha for modules whose
	// name matches a key, first match in order (rank_pattern,
	// alpha_pattern).
	RankPattern, AlphaPattern []Pattern
	// ModulesToSave are trained as full copies (modules_to_save): every
	// linear module whose name ends with an entry.
	ModulesToSave []string
	// FanInFanOut marks Conv1D targets (GPT-2); Attach sets it to match the
	// targets, as PEFT does, with a warning when it changes it.
	FanInFanOut bool
	// Bias must be "none" (bias); lethe trains no base biases.
	Bias string
	// Dropout is lora_dropout: dropout on the adapter's input in training.
	Dropout float64
	// UseRSLoRA scales by Alpha/√R (use_rslora).
	UseRSLoRA bool
	// UseDoRA makes the adapter DoRA (use_dora): a trained magnitude per
	// output feature.
	UseDoRA bool
	// Init initialises A and B (init_lora_weights).
	Init Init
	// WeightDropout is LoRA Dropout (Lin et al. 2024, "LoRA Dropout as a
	// Sparsity Regularizer for Overfitting Control"): in training, each
	// input feature's row of A ([in, r]) and each output feature's column of
	// B ([r, out]) is dropped with this probability, once per step for the
	// whole batch, and the kept ones are scaled by 1/(1−p). It is a lethe
	// extension, saved as "lethe_weight_dropout" only when set.
	WeightDropout float64
	// TaskType is task_type ["CAUSAL_LM"].
	TaskType string
	// BaseModel is base_model_name_or_path (Attach uses the model's folder).
	BaseModel string

	// raw is the adapter_config.json the config was read from (its unknown
	// keys are written back).
	raw *jsonfile.Object
}

// knownKeys are the fields PEFT 0.21's LoraConfig writes.
var knownKeys = []string{
	"alora_invocation_tokens", "alpha_pattern", "arrow_config", "auto_mapping", "base_model_name_or_path",
	"bias", "corda_config", "ensure_weight_tying", "eva_config", "exclude_modules", "fan_in_fan_out",
	"inference_mode", "init_lora_weights", "kasa_config", "layer_replication", "layers_pattern",
	"layers_to_transform", "loftq_config", "lora_alpha", "lora_bias", "lora_dropout", "lora_ga_config",
	"megatron_config", "megatron_core", "modules_to_save", "monteclora_config", "peft_type", "peft_version",
	"qalora_group_size", "r", "rank_pattern", "revision", "target_modules", "target_parameters", "task_type",
	"trainable_token_indices", "use_bdlora", "use_dora", "use_qalora", "use_rslora", "velora_config",
}

const weightDropoutKey = "lethe_weight_dropout"

// defaultObject is the adapter_config.json PEFT 0.21 writes for
// LoraConfig() with its defaults (inference_mode is true in saved files).
func defaultObject() *jsonfile.Object {
	o := jsonfile.NewObject()
	for _, k := range knownKeys {
		o.Set(k, nil)
	}
	o.Set("alpha_pattern", jsonfile.NewObject())
	o.Set("bias", "none")
	o.Set("ensure_weight_tying", false)
	o.Set("fan_in_fan_out", false)
	o.Set("inference_mode", true)
	o.Set("init_lora_weights", true)
	o.Set("loftq_config", jsonfile.NewObject())
	o.Set("lora_alpha", 8)
	o.Set("lora_bias", false)
	o.Set("lora_dropout", 0.0)
	o.Set("megatron_core", "megatron.core")
	o.Set("peft_type", "LORA")
	o.Set("peft_version", PEFTVersion)
	o.Set("qalora_group_size", 16)
	o.Set("r", 8)
	o.Set("rank_pattern", jsonfile.NewObject())
	o.Set("task_type", "CAUSAL_LM")
	o.Set("use_dora", false)
	o.Set("use_qalora", false)
	o.Set("use_rslora", false)
	return o
}

// ReadConfig reads dir/adapter_config.json. Keys lethe does not know are
// kept (Save writes them back) and reported as warnings; settings lethe
// cannot honour (bias other than "none", lora_bias, QALoRA, layer
// replication, target_parameters, trainable tokens, ...) are errors naming
// the field.
func ReadConfig(dir string) (Config, []string, error) {
	obj, path, err := adapterio.ReadConfig(dir)
	if err != nil {
		return Config{}, nil, fmt.Errorf("lora: %w", err)
	}
	c, warnings, err := parseConfig(obj)
	if err != nil {
		return Config{}, nil, fmt.Errorf("lora: %s: %w", path, err)
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
		return Config{}, nil, fmt.Errorf("lora: adapter config: %w", err)
	}
	obj, ok := v.(*jsonfile.Object)
	if !ok {
		return Config{}, nil, errors.New("lora: adapter config is not a JSON object")
	}
	return parseConfig(obj)
}

func parseConfig(obj *jsonfile.Object) (Config, []string, error) {
	f := &adapterio.Fields{Obj: obj}
	var warnings []string
	if pt := f.String("peft_type", ""); pt != "LORA" {
		return Config{}, nil, fmt.Errorf("peft_type is %q, want \"LORA\" (for lethe's mixtures of LoRA experts use package peft/moe)", pt)
	}
	c := Config{raw: obj.Clone()}
	c.R = f.Int("r", 8)
	c.Alpha = f.Float("lora_alpha", 8)
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
	c.RankPattern = patterns(f, "rank_pattern")
	c.AlphaPattern = patterns(f, "alpha_pattern")
	c.ModulesToSave = f.Strings("modules_to_save")
	c.FanInFanOut = f.Bool("fan_in_fan_out", false)
	c.Bias = f.String("bias", "none")
	c.Dropout = f.Float("lora_dropout", 0)
	c.UseRSLoRA = f.Bool("use_rslora", false)
	c.UseDoRA = f.Bool("use_dora", false)
	c.WeightDropout = f.Float(weightDropoutKey, 0)
	c.TaskType = f.String("task_type", "")
	c.BaseModel = f.String("base_model_name_or_path", "")
	switch v, _ := obj.Get("init_lora_weights"); x := v.(type) {
	case nil:
	case bool:
		if !x {
			c.Init = InitRandom
		}
	case string:
		c.Init = Init(x)
		if x == "" {
			f.Errs = append(f.Errs, errors.New("init_lora_weights: empty string"))
		}
	default:
		f.Errs = append(f.Errs, fmt.Errorf("init_lora_weights: want true, false or a string, got %v", x))
	}
	// Settings lethe does not implement.
	if c.Bias != "none" {
		f.Errs = append(f.Errs, fmt.Errorf("bias: %q is not supported (lethe trains no base biases; use \"none\")", c.Bias))
	}
	if f.Bool("lora_bias", false) {
		f.Errs = append(f.Errs, errors.New("lora_bias: true is not supported (lethe's lora_B has no bias)"))
	}
	if f.Bool("use_qalora", false) {
		f.Errs = append(f.Errs, errors.New("use_qalora: QALoRA is not supported"))
	}
	for _, k := range []string{"layer_replication", "trainable_token_indices", "alora_invocation_tokens", "arrow_config",
		"monteclora_config", "kasa_config", "velora_config", "lora_ga_config"} {
		if v, _ := obj.Get(k); v != nil && !isEmpty(v) {
			f.Errs = append(f.Errs, fmt.Errorf("%s: %v is not supported by lethe", k, v))
		}
	}
	if v, _ := obj.Get("use_bdlora"); v != nil && v != false {
		f.Errs = append(f.Errs, fmt.Errorf("use_bdlora: %v is not supported by lethe", v))
	}
	if v, _ := obj.Get("target_parameters"); v != nil && !isEmpty(v) {
		f.Errs = append(f.Errs, fmt.Errorf("target_parameters: %v is not supported (lethe adapts linear modules only)", v))
	}
	if c.TaskType != "" && c.TaskType != "CAUSAL_LM" {
		warnings = append(warnings, fmt.Sprintf("task_type %q: lethe runs adapters on causal LMs", c.TaskType))
	}
	for _, k := range obj.Keys() {
		if !slices.Contains(knownKeys, k) && k != weightDropoutKey {
			warnings = append(warnings, fmt.Sprintf("unknown config key %q (kept, ignored)", k))
		}
	}
	if err := f.Err(); err != nil {
		return Config{}, nil, err
	}
	return c, warnings, nil
}

func isEmpty(v any) bool {
	switch x := v.(type) {
	case []any:
		return len(x) == 0
	case *jsonfile.Object:
		return x.Len() == 0
	}
	return false
}

func patterns(f *adapterio.Fields, key string) []Pattern {
	v, _ := f.Obj.Get(key)
	if v == nil {
		return nil
	}
	o, ok := v.(*jsonfile.Object)
	if !ok {
		f.Errs = append(f.Errs, fmt.Errorf("%s: want an object, got %v", key, v))
		return nil
	}
	sub := &adapterio.Fields{Obj: o}
	var out []Pattern
	for _, k := range o.Keys() {
		out = append(out, Pattern{Key: k, Value: sub.Float(k, 0)})
	}
	for _, e := range sub.Errs {
		f.Errs = append(f.Errs, fmt.Errorf("%s: %w", key, e))
	}
	return out
}

// fill applies the defaults and checks the values.
func (c *Config) fill() error {
	if c.R == 0 {
		c.R = 8
	}
	if c.Alpha == 0 {
		c.Alpha = 8
	}
	if c.Bias == "" {
		c.Bias = "none"
	}
	if c.TaskType == "" {
		c.TaskType = "CAUSAL_LM"
	}
	var errs []error
	if c.R < 0 {
		errs = append(errs, fmt.Errorf("r: must be positive, got %d", c.R))
	}
	if c.Bias != "none" {
		errs = append(errs, fmt.Errorf("bias: %q is not supported (lethe trains no base biases; use \"none\")", c.Bias))
	}
	if c.Dropout < 0 || c.Dropout >= 1 {
		errs = append(errs, fmt.Errorf("lora_dropout: must be in [0, 1), got %g", c.Dropout))
	}
	if c.WeightDropout < 0 || c.WeightDropout >= 1 {
		errs = append(errs, fmt.Errorf("%s: must be in [0, 1), got %g", weightDropoutKey, c.WeightDropout))
	}
	for _, p := range c.RankPattern {
		if p.Value <= 0 || p.Value != math.Trunc(p.Value) {
			errs = append(errs, fmt.Errorf("rank_pattern[%q]: want a positive integer, got %g", p.Key, p.Value))
		}
	}
	return errors.Join(errs...)
}

// rankAlpha returns the rank and alpha of module name (rank_pattern and
// alpha_pattern, as PEFT's _create_and_replace).
func (c *Config) rankAlpha(name string) (int, float64, error) {
	r, alpha := c.R, c.Alpha
	keys := func(ps []Pattern) []string {
		out := make([]string, len(ps))
		for i, p := range ps {
			out[i] = p.Key
		}
		return out
	}
	if k, ok, err := peft.PatternKey(keys(c.RankPattern), name); err != nil {
		return 0, 0, fmt.Errorf("rank_pattern: %w", err)
	} else if ok {
		for _, p := range c.RankPattern {
			if p.Key == k {
				r = int(p.Value)
				break
			}
		}
	}
	if k, ok, err := peft.PatternKey(keys(c.AlphaPattern), name); err != nil {
		return 0, 0, fmt.Errorf("alpha_pattern: %w", err)
	} else if ok {
		for _, p := range c.AlphaPattern {
			if p.Key == k {
				alpha = p.Value
				break
			}
		}
	}
	return r, alpha, nil
}

// scaling is PEFT's scaling: alpha/r, or alpha/√r with rsLoRA.
func (c *Config) scaling(r int, alpha float64) float64 {
	if c.UseRSLoRA {
		return alpha / math.Sqrt(float64(r))
	}
	return alpha / float64(r)
}

// selector is the config's module selection.
func (c *Config) selector() *peft.Selector {
	return &peft.Selector{Targets: c.TargetModules, Exclude: c.ExcludeModules, LayersToTransform: c.LayersToTransform,
		LayersPattern: c.LayersPattern, ModulesToSave: c.ModulesToSave}
}

// object renders the config as the adapter_config.json object PEFT 0.21
// writes: the file it was read from (unknown keys included) or PEFT's
// defaults, with every field lethe knows set from c.
func (c *Config) object() *jsonfile.Object {
	var o *jsonfile.Object
	if c.raw != nil {
		o = c.raw.Clone()
	} else {
		o = defaultObject()
	}
	set := func(k string, v any) { adapterio.Set(o, k, v) }
	set("peft_type", "LORA")
	set("r", c.R)
	set("lora_alpha", adapterio.Number(c.Alpha))
	set("target_modules", c.TargetModules.JSON())
	set("exclude_modules", c.ExcludeModules.JSON())
	switch v, _ := o.Get("layers_to_transform"); {
	case c.LayersToTransform == nil:
		set("layers_to_transform", nil)
	case len(c.LayersToTransform) == 1 && jsonfile.Equal(v, c.LayersToTransform[0]):
		// PEFT also accepts a single int; keep it.
	default:
		set("layers_to_transform", c.LayersToTransform)
	}
	switch len(c.LayersPattern) {
	case 0:
		set("layers_pattern", nil)
	default:
		if v, _ := o.Get("layers_pattern"); len(c.LayersPattern) == 1 {
			if _, isList := v.([]any); !isList {
				set("layers_pattern", c.LayersPattern[0])
				break
			}
		}
		set("layers_pattern", c.LayersPattern)
	}
	set("rank_pattern", patternObject(c.RankPattern, true))
	set("alpha_pattern", patternObject(c.AlphaPattern, false))
	if c.ModulesToSave == nil {
		set("modules_to_save", nil)
	} else {
		set("modules_to_save", c.ModulesToSave)
	}
	set("fan_in_fan_out", c.FanInFanOut)
	set("bias", c.Bias)
	set("lora_dropout", c.Dropout)
	set("use_rslora", c.UseRSLoRA)
	set("use_dora", c.UseDoRA)
	switch c.Init {
	case InitDefault:
		set("init_lora_weights", true)
	case InitRandom:
		set("init_lora_weights", false)
	default:
		set("init_lora_weights", string(c.Init))
	}
	if c.WeightDropout > 0 {
		set(weightDropoutKey, c.WeightDropout)
	} else {
		o.Delete(weightDropoutKey)
	}
	set("task_type", c.TaskType)
	if c.BaseModel == "" {
		set("base_model_name_or_path", nil)
	} else {
		set("base_model_name_or_path", c.BaseModel)
	}
	set("inference_mode", true) // PEFT's save_pretrained writes inference mode
	if _, ok := o.Get("peft_version"); !ok {
		set("peft_version", PEFTVersion)
	}
	return o
}

func patternObject(ps []Pattern, ints bool) *jsonfile.Object {
	o := jsonfile.NewObject()
	for _, p := range ps {
		if ints {
			o.Set(p.Key, int(p.Value))
		} else {
			o.Set(p.Key, adapterio.Number(p.Value))
		}
	}
	return o
}

// JSON renders the config as adapter_config.json (see Adapter.Save).
func (c Config) JSON() ([]byte, error) {
	if err := c.fill(); err != nil {
		return nil, fmt.Errorf("lora: config: %w", err)
	}
	return jsonfile.Encode(c.object())
}

// WriteConfig writes c to dir/adapter_config.json.
func WriteConfig(dir string, c Config) error {
	if err := c.fill(); err != nil {
		return fmt.Errorf("lora: config: %w", err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("lora: %w", err)
	}
	if err := adapterio.WriteConfig(dir, c.object()); err != nil {
		return fmt.Errorf("lora: write %s: %w", dir, err)
	}
	return nil
}

// unionTargets combines target_modules as add_weighted_adapter does: lists
// become their union (in first-seen order), expressions "(a)|(b)".
func unionTargets(ts []peft.Targets) (peft.Targets, error) {
	if len(ts) == 0 {
		return peft.Targets{}, nil
	}
	if ts[0].IsRegex {
		var parts []string
		for _, t := range ts {
			if !t.IsRegex {
				return peft.Targets{}, errors.New("target_modules mix lists and expressions")
			}
			parts = append(parts, "("+t.Regex+")")
		}
		return peft.Regexp(strings.Join(parts, "|")), nil
	}
	var names []string
	for _, t := range ts {
		if t.IsRegex {
			return peft.Targets{}, errors.New("target_modules mix lists and expressions")
		}
		for _, n := range t.Names {
			if !slices.Contains(names, n) {
				names = append(names, n)
			}
		}
	}
	return peft.NameList(names...), nil
}

// sortedKeys returns a map's keys sorted.
func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
