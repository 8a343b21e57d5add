package train

import (
	"fmt"
	"math"
)

// ScheduleConfig configures the learning-rate schedule (the `schedule:`
// block of a recipe). The rate is computed on the host each step and fed to
// the graph, so changing it never recompiles.
type ScheduleConfig struct {
	// Name is "constant" (default), "linear" (decay to MinRatio·lr at the
	// last step) or "cosine".
	Name string `yaml:"name" json:"name"`
	// WarmupSteps ramps the rate linearly from 0 over these steps.
	WarmupSteps int `yaml:"warmup_steps" json:"warmup_steps"`
	// WarmupRatio is WarmupSteps as a fraction of the total steps (used
	// when WarmupSteps is 0).
	WarmupRatio float64 `yaml:"warmup_ratio" json:"warmup_ratio"`
	// MinRatio is the final rate of linear and cosine as a fraction of the
	// peak [0].
	MinRatio float64 `yaml:"min_ratio" json:"min_ratio"`
}

// Validate checks c.
func (c *ScheduleConfig) Validate() error {
	switch c.Name {
	case "":
		c.Name = "constant"
	case "constant", "linear", "cosine":
	default:
		return fmt.Errorf("schedule.name: %q is not one of constant, linear, cosine", c.Name)
	}
	if c.WarmupSteps < 0 {
		return fmt.Errorf("schedule.warmup_steps: must be >= 0, got %d", c.WarmupSteps)
	}
	if c.WarmupRatio < 0 || c.WarmupRatio >= 1 {
		return fmt.Errorf("schedule.warmup_ratio: must be in [0, 1), got %g", c.WarmupRatio)
	}
	if c.MinRatio < 0 || c.MinRatio > 1 {
		return fmt.Errorf("schedule.min_ratio: must be in [0, 1], got %g", c.MinRatio)
	}
	return nil
}

// LR returns the learning rate of optimizer step (0-based) out of total,
// for peak rate peak, as transformers' get_*_schedule_with_warmup do:
// warmup multiplies by step/warmup; linear decays by
// (total-step)/(total-warmup); cosine by ½(1+cos(π·progress)).
func (c ScheduleConfig) LR(peak float64, step, total int) float64 {
	warmup := c.WarmupSteps
	if warmup == 0 && c.WarmupRatio > 0 {
		warmup = int(math.Ceil(c.WarmupRatio * float64(total)))
	}
	if step < warmup {
		return peak * float64(step) / float64(max(1, warmup))
	}
	if c.Name == "constant" || total <= warmup {
		return peak
	}
	progress := float64(step-warmup) / float64(max(1, total-warmup))
	progress = math.Min(progress, 1)
	var f float64
	switch c.Name {
	case "linear":
		f = 1 - progress
	case "cosine":
		f = 0.5 * (1 + math.Cos(math.Pi*progress))
	}
	return peak * (c.MinRatio + (1-c.MinRatio)*f)
}
