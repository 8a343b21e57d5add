package dropout

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestValidate checks that every bad field is reported by its name.
func TestValidate(t *testing.T) {
	tests := []struct {
		cfg  Config
		want string // "" = valid
	}{
		{Config{}, ""},
		{allSites(), ""},
		{Config{Penultimate: 0.9, HeadSamples: 8, LoRA: 0.05, Mixout: MixoutConfig{Rate: 1}, LayerDrop: LayerDropConfig{Rate: 1, PruneRate: 0.5}}, ""},
		{Config{Attention: 1.2}, "dropout.attention: must be in [0, 1), got 1.2"},
		{Config{Residual: -0.1}, "dropout.residual: must be in [0, 1), got -0.1"},
		{Config{Embeddings: 1}, "dropout.embeddings: must be in [0, 1), got 1"},
		{Config{LoRA: 1}, "dropout.lora: must be in [0, 1), got 1"},
		{Config{Penultimate: 1}, "dropout.penultimate: must be in [0, 1), got 1"},
		{Config{HeadSamples: 4}, "dropout.head_samples: 4 samples need dropout.penultimate > 0"},
		{Config{HeadSamples: -1}, "dropout.head_samples: must be >= 0, got -1"},
		{Config{LayerDrop: LayerDropConfig{Rate: 1.5}}, "dropout.layer_drop.rate: must be in [0, 1], got 1.5"},
		{Config{LayerDrop: LayerDropConfig{PruneRate: 0.6}}, "dropout.layer_drop.prune_rate: must be in [0, 0.5]"},
		{Config{LayerDrop: LayerDropConfig{PruneRate: 0.5, Keep: []int{0}}}, "dropout.layer_drop: keep and prune_rate"},
		{Config{LayerDrop: LayerDropConfig{Keep: []int{2, 1}}}, "dropout.layer_drop.keep[1]"},
		{Config{Mixout: MixoutConfig{Rate: 2}}, "dropout.mixout.rate: must be in [0, 1], got 2"},
		{Config{Mixout: MixoutConfig{Rate: 0.1, Targets: []string{""}}}, "dropout.mixout.targets"},
		{Config{TLM: TLMConfig{Rate: 0.1, Mode: "random"}}, `dropout.tlm.mode: "random"`},
		{Config{Schedule: ScheduleConfig{Name: "cosine"}}, `dropout.schedule.name: "cosine"`},
		{Config{Schedule: ScheduleConfig{Name: ScheduleEarly}}, "dropout.schedule: early dropout needs steps or ratio"},
		{Config{Schedule: ScheduleConfig{Name: ScheduleLate, Steps: 5, Ratio: 0.5}}, "dropout.schedule: steps and ratio"},
		{Config{Schedule: ScheduleConfig{Steps: -1}}, "dropout.schedule.steps: must be >= 0, got -1"},
		{Config{TokenMask: TokenMaskConfig{Rate: 0.1, Mode: "delete"}}, `dropout.token_mask.mode: "delete"`},
		{Config{TokenMask: TokenMaskConfig{MaskID: -1}}, "dropout.token_mask.mask_id: must be >= 0, got -1"},
		{Config{MaskedThought: MaskedThoughtConfig{Rate: 1.1}}, "dropout.masked_thought.rate: must be in [0, 1], got 1.1"},
		{Config{Progressive: ProgressiveConfig{Criterion: CriterionAccuracy}}, "dropout.progressive.threshold: the accuracy criterion"},
		{Config{Progressive: ProgressiveConfig{Criterion: "f1"}}, `dropout.progressive.criterion: "f1"`},
		{Config{Progressive: ProgressiveConfig{RevisionEpoch: -2}}, "dropout.progressive.revision_epoch: must be >= 0, got -2"},
	}
	for _, tc := range tests {
		err := tc.cfg.Validate()
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%+v: unexpected error %v", tc.cfg, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%+v: error %v, want %q", tc.cfg, err, tc.want)
		}
	}
	if _, err := New(loadModel(t, "llama"), Config{Attention: 1.2}); err == nil || !strings.Contains(err.Error(), "dropout.attention") {
		t.Errorf("New accepted a bad config: %v", err)
	}
}

// TestConfigJSON checks the field names of the `dropout:` block.
func TestConfigJSON(t *testing.T) {
	var c Config
	src := `{"attention": 0.1, "residual": 0.1, "embeddings": 0.05, "lora": 0.05, "penultimate": 0.5, "head_samples": 4,
		"layer_drop": {"rate": 0.2, "prune_rate": 0.5}, "mixout": {"rate": 0.7, "targets": ["mlp"]},
		"tlm": {"rate": 0.1, "mode": "self"}, "schedule": {"name": "early", "ratio": 0.2},
		"token_mask": {"rate": 0.1, "mask_id": 3, "mode": "attention"}, "masked_thought": {"rate": 0.2, "mask_id": 0},
		"progressive": {"enabled": true, "criterion": "loss", "threshold": 0.3, "revision_epoch": 4}}`
	dec := json.NewDecoder(strings.NewReader(src))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if c.HeadSamples != 4 || c.LayerDrop.PruneRate != 0.5 || c.Mixout.Targets[0] != "mlp" || c.TLM.Mode != "self" ||
		c.Schedule.Ratio != 0.2 || c.TokenMask.Mode != "attention" || c.Progressive.RevisionEpoch != 4 || c.LoRA != 0.05 {
		t.Errorf("decoded %+v", c)
	}
}
