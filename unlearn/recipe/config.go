// Package recipe is lethe's unlearning recipe behind `lethe unlearn`,
// `lethe eval` and `lethe quickstart`: load a model (and the retain-only
// reference it is compared with), evaluate it on the forget, retain and
// holdout splits of a benchmark, run an unlearning method on full weights
// or through a LoRA adapter, evaluate again, and write a run folder whose
// metrics.json holds the before and after numbers.
package recipe

import (
	"errors"
	"fmt"
	"strings"

	"github.com/lethe-ml/lethe/internal/config"
	"github.com/lethe-ml/lethe/train"
	"github.com/lethe-ml/lethe/train/finetune"
	"github.com/lethe-ml/lethe/unlearn"
)

// Config is an unlearning recipe; its YAML keys are the fields' tags.
type Config struct {
	// Model is the model to unlearn (trained on forget and retain data).
	Model finetune.ModelConfig `yaml:"model" json:"model"`
	// Reference is the model trained on the retain data only, the target
	// of unlearning: forget quality compares the unlearned model's truth
	// ratios on the forget split with its own ("" leaves it out).
	Reference string `yaml:"reference" json:"reference,omitempty"`
	// Data is the benchmark.
	Data DataConfig `yaml:"data" json:"data"`
	// Method is the objective (package unlearn).
	Method unlearn.MethodConfig `yaml:"method" json:"method"`
	// PEFT unlearns through a LoRA adapter instead of the full weights
	// (method lora only here); its reference is the base with the adapter
	// off.
	PEFT finetune.PEFTConfig `yaml:"peft" json:"peft"`
	// Optimizer and Schedule drive the updates.
	Optimizer train.OptimizerConfig `yaml:"optimizer" json:"optimizer"`
	Schedule  train.ScheduleConfig  `yaml:"schedule" json:"schedule"`
	// Training is the loop.
	Training TrainingConfig `yaml:"training" json:"training"`
	// Eval configures the evaluations.
	Eval EvalConfig `yaml:"eval" json:"eval"`
	// Output is the run folder.
	Output OutputConfig `yaml:"output" json:"output"`
}

// DataConfig locates the benchmark: a Parquet file in the facts format
// (package facts: question, answer, paraphrased_answer, perturbed_answers,
// split, and prompt/completion columns).
type DataConfig struct {
	// File is the benchmark file ["" = lethe's built-in facts benchmark].
	File string `yaml:"file" json:"file,omitempty"`
	// Refusals are the alternate answers of dpo (IdkDPO), cycled over the
	// forget examples [unlearn.Refusals].
	Refusals []string `yaml:"refusals" json:"refusals,omitempty"`
	// Limit keeps the first Limit examples of each split [0: all] (smoke
	// runs).
	Limit int `yaml:"limit" json:"limit,omitempty"`
	// TOFU reads TOFU's files instead of File (package tofu).
	TOFU *TOFUConfig `yaml:"tofu" json:"tofu,omitempty"`
	// MUSE unlearns MUSE's raw forget corpus and runs its evaluations
	// instead of a question/answer benchmark.
	MUSE *MUSEConfig `yaml:"muse" json:"muse,omitempty"`
	// Template renders questions and answers: "qa" ("Q: question\nA:" and
	// " answer\n", the facts benchmark's format; generation stops at the
	// newline) or "chat" (the model's chat template with the question as
	// the user's message, the answer followed by the EOS token, generation
	// stopping at EOS) [qa; chat with tofu].
	Template string `yaml:"template" json:"template,omitempty"`
}

// TOFUConfig locates TOFU: a folder of its subsets and the forget subset.
type TOFUConfig struct {
	Dir string `yaml:"dir" json:"dir"`
	// Forget is forget01, forget05 or forget10 [forget10].
	Forget string `yaml:"forget" json:"forget"`
}

// TrainingConfig is the unlearning loop.
type TrainingConfig struct {
	// Steps is the number of optimizer steps [60].
	Steps int `yaml:"steps" json:"steps"`
	// ForgetBatch and RetainBatch are the rows of each part per step [16].
	ForgetBatch int `yaml:"forget_batch" json:"forget_batch"`
	RetainBatch int `yaml:"retain_batch" json:"retain_batch"`
	// MaxLength pads every row to this many tokens [64].
	MaxLength int `yaml:"max_length" json:"max_length"`
	// Seed orders the data and seeds RMU's direction and dropout [1].
	Seed int64 `yaml:"seed" json:"seed"`
	// LogEvery prints progress every this many steps [10].
	LogEvery int `yaml:"log_every" json:"log_every"`
}

// EvalConfig configures the evaluations.
type EvalConfig struct {
	// MaxNewTokens bounds the greedy answers [16].
	MaxNewTokens int `yaml:"max_new_tokens" json:"max_new_tokens"`
	// Bootstrap is the number of bootstrap resamples of the confidence
	// intervals [1000; 0 = none]; Confidence their level [0.95].
	Bootstrap  *int    `yaml:"bootstrap" json:"bootstrap,omitempty"`
	Confidence float64 `yaml:"confidence" json:"confidence"`
	// BatchSize is the prompts per forward pass [64].
	BatchSize int `yaml:"batch_size" json:"batch_size"`
	// Multiplicity measures predictive multiplicity over dropout samples
	// of the model before and after unlearning [off].
	Multiplicity MultiplicityConfig `yaml:"multiplicity" json:"multiplicity,omitempty"`
}

