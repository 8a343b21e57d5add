package dropout

import (
	"errors"
	"fmt"
	"math"
	"slices"
)

// Config is the `dropout:` block of a recipe. Every rate is a probability
// of dropping (masking, mixing) a unit; 0 turns its variant off and costs
// nothing in the graph.
type Config struct {
	// Attention drops attention probabilities [B, K, G, T, S] (inverted
	// dropout: kept ones are scaled by 1/(1-p)), as transformers'
	// attention_dropout.
	Attention float64 `yaml:"attention,omitempty" json:"attention,omitempty"`
	// Residual drops each layer's attention and MLP outputs before they are
	// added to the residual stream (GPT-2's resid_pdrop).
	Residual float64 `yaml:"residual,omitempty" json:"residual,omitempty"`
	// Embeddings drops the input embeddings (GPT-2's embd_pdrop).
	Embeddings float64 `yaml:"embeddings,omitempty" json:"embeddings,omitempty"`
	// LoRA is the dropout of the LoRA input (PEFT's lora_dropout). The peft
	// package applies it (lora.Config.Dropout, not scheduled); this package
	// only validates and carries it: see Regularizer.LoRADropout.
	LoRA float64 `yaml:"lora,omitempty" json:"lora,omitempty"`
	// Penultimate drops the final hidden states before the LM head. Zhang &
	// Bottou (2024) fine-tune with very large rates here (0.9).
	Penultimate float64 `yaml:"penultimate,omitempty" json:"penultimate,omitempty"`
	// HeadSamples > 1 is multi-sample dropout (Inoue 2019): the head runs
	// on that many independent Penultimate masks and the loss is the mean
	// of their losses. Needs Penultimate > 0.
	HeadSamples int `yaml:"head_samples,omitempty" json:"head_samples,omitempty"`
	// LayerDrop drops whole layers in training and prunes them at
	// inference.
	LayerDrop LayerDropConfig `yaml:"layer_drop,omitempty" json:"layer_drop,omitempty"`
	// Mixout mixes weights with their pretrained values.
	Mixout MixoutConfig `yaml:"mixout,omitempty" json:"mixout,omitempty"`
	// TLM masks attention connections of random tokens, per layer.
	TLM TLMConfig `yaml:"tlm,omitempty" json:"tlm,omitempty"`
	// Schedule changes every rate above (not the data transforms below)
	// with the training step.
	Schedule ScheduleConfig `yaml:"schedule,omitempty" json:"schedule,omitempty"`
	// TokenMask masks input tokens of the batch (host side).
	TokenMask TokenMaskConfig `yaml:"token_mask,omitempty" json:"token_mask,omitempty"`
	// MaskedThought masks input tokens of the completion only (host side).
	MaskedThought MaskedThoughtConfig `yaml:"masked_thought,omitempty" json:"masked_thought,omitempty"`
	// Progressive drops the training examples the model already gets right
	// (host side: see NewProgressive, Scorer).
	Progressive ProgressiveConfig `yaml:"progressive,omitempty" json:"progressive,omitempty"`
}

// LayerDropConfig configures LayerDrop (Fan, Grave & Joulin 2019).
type LayerDropConfig struct {
	// Rate is the probability that a layer is skipped (its output replaced
	// by its input) in a training step; one draw per layer per batch.
	Rate float64 `yaml:"rate,omitempty" json:"rate,omitempty"`
	// Keep lists the layers (0-based, ascending) an inference-time pruned
	// model runs (Regularizer.InferenceHooks, PrunedModel).
	Keep []int `yaml:"keep,omitempty" json:"keep,omitempty"`
	// PruneRate prunes at inference with the paper's "every other"
	// strategy instead: see EveryOther. Excludes Keep.
	PruneRate float64 `yaml:"prune_rate,omitempty" json:"prune_rate,omitempty"`
}

