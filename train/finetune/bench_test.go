package finetune

import (
	"context"
	"math"
	"testing"

	"github.com/lethe-ml/lethe/models"
)

// TestBench: the benchmark trains what it says (closed-form parameter
// counts; LoRA starts as the identity, so both modes start from the same
// loss; full fine-tuning lowers it) and its rate is the batch over the
// median step.
func TestBench(t *testing.T) {
	results := map[string]BenchResult{}
	for _, mode := range []string{"lora", "full"} {
		m, err := models.Load(tinyModel, models.LoadOptions{})
		if err != nil {
			t.Fatal(err)
		}
		r, err := Bench(context.Background(), m, testBackend(t), BenchOptions{Mode: mode, Batch: 2, Seq: 16, Steps: 3, Warmup: 1, Seed: 1})
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%+v", r)
		if len(r.Losses) != 4 || r.MinStepMS > r.MedianStepMS || r.MedianStepMS > r.MaxStepMS || r.PeakMemoryBytes == 0 {
			t.Errorf("%s: %+v", mode, r)
		}
		if want := 32 / (r.MedianStepMS / 1000); math.Abs(r.TokensPerSecond-want) > 1e-3*want {
			t.Errorf("%s: %.1f tokens/s, want %.1f", mode, r.TokensPerSecond, want)
		}
		results[mode] = r
	}
	// r·(in+out) for q, k, v, o, gate, up, down of 2 layers (hidden 64,
	// 2 KV heads of 16, intermediate 160).
	if got, want := results["lora"].Trainable, int64(2*16*(128+96+96+128+224+224+224)); got != want {
		t.Errorf("lora: %d trainable, want %d", got, want)
	}
	if got := results["full"].Trainable; got != 127296 {
		t.Errorf("full: %d trainable, want 127296", got)
	}
	l, f := results["lora"].Losses, results["full"].Losses
	if math.Abs(l[0]-f[0]) > 1e-6 || !(f[3] < f[0]) {
		t.Errorf("losses: lora %v, full %v", l, f)
	}
	if _, err := Bench(context.Background(), nil, testBackend(t), BenchOptions{Mode: "qlora"}); err == nil {
		t.Error("mode qlora: no error")
	}
}
