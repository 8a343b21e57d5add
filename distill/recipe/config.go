// Package recipe is lethe's knowledge-distillation recipe behind `lethe
// distill`: a student fine-tuned (package finetune: its data, adapters,
// dropout, checkpoints and resumption) on (1−λ)·CE + λ·KD against one or
// more frozen teachers that run in the same graphs, or against an offline
// cache of a teacher's top-k log-probabilities (package distill/topk). It
// adds on-policy distillation (GKD: the student generates the completion
// of a fraction of the batches), sequence-level KD (train on the teacher's
// greedy completions) and noisy-student training (sequence-level KD with
// dropout in the student), and measures the student-teacher KL on held-out
// data before and after.
package recipe

import (
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"

	"github.com/lethe-ml/lethe/distill"
	"github.com/lethe-ml/lethe/internal/config"
	"github.com/lethe-ml/lethe/train/finetune"
)

// Config is a distillation recipe. The student's keys are finetune's
// (model, tokenizer, data, dropout, peft, optimizer, schedule, training,
// output), inline; the others say what it learns from.
type Config struct {
	finetune.Config `yaml:",inline"`
	// Teacher is the teacher; Teachers, instead, several (UNIC-style
	// weighted mixture). Teachers share the student's tokenizer.
	Teacher  *TeacherConfig  `yaml:"teacher" json:"teacher,omitempty"`
	Teachers []TeacherConfig `yaml:"teachers" json:"teachers,omitempty"`
	// Loss is the distillation loss and its weight against CE.
	Loss LossConfig `yaml:"loss" json:"loss"`
	// Hints adds hidden-state losses (FitNets, V_kD) through learned
	// projections [none].
	Hints *HintsConfig `yaml:"hints" json:"hints,omitempty"`
	// Mode is how the training sequences are made [offline data].
	Mode ModeConfig `yaml:"mode" json:"mode"`
	// Student, when set, makes a new student from the first teacher's
	// configuration with this shape and random weights, in
	// output.dir/student_init (model.path then defaults to it).
	Student *StudentConfig `yaml:"student" json:"student,omitempty"`
}

// StudentConfig is the shape of a student made from the teacher's
// configuration (InitStudent); zero fields keep the teacher's.
type StudentConfig struct {
	Layers       int    `yaml:"layers" json:"layers,omitempty"`
	Hidden       int    `yaml:"hidden" json:"hidden,omitempty"`
	Intermediate int    `yaml:"intermediate" json:"intermediate,omitempty"`
	Heads        int    `yaml:"heads" json:"heads,omitempty"`
	KVHeads      int    `yaml:"kv_heads" json:"kv_heads,omitempty"`
	Seed         uint64 `yaml:"seed" json:"seed,omitempty"`
}

// StudentInitDir is the folder of a student made by the recipe.
const StudentInitDir = "student_init"

// TeacherConfig is one teacher.
type TeacherConfig struct {
	// Path is the teacher's checkpoint folder.
	Path string `yaml:"path" json:"path"`
	// DType is its compute dtype: float32 [default] or bfloat16 (half the
	// activations; the teacher gets no gradients either way).
	DType string `yaml:"dtype" json:"dtype,omitempty"`
	// Weight is its weight in a mixture of teachers [1].
	Weight float64 `yaml:"weight" json:"weight,omitempty"`
	// Cache is a file of the teacher's top-k log-probabilities written by
	// `lethe distill cache-teacher` over the training (and evaluation)
	// data: training reads it instead of running the teacher.
	Cache string `yaml:"cache" json:"cache,omitempty"`
}

