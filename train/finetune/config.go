// Package finetune is lethe's supervised fine-tuning recipe: full
// fine-tuning or a frozen base with PEFT adapters, on the Parquet dataset
// shapes of package data (loss on completions or assistant turns only),
// with the dropout family of package dropout, evaluation, early stopping,
// exact resumption and a run folder of metrics.
//
// `lethe finetune --config configs/X.yaml key=value...` is a thin layer
// over LoadConfig and Run; research code calls them directly.
package finetune

import (
	"errors"
	"fmt"
	"strings"

	"github.com/lethe-ml/lethe/data"
	"github.com/lethe-ml/lethe/internal/config"
	"github.com/lethe-ml/lethe/train"
	"github.com/lethe-ml/lethe/train/dropout"
)

// Config is a fine-tuning recipe. Its YAML keys are the fields' tags; see
// configs/ for commented examples.
type Config struct {
	// Model is the checkpoint to fine-tune.
	Model ModelConfig `yaml:"model" json:"model"`
	// Tokenizer says how text becomes tokens [the model folder's].
	Tokenizer TokenizerConfig `yaml:"tokenizer" json:"tokenizer"`
	// Data are the training and evaluation examples.
	Data DataConfig `yaml:"data" json:"data"`
	// Dropout configures the dropout family (package dropout): rates per
	// site, schedules, multi-sample, LayerDrop, Mixout, token masking,
	// Progressive Data Dropout.
	Dropout dropout.Config `yaml:"dropout" json:"dropout"`
	// PEFT trains adapters on the frozen model instead of every weight
	// [full fine-tuning].
	PEFT PEFTConfig `yaml:"peft" json:"peft"`
	// Optimizer and Schedule drive the updates.
	Optimizer train.OptimizerConfig `yaml:"optimizer" json:"optimizer"`
	Schedule  train.ScheduleConfig  `yaml:"schedule" json:"schedule"`
	// Training is the loop: steps, accumulation, evaluation, checkpoints.
	Training TrainingConfig `yaml:"training" json:"training"`
	// EarlyExit trains with LayerSkip's early-exit loss (the causal-LM
	// loss of every layer's output through the final norm and the shared
	// LM head, weighted), which makes early-exit and self-speculative
	// decoding accept more drafts [off].
	EarlyExit *train.EarlyExitConfig `yaml:"early_exit" json:"early_exit,omitempty"`
	// Output is the run folder and what is written to it.
	Output OutputConfig `yaml:"output" json:"output"`
}

// ModelConfig names the checkpoint and how it runs.
type ModelConfig struct {
	// Path is a Hugging Face checkpoint folder (config.json, safetensors,
	// tokenizer.json).
	Path string `yaml:"path" json:"path"`
	// DType is the compute dtype: float32 [default] or bfloat16. With
	// bfloat16 the trained weights stay float32 (master weights) and are
	// cast for each step.
	DType string `yaml:"dtype" json:"dtype"`
	// Backend is "go[:options]", "xla[:plugin]" or "auto" [$LETHE_BACKEND,
	// else auto]; a bare "go" trains with parallelism=-1 (one op at a time
	// on every core, the fastest for training).
	Backend string `yaml:"backend" json:"backend"`
}

// TokenizerConfig locates the tokenizer and chat template.
type TokenizerConfig struct {
	// Path is a tokenizer.json file or a folder holding one [model.path].
	Path string `yaml:"path" json:"path"`
	// ChatTemplate is a built-in template name (chatml, llama3, mistral)
	// for checkpoints without one [the tokenizer_config.json template].
	ChatTemplate string `yaml:"chat_template" json:"chat_template"`
}

