package main

import (
	"encoding/json"
	"math"
	"path/filepath"
	"strings"
	"testing"
)

// TestDistillCLI runs the smoke recipe through `lethe distill` with
// overrides, writes a full-vocabulary teacher cache with `lethe distill
// cache-teacher`, and distills from the cache: the printed summaries hold
// kl_before and kl_after, and the cached run measures the same kl_before.
func TestDistillCLI(t *testing.T) {
	t.Chdir("../..")
	dir := t.TempDir()
	run := func(args ...string) map[string]any {
		t.Helper()
		out, err := runCLI(t, "", args...)
		if err != nil {
			t.Fatalf("lethe %s: %v", strings.Join(args, " "), err)
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(out), &m); err != nil {
			t.Fatalf("%v in %q", err, out)
		}
		return m
	}
	live := run("distill", "--config", "configs/distill/smoke.yaml", "--backend", "go:ops_sequential",
		"output.dir="+filepath.Join(dir, "live"), "training.max_steps=10")
	kb, ka := live["kl_before"].(float64), live["kl_after"].(float64)
	if !(ka < kb) || live["steps"].(float64) != 10 {
		t.Errorf("live teacher: KL %v -> %v in %v steps", kb, ka, live["steps"])
	}
	cache := filepath.Join(dir, "teacher.topk.parquet")
	c := run("distill", "cache-teacher", "--config", "configs/distill/smoke.yaml", "--backend", "go:ops_sequential", "--k", "320", "--out", cache)
	if c["k"].(float64) != 320 {
		t.Errorf("cache-teacher printed %v", c)
	}
	off := run("distill", "--config", "configs/distill/smoke.yaml", "--backend", "go:ops_sequential",
		"output.dir="+filepath.Join(dir, "cached"), "training.max_steps=10", "teacher.cache="+cache)
	if d := math.Abs(off["kl_before"].(float64) - kb); d > 1e-5 {
		t.Errorf("kl_before from the cache %v, live %v", off["kl_before"], kb)
	}
	if _, err := runCLI(t, "", "distill", "--config", "configs/distill/smoke.yaml", "loss.nme=jsd"); err == nil || !strings.Contains(err.Error(), "nme") {
		t.Errorf("unknown key: %v", err)
	}
	if _, err := runCLI(t, "", "distill", "cache-teacher", "--config", "configs/distill/smoke.yaml"); err == nil || !strings.Contains(err.Error(), "--out") {
		t.Errorf("cache-teacher without --out: %v", err)
	}
}
