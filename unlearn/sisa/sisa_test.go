package sisa

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/lethe-ml/lethe/models"
	"github.com/lethe-ml/lethe/unlearn/facts"
)

// TestShardedExactUnlearning trains three LoRA shards on facts questions,
// deletes examples of one shard, and checks that exactly that shard was
// retrained (the others' adapter files are unchanged byte for byte), that
// the plan no longer holds the deleted keys, that the result equals
// training without them from the start, and that the combined adapter
// loads.
func TestShardedExactUnlearning(t *testing.T) {
	ex, err := facts.Default()
	if err != nil {
		t.Fatal(err)
	}
	ex = facts.Split(ex, facts.SplitRetain)[:60]
	plan := Assign(ex, 3)
	total := 0
	for _, s := range plan.Shards {
		total += len(s)
		if len(s) == 0 {
			t.Fatal("an empty shard")
		}
	}
	if total != 60 || !slices.Equal(Assign(ex, 3).Shards[1], plan.Shards[1]) {
		t.Fatalf("plan %v", plan)
	}
	dir := t.TempDir()
	opts := Options{Base: "../../models/testdata/tiny-chat", Dir: dir, Recipe: []string{
		"model.backend=go:ops_sequential", "data.collate={batch_size: 8, max_length: 64}", "optimizer.lr=5e-3",
		"training.max_steps=3", "peft.r=4", "peft.lora_alpha=8", "peft.target_modules=[q_proj, v_proj]"}}
	if err := Train(context.Background(), ex, plan, opts); err != nil {
		t.Fatal(err)
	}
	before := map[int][]byte{}
	for s := range plan.Shards {
		b, err := os.ReadFile(filepath.Join(AdapterDir(dir, s), "adapter_model.safetensors"))
		if err != nil {
			t.Fatal(err)
		}
		before[s] = b
	}
	deleted := plan.Shards[1][:2]
	touched, err := Forget(context.Background(), ex, deleted, opts)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(touched, []int{1}) {
		t.Errorf("retrained shards %v, want [1]", touched)
	}
	after, err := ReadPlan(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range deleted {
		if slices.Contains(after.Shards[1], k) || !slices.Contains(after.Deleted, k) {
			t.Errorf("key %q still planned (or not recorded as deleted)", k)
		}
	}
	for s := range plan.Shards {
		b, err := os.ReadFile(filepath.Join(AdapterDir(dir, s), "adapter_model.safetensors"))
		if err != nil {
			t.Fatal(err)
		}
		if same := bytes.Equal(b, before[s]); same != (s != 1) {
			t.Errorf("shard %d: adapter unchanged = %v", s, same)
		}
	}
	// Exactness: training the remaining plan from scratch gives the same
	// adapters, bit for bit.
	fresh := opts
	fresh.Dir = t.TempDir()
	if err := Train(context.Background(), ex, Plan{Shards: after.Shards}, fresh); err != nil {
		t.Fatal(err)
	}
	for s := range plan.Shards {
		a, _ := os.ReadFile(filepath.Join(AdapterDir(dir, s), "adapter_model.safetensors"))
		b, _ := os.ReadFile(filepath.Join(AdapterDir(fresh.Dir, s), "adapter_model.safetensors"))
		if len(a) == 0 || !bytes.Equal(a, b) {
			t.Errorf("shard %d after deletion differs from training without the deleted examples", s)
		}
	}
	m, err := models.Load("../../models/testdata/tiny-chat", models.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	a, err := Load(m, dir)
	if err != nil {
		t.Fatal(err)
	}
	if a.Config().R != 12 {
		t.Errorf("combined rank %d, want 3 shards × 4", a.Config().R)
	}
}