// MultiplicityConfig samples models with dropout (eval.DropoutMultiplicity).
type MultiplicityConfig struct {
	// Samples is the number of dropout samples [0: off]; Rate the dropout
	// rate on every residual branch [0.1].
	Samples int     `yaml:"samples" json:"samples,omitempty"`
	Rate    float64 `yaml:"rate" json:"rate,omitempty"`
}

// OutputConfig is the run folder.
type OutputConfig struct {
	// Dir receives config.yaml, metrics.json, metrics.jsonl and, with
	// SaveModel, model/ (or adapter/).
	Dir string `yaml:"dir" json:"dir"`
	// Overwrite replaces an existing run folder.
	Overwrite bool `yaml:"overwrite" json:"overwrite"`
	// SaveModel writes the unlearned model (or adapter).
	SaveModel bool `yaml:"save_model" json:"save_model"`
}

// LoadConfig reads a recipe, applies key=value overrides and validates.
func LoadConfig(path string, overrides []string) (Config, error) {
	var c Config
	if err := config.LoadValid(path, overrides, &c); err != nil {
		return Config{}, err
	}
	return c, nil
}

// Validate fills defaults and checks c, naming the key of every problem.
func (c *Config) Validate() error {
	var errs []error
	if c.Model.Path == "" {
		errs = append(errs, errors.New("model.path: required"))
	}
	if c.Method.Name == "" {
		errs = append(errs, fmt.Errorf("method.name: required, one of %s", strings.Join(unlearn.Methods(), ", ")))
	} else if _, err := unlearn.NewMethod(c.Method, 1, 1, 1); err != nil && !strings.Contains(err.Error(), "method.layer") {
		errs = append(errs, err)
	}
	c.PEFT.Method = strings.ToLower(c.PEFT.Method)
	if m := c.PEFT.Method; m != "" && m != "none" && m != "lora" {
		errs = append(errs, fmt.Errorf("peft.method: unlearning supports lora adapters, got %q", c.PEFT.Method))
	}
	t := &c.Training
	def := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	def(&t.Steps, 60)
	def(&t.ForgetBatch, 16)
	def(&t.RetainBatch, 16)
	def(&t.MaxLength, 64)
	def(&t.LogEvery, 10)
	if t.Seed == 0 {
		t.Seed = 1
	}
	for _, f := range []struct {
		key string
		v   int
	}{{"steps", t.Steps}, {"forget_batch", t.ForgetBatch}, {"retain_batch", t.RetainBatch}, {"max_length", t.MaxLength}, {"log_every", t.LogEvery}} {
		if f.v < 1 {
			errs = append(errs, fmt.Errorf("training.%s: must be positive, got %d", f.key, f.v))
		}
	}
	if c.Optimizer.LR == 0 {
		c.Optimizer.LR = 1e-4
	}
	if err := c.Optimizer.Validate(); err != nil {
		errs = append(errs, err)
	}
	if err := c.Schedule.Validate(); err != nil {
		errs = append(errs, err)
	}
	e := &c.Eval
	def(&e.MaxNewTokens, 16)
	def(&e.BatchSize, 64)
	if e.Bootstrap == nil {
		n := 1000
		e.Bootstrap = &n
	}
	if e.Confidence == 0 {
		e.Confidence = 0.95
	}
	if *e.Bootstrap < 0 || e.Confidence <= 0 || e.Confidence >= 1 {
		errs = append(errs, fmt.Errorf("eval: bootstrap must be >= 0 and confidence in (0, 1), got %d and %g", *e.Bootstrap, e.Confidence))
	}
	if t := c.Data.TOFU; t != nil {
		if t.Forget == "" {
			t.Forget = "forget10"
		}
		if t.Dir == "" {
			errs = append(errs, errors.New("data.tofu.dir: required"))
		}
		if c.Data.File != "" {
			errs = append(errs, errors.New("data.file and data.tofu: give one"))
		}
		if c.Data.Template == "" {
			c.Data.Template = "chat"
		}
	}
	if mc := c.Data.MUSE; mc != nil {
		if mc.Dir == "" {
			errs = append(errs, errors.New("data.muse.dir: required"))
		}
		if c.Data.File != "" || c.Data.TOFU != nil {
			errs = append(errs, errors.New("data.muse: give one of data.file, data.tofu and data.muse"))
		}
		if mc.Forget == "" {
			mc.Forget = "forget"
		}
		if mc.Retain == "" {
			mc.Retain = "retain1"
		}
		if mc.VerbMemTokens < 0 || mc.KnowMemTokens < 0 {
			errs = append(errs, fmt.Errorf("data.muse: verbmem_tokens and knowmem_tokens must be >= 0"))
		}
		if err := museMethodError(c); err != nil {
			errs = append(errs, err)
		}
	}
	switch c.Data.Template {
	case "":
		c.Data.Template = "qa"
	case "qa", "chat":
	default:
		errs = append(errs, fmt.Errorf("data.template: %q is not qa or chat", c.Data.Template))
	}
	if c.Data.Limit < 0 {
		errs = append(errs, fmt.Errorf("data.limit: must be >= 0, got %d", c.Data.Limit))
	}
	if mc := &c.Eval.Multiplicity; mc.Samples > 0 && mc.Rate == 0 {
		mc.Rate = 0.1
	}
	if mc := c.Eval.Multiplicity; mc.Samples < 0 || mc.Rate < 0 || mc.Rate >= 1 {
		errs = append(errs, fmt.Errorf("eval.multiplicity: samples must be >= 0 and rate in [0, 1), got %d and %g", mc.Samples, mc.Rate))
	}
	if c.Output.Dir == "" {
		errs = append(errs, errors.New("output.dir: required (the run folder)"))
	}
	return errors.Join(errs...)
}