// MixoutConfig configures Mixout (Lee, Cho & Kang 2020).
type MixoutConfig struct {
	// Rate is the probability that a weight entry is replaced by its
	// pretrained value (then rescaled so the expectation is the current
	// weight). 1 gives the pretrained weights.
	Rate float64 `yaml:"rate,omitempty" json:"rate,omitempty"`
	// Targets restricts Mixout to the weights whose Hugging Face name
	// contains one of these strings ("q_proj", "mlp."); empty means every
	// projection weight, the LM head included (token embeddings are a
	// lookup, not a projection: they are mixed only as a tied LM head).
	Targets []string `yaml:"targets,omitempty" json:"targets,omitempty"`
}

// TLM modes (TLMConfig.Mode).
const (
	// TLMBoth picks siblings- or self-masking at random for each masked
	// token (the paper's default).
	TLMBoth = "both"
	// TLMSiblings: a masked token attends only to itself.
	TLMSiblings = "siblings"
	// TLMSelf: a masked token attends to the others but not to itself.
	TLMSelf = "self"
)

// TLMConfig configures Token-Level Masking (Wu et al. 2023).
type TLMConfig struct {
	// Rate is the probability that a token is masked in a layer (drawn
	// anew for every layer). Other tokens no longer attend to a masked
	// token; the masked token's own attention follows Mode.
	Rate float64 `yaml:"rate,omitempty" json:"rate,omitempty"`
	// Mode is "both" (default), "siblings" or "self".
	Mode string `yaml:"mode,omitempty" json:"mode,omitempty"`
}

// mode returns Mode with its default.
func (c TLMConfig) mode() string {
	if c.Mode == "" {
		return TLMBoth
	}
	return c.Mode
}

// Token mask modes (TokenMaskConfig.Mode).
const (
	// MaskReplace replaces a masked token's input id by MaskID.
	MaskReplace = "replace"
	// MaskAttention hides a masked token from attention (AttentionMask 0):
	// no query attends to it, its input id is kept.
	MaskAttention = "attention"
)

// TokenMaskConfig configures token masking of the input (host side): a
// token-level dropout of the input sequence.
type TokenMaskConfig struct {
	// Rate is the probability that a token is masked. Labels never change,
	// padding and the first token of every example are never masked.
	Rate float64 `yaml:"rate,omitempty" json:"rate,omitempty"`
	// MaskID is the id that replaces masked tokens (a [mask] token, or the
	// pad token).
	MaskID int `yaml:"mask_id,omitempty" json:"mask_id,omitempty"`
	// Mode is "replace" (default) or "attention".
	Mode string `yaml:"mode,omitempty" json:"mode,omitempty"`
}

// mode returns Mode with its default.
func (c TokenMaskConfig) mode() string {
	if c.Mode == "" {
		return MaskReplace
	}
	return c.Mode
}

// MaskedThoughtConfig configures Masked Thought fine-tuning (Chen et al.
// 2024): input tokens of the completion (those with a label) are replaced
// by MaskID with probability Rate; labels keep the original tokens.
type MaskedThoughtConfig struct {
	Rate   float64 `yaml:"rate,omitempty" json:"rate,omitempty"`
	MaskID int     `yaml:"mask_id,omitempty" json:"mask_id,omitempty"`
}

// Progressive criteria (ProgressiveConfig.Criterion): what it means that
// the model gets an example right.
const (
	// CriterionExact: every loss token of the example is predicted by
	// argmax (the default; an LM's "correctly classified").
	CriterionExact = "exact"
	// CriterionAccuracy: the fraction of its loss tokens predicted by
	// argmax is at least Threshold.
	CriterionAccuracy = "accuracy"
	// CriterionLoss: its mean token loss (nats) is at most Threshold; the
	// sequence analogue of the paper's confidence threshold τ, with
	// Threshold = -ln τ.
	CriterionLoss = "loss"
)

// ProgressiveConfig configures Progressive Data Dropout (S et al. 2025,
// the difficulty-based variant): examples the model gets right are left
// out of later epochs, until the revision epoch brings them all back.
type ProgressiveConfig struct {
	Enabled bool `yaml:"enabled,omitempty" json:"enabled,omitempty"`
	// Criterion is "exact" (default), "accuracy" or "loss".
	Criterion string `yaml:"criterion,omitempty" json:"criterion,omitempty"`
	// Threshold is the accuracy in (0, 1] or the loss (> 0) the criterion
	// compares with.
	Threshold float64 `yaml:"threshold,omitempty" json:"threshold,omitempty"`
	// RevisionEpoch is the 0-based epoch from which every example is
	// trained again (the paper's revision); 0 means never.
	RevisionEpoch int `yaml:"revision_epoch,omitempty" json:"revision_epoch,omitempty"`
}