// LossConfig is the objective (1−λ)·CE + λ·(KD + hints).
type LossConfig struct {
	// Name is the logit loss: forward_kl (Hinton, T²-scaled) [default],
	// reverse_kl, symmetric_kl, jsd (GKD's generalized JSD), skew_forward_kl,
	// skew_reverse_kl (DistiLLM), tvd, hinge_rank, logistic_rank, pld.
	Name string `yaml:"name" json:"name"`
	// Temperature softens both distributions [1].
	Temperature float64 `yaml:"temperature" json:"temperature"`
	// Lambda is the weight of the distillation terms [0.5]: 0 is plain
	// fine-tuning (sequence-level KD), 1 pure distillation.
	Lambda *float64 `yaml:"lambda" json:"lambda"`
	// Beta is jsd's interpolation (0 forward KL, 1 reverse KL) [0.5].
	Beta *float64 `yaml:"beta" json:"beta,omitempty"`
	// Alpha is the skew of skew_*_kl [0.1].
	Alpha float64 `yaml:"alpha" json:"alpha,omitempty"`
	// Margin is hinge_rank's margin [1].
	Margin float64 `yaml:"margin" json:"margin,omitempty"`
	// TopK is the number of a live teacher's most likely tokens that the
	// ranking losses order and PLD lists after the gold token [16]. PLD
	// over a top-k list is exactly PLD against the teacher truncated to
	// its top k; k = vocabulary gives full PLD (k² memory per token).
	TopK int `yaml:"top_k" json:"top_k,omitempty"`
	// TeacherDrop is UNIC's teacher dropping with several teachers: at
	// every step each teacher's term but the worst-matched one is dropped
	// with this probability [0].
	TeacherDrop float64 `yaml:"teacher_drop" json:"teacher_drop,omitempty"`
	// Tail is how a top-k teacher's missing mass is handled (cached
	// teachers): see distill.TailMode [DistillKit's default].
	Tail string `yaml:"tail" json:"tail,omitempty"`
}

// HintsConfig configures hidden-state hints (package distill/hints).
type HintsConfig struct {
	// Kind is fitnets or vkd; Loss mse or cosine (fitnets).
	Kind string `yaml:"kind" json:"kind"`
	Loss string `yaml:"loss" json:"loss,omitempty"`
	// Weight multiplies the hint loss inside the KD term [1].
	Weight float64 `yaml:"weight" json:"weight,omitempty"`
	// Pairs maps student hidden-state indices (0 = embeddings) to the
	// teacher's, e.g. [[1, 2], [2, 4]] [uniform over the depth:
	// hints.Map].
	Pairs [][2]int `yaml:"pairs" json:"pairs,omitempty"`
	// Normalize is vkd's teacher normalisation: standardize [default] or
	// none.
	Normalize string `yaml:"normalize" json:"normalize,omitempty"`
}

// ModeConfig says where the training sequences come from.
type ModeConfig struct {
	// OnPolicy is GKD's λ: the fraction of batches whose completions the
	// student generates from their prompts (sampling at GenTemperature)
	// before the step [0].
	OnPolicy float64 `yaml:"on_policy" json:"on_policy,omitempty"`
	// SequenceKD trains on the first teacher's greedy completions of the
	// prompts instead of the data's (Kim & Rush 2016).
	SequenceKD bool `yaml:"sequence_kd" json:"sequence_kd,omitempty"`
	// NoisyStudent is sequence-level KD on teacher pseudo-labels with the
	// student noised by dropout (Xie et al. 2020): it needs dropout rates
	// in the dropout section.
	NoisyStudent bool `yaml:"noisy_student" json:"noisy_student,omitempty"`
	// Rounds is Noisy Student's number of iterations [1]: from the second
	// on, the previous round's student is the teacher and a new student
	// is trained (made afresh from student:, or from model.path again).
	Rounds int `yaml:"rounds" json:"rounds,omitempty"`
	// MaxNewTokens bounds generated completions [64];
	// GenTemperature is the student's sampling temperature [1].
	MaxNewTokens   int     `yaml:"max_new_tokens" json:"max_new_tokens,omitempty"`
	GenTemperature float64 `yaml:"gen_temperature" json:"gen_temperature,omitempty"`
}

// Losses lists the names LossConfig.Name accepts.
var Losses = []string{"forward_kl", "reverse_kl", "symmetric_kl", "jsd", "skew_forward_kl", "skew_reverse_kl", "tvd", "hinge_rank", "logistic_rank", "pld"}

