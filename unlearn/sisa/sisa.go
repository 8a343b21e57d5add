// Package sisa is exact unlearning by sharded training (SISA: Bourtoule et
// al. 2021, "Machine Unlearning") with LoRA adapters: the training
// examples are split into shards, one adapter is trained per shard on the
// frozen base, and the model is the base with the shards' adapters
// combined. Deleting examples retrains only the shards that held them,
// from scratch and without them, so the result is exactly what training
// without those examples would have given; the other shards' adapters are
// kept byte for byte.
//
// The combination is the exact average of the shards' low-rank updates
// (PEFT's add_weighted_adapter with combination "cat" and weights 1/K,
// lora.Set.AddWeighted: rank K·r), which keeps a single forward pass;
// since every shard's adapter is free of deleted data, so is their
// average. (SISA's original aggregation votes over the shards' outputs.)
package sisa

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"

	"github.com/lethe-ml/lethe/models"
	"github.com/lethe-ml/lethe/peft/lora"
	"github.com/lethe-ml/lethe/train/finetune"
	"github.com/lethe-ml/lethe/unlearn/facts"
)

// PlanFile is the shard plan in a SISA folder.
const PlanFile = "sisa.json"

// Plan records which examples each shard was trained on.
type Plan struct {
	// Shards are the example keys of each shard, in training order.
	Shards [][]string `json:"shards"`
	// Deleted are the keys removed so far.
	Deleted []string `json:"deleted,omitempty"`
}

// Key identifies an example in a plan: its question and answer.
func Key(e facts.Example) string { return e.Question + "\x00" + e.Answer }

// Assign splits examples into k shards by a hash of their keys, so an
// example's shard does not depend on the others.
func Assign(ex []facts.Example, k int) Plan {
	p := Plan{Shards: make([][]string, k)}
	for _, e := range ex {
		h := fnv.New64a()
		h.Write([]byte(Key(e)))
		s := int(h.Sum64() % uint64(k))
		p.Shards[s] = append(p.Shards[s], Key(e))
	}
	return p
}

// Options configure Train and Forget.
type Options struct {
	// Base is the frozen model's folder.
	Base string
	// Dir receives the plan, the shards' data and their adapters
	// (shard-N/adapter).
	Dir string
	// Recipe are finetune overrides for every shard (LoRA settings,
	// optimizer, epochs, ...); model.path, data and output are set here.
	Recipe []string
	// Log receives progress.
	Log io.Writer
}

// Train trains one adapter per shard of the plan on the examples (looked
// up by key) and writes the plan.
func Train(ctx context.Context, ex []facts.Example, plan Plan, opts Options) error {
	for s := range plan.Shards {
		if err := trainShard(ctx, ex, plan, s, opts); err != nil {
			return err
		}
	}
	return writePlan(opts.Dir, plan)
}

// Forget deletes examples: it removes their keys from the plan and
// retrains exactly the shards that held them. It returns those shards.
func Forget(ctx context.Context, ex []facts.Example, keys []string, opts Options) ([]int, error) {
	plan, err := ReadPlan(opts.Dir)
	if err != nil {
		return nil, err
	}
	var touched []int
	for s, shard := range plan.Shards {
		kept := slices.DeleteFunc(slices.Clone(shard), func(k string) bool { return slices.Contains(keys, k) })
		if len(kept) != len(shard) {
			plan.Shards[s] = kept
			touched = append(touched, s)
		}
	}
	plan.Deleted = append(plan.Deleted, keys...)
	for _, s := range touched {
		if err := trainShard(ctx, ex, plan, s, opts); err != nil {
			return nil, err
		}
	}
	return touched, writePlan(opts.Dir, plan)
}

// trainShard trains shard s from the base, replacing its adapter.
func trainShard(ctx context.Context, ex []facts.Example, plan Plan, s int, opts Options) error {
	byKey := map[string]facts.Example{}
	for _, e := range ex {
		byKey[Key(e)] = e
	}
	var data []facts.Example
	for _, k := range plan.Shards[s] {
		e, ok := byKey[k]
		if !ok {
			return fmt.Errorf("sisa: shard %d: no example with key %q", s, k)
		}
		data = append(data, e)
	}
	if len(data) == 0 {
		return fmt.Errorf("sisa: shard %d is empty", s)
	}
	dir := filepath.Join(opts.Dir, "shard-"+strconv.Itoa(s))
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	file := filepath.Join(dir, "data.parquet")
	if err := facts.Write(file, data); err != nil {
		return err
	}
	over := append([]string{"model.path=" + opts.Base, "data.train.files=[" + file + "]", "output.dir=" + filepath.Join(dir, "run"),
		"output.overwrite=true", "peft.method=lora", "output.save_model=false"}, opts.Recipe...)
	cfg, err := finetune.LoadConfig("", over)
	if err != nil {
		return fmt.Errorf("sisa: shard %d: %w", s, err)
	}
	log := opts.Log
	if log == nil {
		log = io.Discard
	}
	fmt.Fprintf(log, "lethe: sisa: training shard %d on %d examples\n", s, len(data))
	res, err := finetune.Run(ctx, cfg, finetune.Options{Log: log})
	if err != nil {
		return fmt.Errorf("sisa: shard %d: %w", s, err)
	}
	return os.Rename(res.Adapter, filepath.Join(dir, "adapter"))
}

// AdapterDir is shard s's adapter folder in a SISA folder.
func AdapterDir(dir string, s int) string {
	return filepath.Join(dir, "shard-"+strconv.Itoa(s), "adapter")
}

// Load loads the shards' adapters onto the base model and combines them
// into one adapter named "sisa", the average of their updates, which it
// returns (its Hooks apply it).
func Load(m *models.Model, dir string) (*lora.Adapter, error) {
	plan, err := ReadPlan(dir)
	if err != nil {
		return nil, err
	}
	set := lora.NewSet(m)
	var names []string
	var weights []float64
	for s := range plan.Shards {
		name := "shard" + strconv.Itoa(s)
		if _, err := set.Load(AdapterDir(dir, s), name); err != nil {
			return nil, fmt.Errorf("sisa: %w", err)
		}
		names = append(names, name)
		weights = append(weights, 1/float64(len(plan.Shards)))
	}
	a, err := set.AddWeighted("sisa", names, weights, lora.WeightedOptions{Combination: lora.Cat})
	if err != nil {
		return nil, fmt.Errorf("sisa: %w", err)
	}
	return a, nil
}

// ReadPlan reads dir's plan.
func ReadPlan(dir string) (Plan, error) {
	var p Plan
	path := filepath.Join(dir, PlanFile)
	raw, err := os.ReadFile(path)
	if err != nil {
		return p, fmt.Errorf("sisa: %w", err)
	}
	if err := json.Unmarshal(raw, &p); err != nil {
		return p, fmt.Errorf("sisa: %s: %w", path, err)
	}
	if len(p.Shards) == 0 {
		return p, errors.New("sisa: " + path + ": no shards")
	}
	return p, nil
}

func writePlan(dir string, p Plan) error {
	raw, err := json.MarshalIndent(p, "", "  ")
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(dir, "."+PlanFile+".tmp*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(raw); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), filepath.Join(dir, PlanFile))
}