// DataConfig configures the examples.
type DataConfig struct {
	// Train are the training rows.
	Train data.SourceConfig `yaml:"train" json:"train"`
	// Eval are the evaluation rows [none: no evaluation]. A common setup
	// reads the same files as Train with split {fraction: 0.1, part: eval}
	// here and part: train there.
	Eval *data.SourceConfig `yaml:"eval" json:"eval,omitempty"`
	// Tokenize says which tokens carry the loss (completion by default:
	// the completion of prompt/completion rows, the assistant turns of
	// conversations).
	Tokenize data.TokenizeConfig `yaml:"tokenize" json:"tokenize"`
	// Collate is the batch size, maximum length, length buckets, packing.
	Collate data.CollateConfig `yaml:"collate" json:"collate"`
	// Shuffle shuffles the training rows every epoch (seeded by Seed).
	Shuffle bool `yaml:"shuffle" json:"shuffle"`
	// Seed seeds the shuffle and the split [training.seed].
	Seed uint64 `yaml:"seed" json:"seed"`
	// WindowRows is the shuffle window [10000 rows].
	WindowRows int `yaml:"window_rows" json:"window_rows"`
	// EvalBatches caps the number of evaluation batches [0: all].
	EvalBatches int `yaml:"eval_batches" json:"eval_batches"`
}

// TrainingConfig is the loop.
type TrainingConfig struct {
	// Epochs is the number of passes over the training data [1, or, with
	// max_steps, as many as max_steps needs].
	Epochs int `yaml:"epochs" json:"epochs"`
	// MaxSteps stops after this many optimizer steps [0: when the epochs
	// end]; without epochs the data repeat until then, as transformers'
	// max_steps. Setting it also spares the pass that counts the steps of
	// the epochs for the schedule.
	MaxSteps int `yaml:"max_steps" json:"max_steps"`
	// GradAccum is the number of batches per optimizer step [1].
	GradAccum int `yaml:"grad_accum" json:"grad_accum"`
	// Seed seeds dropout masks and, unless data.seed is set, the shuffle.
	Seed int64 `yaml:"seed" json:"seed"`
	// LogEvery prints a progress line every N steps [10].
	LogEvery int `yaml:"log_every" json:"log_every"`
	// EvalAtStart evaluates before the first step (metrics.json's
	// initial_eval), when data.eval is set.
	EvalAtStart bool `yaml:"eval_at_start" json:"eval_at_start"`
	// EvalEvery evaluates every N steps [0: at the end only], when
	// data.eval is set.
	EvalEvery int `yaml:"eval_every" json:"eval_every"`
	// SaveEvery writes a checkpoint every N steps [0: only at the end].
	SaveEvery int `yaml:"save_every" json:"save_every"`
	// KeepCheckpoints is how many recent checkpoints to keep [1].
	KeepCheckpoints int `yaml:"keep_checkpoints" json:"keep_checkpoints"`
	// EarlyStopping stops when the evaluation loss stops improving.
	EarlyStopping EarlyStoppingConfig `yaml:"early_stopping" json:"early_stopping"`
}

// EarlyStoppingConfig stops training when the evaluation loss has not
// improved by MinDelta for Patience evaluations in a row.
type EarlyStoppingConfig struct {
	// Patience is the number of evaluations without improvement that ends
	// the run [0: off].
	Patience int `yaml:"patience" json:"patience"`
	// MinDelta is the smallest decrease of the loss that counts.
	MinDelta float64 `yaml:"min_delta" json:"min_delta"`
}

// OutputConfig is the run folder.
type OutputConfig struct {
	// Dir is the run folder: config.yaml, metrics.jsonl, metrics.json,
	// checkpoints/, and the result (model/ or adapter/).
	Dir string `yaml:"dir" json:"dir"`
	// Overwrite lets a new run replace a run folder that has metrics
	// [false: refuse, so a finished run is not lost; use --resume to
	// continue one].
	Overwrite bool `yaml:"overwrite" json:"overwrite"`
	// SaveModel writes the fine-tuned model (full fine-tuning) or the
	// merged model (adapters) to model/ at the end [true for full
	// fine-tuning, false for adapters].
	SaveModel *bool `yaml:"save_model" json:"save_model,omitempty"`
}

// LoadConfig reads a recipe file, applies key=value overrides and
// validates the result.
func LoadConfig(path string, overrides []string) (Config, error) {
	var c Config
	if err := config.LoadValid(path, overrides, &c); err != nil {
		return Config{}, err
	}
	return c, nil
}