// criterion returns Criterion with its default.
func (c ProgressiveConfig) criterion() string {
	if c.Criterion == "" {
		return CriterionExact
	}
	return c.Criterion
}

// Schedules (ScheduleConfig.Name), after Liu et al. 2023.
const (
	// ScheduleConstant keeps every rate as configured.
	ScheduleConstant = "constant"
	// ScheduleEarly is early dropout: the rates for the first N steps, 0
	// after.
	ScheduleEarly = "early"
	// ScheduleLate is late dropout: 0 for the first N steps, the rates
	// after.
	ScheduleLate = "late"
	// ScheduleLinear decreases the rates linearly to 0 at step N (the
	// total when N is not set) and keeps them at 0 after.
	ScheduleLinear = "linear"
)

// ScheduleConfig is a rate schedule ("Dropout Reduces Underfitting", Liu et
// al. 2023): at step s the rate of every site is its configured rate times
// Factor(s, total).
type ScheduleConfig struct {
	// Name is "constant" (default), "early", "late" or "linear".
	Name string `yaml:"name,omitempty" json:"name,omitempty"`
	// Steps is N, the step where early dropout stops, late dropout starts
	// and linear decay reaches 0.
	Steps int `yaml:"steps,omitempty" json:"steps,omitempty"`
	// Ratio is N as a fraction of the total steps (excludes Steps).
	Ratio float64 `yaml:"ratio,omitempty" json:"ratio,omitempty"`
}

// name returns Name with its default.
func (c ScheduleConfig) name() string {
	if c.Name == "" {
		return ScheduleConstant
	}
	return c.Name
}

// Factor is the multiplier of every rate at optimizer step (0-based) out of
// total steps, in [0, 1].
func (c ScheduleConfig) Factor(step, total int) float64 {
	n := c.Steps
	if n == 0 && c.Ratio > 0 {
		n = int(math.Round(c.Ratio * float64(total)))
	}
	switch c.name() {
	case ScheduleEarly:
		if step < n {
			return 1
		}
		return 0
	case ScheduleLate:
		if step < n {
			return 0
		}
		return 1
	case ScheduleLinear:
		if n == 0 {
			n = total
		}
		if n <= 0 {
			return 1
		}
		return math.Max(0, 1-float64(step)/float64(n))
	}
	return 1
}