// LoadConfig reads a recipe, applies key=value overrides and validates.
func LoadConfig(path string, overrides []string) (Config, error) {
	var c Config
	if err := config.LoadValid(path, overrides, &c); err != nil {
		return Config{}, err
	}
	return c, nil
}

// TeacherList returns the teachers: Teacher or Teachers.
func (c *Config) TeacherList() []TeacherConfig {
	if c.Teacher != nil {
		return []TeacherConfig{*c.Teacher}
	}
	return c.Teachers
}

// Validate fills defaults and checks c, naming the key of every problem.
func (c *Config) Validate() error {
	var errs []error
	if c.Student != nil && c.Model.Path == "" {
		c.Model.Path = filepath.Join(c.Output.Dir, StudentInitDir)
	}
	if err := c.Config.Validate(); err != nil {
		errs = append(errs, err)
	}
	switch {
	case c.Teacher == nil && len(c.Teachers) == 0:
		errs = append(errs, errors.New("teacher.path: required (or teachers: [...])"))
	case c.Teacher != nil && len(c.Teachers) > 0:
		errs = append(errs, errors.New("teacher and teachers: give one"))
	}
	key := func(i int) string {
		if c.Teacher != nil {
			return "teacher"
		}
		return fmt.Sprintf("teachers[%d]", i)
	}
	ts := c.Teachers
	if c.Teacher != nil {
		ts = []TeacherConfig{*c.Teacher}
	}
	cached := 0
	for i := range ts {
		t := &ts[i]
		if t.Path == "" && t.Cache == "" {
			errs = append(errs, fmt.Errorf("%s.path: required", key(i)))
		}
		if t.Weight == 0 {
			t.Weight = 1
		}
		if t.Weight < 0 {
			errs = append(errs, fmt.Errorf("%s.weight: must be positive, got %g", key(i), t.Weight))
		}
		if d := strings.ToLower(t.DType); d != "" && d != "float32" && d != "bfloat16" && d != "bf16" {
			errs = append(errs, fmt.Errorf("%s.dtype: float32 or bfloat16, got %q", key(i), t.DType))
		}
		if t.Cache != "" {
			cached++
		}
	}
	if c.Teacher != nil {
		*c.Teacher = ts[0]
	}
	l := &c.Loss
	if l.Name == "" {
		l.Name = "forward_kl"
	}
	if !slices.Contains(Losses, l.Name) {
		errs = append(errs, fmt.Errorf("loss.name: %q is not one of %s", l.Name, strings.Join(Losses, ", ")))
	}
	if l.Temperature == 0 {
		l.Temperature = 1
	}
	if l.Temperature < 0 {
		errs = append(errs, fmt.Errorf("loss.temperature: must be positive, got %g", l.Temperature))
	}
	if l.Lambda == nil {
		v := 0.5
		l.Lambda = &v
	}
	if *l.Lambda < 0 || *l.Lambda > 1 {
		errs = append(errs, fmt.Errorf("loss.lambda: must be in [0, 1], got %g", *l.Lambda))
	}
	if l.Beta == nil {
		v := 0.5
		l.Beta = &v
	}
	if *l.Beta < 0 || *l.Beta > 1 {
		errs = append(errs, fmt.Errorf("loss.beta: must be in [0, 1], got %g", *l.Beta))
	}
	if l.Alpha == 0 {
		l.Alpha = 0.1
	}
	if l.Alpha < 0 || l.Alpha >= 1 {
		errs = append(errs, fmt.Errorf("loss.alpha: must be in [0, 1), got %g", l.Alpha))
	}
	if l.Margin == 0 {
		l.Margin = 1
	}
	if l.TeacherDrop < 0 || l.TeacherDrop >= 1 {
		errs = append(errs, fmt.Errorf("loss.teacher_drop: must be in [0, 1), got %g", l.TeacherDrop))
	}
	if l.TopK == 0 {
		l.TopK = 16
	}
	if l.TopK < 1 {
		errs = append(errs, fmt.Errorf("loss.top_k: must be positive, got %d", l.TopK))
	}
	if _, err := tailMode(l.Tail); err != nil {
		errs = append(errs, fmt.Errorf("loss.tail: %w", err))
	}
	if cached > 0 {
		switch l.Name {
		case "forward_kl", "hinge_rank", "logistic_rank", "pld":
		default:
			errs = append(errs, fmt.Errorf("loss.name: %s needs the full teacher distribution; a cached (top-k) teacher supports forward_kl, hinge_rank, logistic_rank and pld", l.Name))
		}
		if c.Hints != nil {
			errs = append(errs, errors.New("hints: need the teacher's hidden states; a cached teacher has only its top-k log-probabilities"))
		}
		if c.Mode.OnPolicy > 0 || c.Mode.SequenceKD || c.Mode.NoisyStudent {
			errs = append(errs, errors.New("mode: on-policy and sequence-level distillation make new sequences, which a cached teacher has not seen"))
		}
	}
	if h := c.Hints; h != nil {
		if h.Kind == "" {
			h.Kind = "fitnets"
		}
		if h.Kind != "fitnets" && h.Kind != "vkd" {
			errs = append(errs, fmt.Errorf("hints.kind: fitnets or vkd, got %q", h.Kind))
		}
		if h.Loss == "" {
			h.Loss = "mse"
		}
		if h.Loss != "mse" && h.Loss != "cosine" {
			errs = append(errs, fmt.Errorf("hints.loss: mse or cosine, got %q", h.Loss))
		}
		if h.Weight == 0 {
			h.Weight = 1
		}
		if h.Normalize == "" {
			h.Normalize = "standardize"
		}
	}
	m := &c.Mode
	if m.OnPolicy < 0 || m.OnPolicy > 1 {
		errs = append(errs, fmt.Errorf("mode.on_policy: must be in [0, 1], got %g", m.OnPolicy))
	}
	if m.MaxNewTokens == 0 {
		m.MaxNewTokens = 64
	}
	if m.GenTemperature == 0 {
		m.GenTemperature = 1
	}
	if m.MaxNewTokens < 0 || m.GenTemperature < 0 {
		errs = append(errs, fmt.Errorf("mode: max_new_tokens and gen_temperature must be positive"))
	}
	if m.Rounds < 0 || m.Rounds > 1 && !m.NoisyStudent {
		errs = append(errs, fmt.Errorf("mode.rounds: iterations are Noisy Student's (mode.noisy_student: true), got %d", m.Rounds))
	}
	if m.NoisyStudent {
		m.SequenceKD = true
		if d := c.Dropout; d.Attention == 0 && d.Residual == 0 && d.Embeddings == 0 && d.Penultimate == 0 && d.LoRA == 0 {
			errs = append(errs, errors.New("mode.noisy_student: the student needs noise: set dropout rates (e.g. dropout.residual: 0.1)"))
		}
	}
	if (m.OnPolicy > 0 || m.SequenceKD) && c.Data.Collate.Packing {
		errs = append(errs, errors.New("mode: on-policy and sequence-level distillation rewrite completions row by row; set data.collate.packing: false"))
	}
	if st := c.Student; st != nil {
		if len(ts) == 0 || ts[0].Path == "" {
			errs = append(errs, errors.New("student: made from the first teacher's configuration, which needs teacher.path"))
		}
		if st.Layers < 0 || st.Hidden < 0 || st.Intermediate < 0 || st.Heads < 0 || st.KVHeads < 0 {
			errs = append(errs, errors.New("student: sizes must be positive"))
		}
	}
	if c.Data.Eval == nil {
		errs = append(errs, errors.New("data.eval: required: the student-teacher KL is measured on held-out data (kl_before, kl_after)"))
	}
	return errors.Join(errs...)
}

// tailMode parses loss.tail.
func tailMode(name string) (distill.TailMode, error) { return distill.ParseTailMode(name) }