// Validate fills defaults and checks c, reporting every problem with the
// key it concerns.
func (c *Config) Validate() error {
	var errs []error
	add := func(err error, prefix string) {
		if err != nil {
			for _, e := range unjoin(err) {
				errs = append(errs, fmt.Errorf("%s%w", prefix, e))
			}
		}
	}
	if c.Model.Path == "" {
		errs = append(errs, errors.New("model.path: required"))
	}
	switch strings.ToLower(c.Model.DType) {
	case "", "float32", "f32", "fp32", "bfloat16", "bf16":
	default:
		errs = append(errs, fmt.Errorf("model.dtype: %q is not one of float32, bfloat16", c.Model.DType))
	}
	if c.Tokenizer.Path == "" {
		c.Tokenizer.Path = c.Model.Path
	}
	addSource := func(err error, key string) {
		for _, e := range unjoin(err) {
			if e != nil {
				msg, _ := strings.CutPrefix(e.Error(), "source.")
				errs = append(errs, fmt.Errorf("data.%s.%s", key, msg))
			}
		}
	}
	if err := c.Data.Train.Validate(); err != nil {
		addSource(err, "train")
	}
	if c.Data.Eval != nil {
		if err := c.Data.Eval.Validate(); err != nil {
			addSource(err, "eval")
		}
	}
	add(c.Data.Tokenize.Validate(), "data.")
	add(c.Data.Collate.Validate(), "data.")
	if c.Data.EvalBatches < 0 {
		errs = append(errs, fmt.Errorf("data.eval_batches: must be >= 0, got %d", c.Data.EvalBatches))
	}
	add(c.Dropout.Validate(), "")
	add(c.PEFT.validate(c.Dropout.LoRA), "")
	add(c.Optimizer.Validate(), "")
	add(c.Schedule.Validate(), "")
	t := &c.Training
	if t.Epochs == 0 && t.MaxSteps == 0 {
		t.Epochs = 1
	}
	if t.GradAccum == 0 {
		t.GradAccum = 1
	}
	if t.LogEvery == 0 {
		t.LogEvery = 10
	}
	if t.KeepCheckpoints == 0 {
		t.KeepCheckpoints = 1
	}
	for _, f := range []struct {
		name string
		v    int
	}{{"epochs", t.Epochs}, {"max_steps", t.MaxSteps}, {"grad_accum", t.GradAccum}, {"log_every", t.LogEvery},
		{"eval_every", t.EvalEvery}, {"save_every", t.SaveEvery}, {"keep_checkpoints", t.KeepCheckpoints},
		{"early_stopping.patience", t.EarlyStopping.Patience}} {
		if f.v < 0 {
			errs = append(errs, fmt.Errorf("training.%s: must be >= 0, got %d", f.name, f.v))
		}
	}
	if t.EarlyStopping.MinDelta < 0 {
		errs = append(errs, fmt.Errorf("training.early_stopping.min_delta: must be >= 0, got %g", t.EarlyStopping.MinDelta))
	}
	if t.EarlyStopping.Patience > 0 && c.Data.Eval == nil {
		errs = append(errs, errors.New("training.early_stopping: needs data.eval to measure the evaluation loss"))
	}
	if t.EarlyStopping.Patience > 0 && t.EvalEvery == 0 {
		errs = append(errs, errors.New("training.early_stopping: needs training.eval_every > 0"))
	}
	if c.Data.Seed == 0 && t.Seed != 0 {
		c.Data.Seed = uint64(t.Seed)
	}
	if c.Dropout.Progressive.Enabled && t.Epochs == 0 {
		errs = append(errs, errors.New("dropout.progressive: works epoch by epoch; set training.epochs"))
	}
	if c.PEFT.Method == "moe" && c.Output.SaveModel != nil && *c.Output.SaveModel {
		errs = append(errs, errors.New("output.save_model: a mixture of LoRA experts (peft.method moe) routes by input and cannot be merged into a model"))
	}
	if c.Output.Dir == "" {
		errs = append(errs, errors.New("output.dir: required (the run folder)"))
	}
	return errors.Join(errs...)
}

// unjoin splits an errors.Join error into its parts.
func unjoin(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}