// Validate checks c; the messages name the field ("dropout.attention: must
// be in [0, 1), got 1.2").
func (c Config) Validate() error {
	var errs []error
	below1 := func(field string, v float64) {
		if !(v >= 0 && v < 1) {
			errs = append(errs, fmt.Errorf("dropout.%s: must be in [0, 1), got %g", field, v))
		}
	}
	upTo1 := func(field string, v float64) {
		if !(v >= 0 && v <= 1) {
			errs = append(errs, fmt.Errorf("dropout.%s: must be in [0, 1], got %g", field, v))
		}
	}
	below1("attention", c.Attention)
	below1("residual", c.Residual)
	below1("embeddings", c.Embeddings)
	below1("lora", c.LoRA)
	below1("penultimate", c.Penultimate)
	switch {
	case c.HeadSamples < 0:
		errs = append(errs, fmt.Errorf("dropout.head_samples: must be >= 0, got %d", c.HeadSamples))
	case c.HeadSamples > 1 && c.Penultimate == 0:
		errs = append(errs, fmt.Errorf("dropout.head_samples: %d samples need dropout.penultimate > 0 (without it every sample is the same)", c.HeadSamples))
	}
	upTo1("layer_drop.rate", c.LayerDrop.Rate)
	if pr := c.LayerDrop.PruneRate; !(pr >= 0 && pr <= 0.5) {
		errs = append(errs, fmt.Errorf("dropout.layer_drop.prune_rate: must be in [0, 0.5] (every-other pruning drops one layer in floor(1/p)), got %g", pr))
	}
	if c.LayerDrop.PruneRate > 0 && len(c.LayerDrop.Keep) > 0 {
		errs = append(errs, errors.New("dropout.layer_drop: keep and prune_rate both choose the layers kept at inference; set one of them"))
	}
	for i, l := range c.LayerDrop.Keep {
		if l < 0 || (i > 0 && l <= c.LayerDrop.Keep[i-1]) {
			errs = append(errs, fmt.Errorf("dropout.layer_drop.keep[%d]: layers must be >= 0 and ascending, got %v", i, c.LayerDrop.Keep))
			break
		}
	}
	upTo1("mixout.rate", c.Mixout.Rate)
	if slices.Contains(c.Mixout.Targets, "") {
		errs = append(errs, errors.New("dropout.mixout.targets: an empty target matches every weight; leave targets empty instead"))
	}
	below1("tlm.rate", c.TLM.Rate)
	if m := c.TLM.mode(); m != TLMBoth && m != TLMSiblings && m != TLMSelf {
		errs = append(errs, fmt.Errorf("dropout.tlm.mode: %q is not one of both, siblings, self", c.TLM.Mode))
	}
	s := c.Schedule
	switch s.name() {
	case ScheduleConstant, ScheduleEarly, ScheduleLate, ScheduleLinear:
	default:
		errs = append(errs, fmt.Errorf("dropout.schedule.name: %q is not one of constant, early, late, linear", s.Name))
	}
	if s.Steps < 0 {
		errs = append(errs, fmt.Errorf("dropout.schedule.steps: must be >= 0, got %d", s.Steps))
	}
	upTo1("schedule.ratio", s.Ratio)
	if s.Steps > 0 && s.Ratio > 0 {
		errs = append(errs, errors.New("dropout.schedule: steps and ratio both set the switch step; set one of them"))
	}
	if (s.name() == ScheduleEarly || s.name() == ScheduleLate) && s.Steps == 0 && s.Ratio == 0 {
		errs = append(errs, fmt.Errorf("dropout.schedule: %s dropout needs steps or ratio (when it switches)", s.name()))
	}
	upTo1("token_mask.rate", c.TokenMask.Rate)
	if m := c.TokenMask.mode(); m != MaskReplace && m != MaskAttention {
		errs = append(errs, fmt.Errorf("dropout.token_mask.mode: %q is not one of replace, attention", c.TokenMask.Mode))
	}
	if c.TokenMask.MaskID < 0 {
		errs = append(errs, fmt.Errorf("dropout.token_mask.mask_id: must be >= 0, got %d", c.TokenMask.MaskID))
	}
	upTo1("masked_thought.rate", c.MaskedThought.Rate)
	if c.MaskedThought.MaskID < 0 {
		errs = append(errs, fmt.Errorf("dropout.masked_thought.mask_id: must be >= 0, got %d", c.MaskedThought.MaskID))
	}
	if err := c.Progressive.validate(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

func (c ProgressiveConfig) validate() error {
	var errs []error
	switch c.criterion() {
	case CriterionExact:
	case CriterionAccuracy:
		if !(c.Threshold > 0 && c.Threshold <= 1) {
			errs = append(errs, fmt.Errorf("dropout.progressive.threshold: the accuracy criterion needs a threshold in (0, 1], got %g", c.Threshold))
		}
	case CriterionLoss:
		if !(c.Threshold > 0) {
			errs = append(errs, fmt.Errorf("dropout.progressive.threshold: the loss criterion needs a threshold > 0, got %g", c.Threshold))
		}
	default:
		errs = append(errs, fmt.Errorf("dropout.progressive.criterion: %q is not one of exact, accuracy, loss", c.Criterion))
	}
	if c.RevisionEpoch < 0 {
		errs = append(errs, fmt.Errorf("dropout.progressive.revision_epoch: must be >= 0, got %d", c.RevisionEpoch))
	}
	return errors.Join(errs...)
}
