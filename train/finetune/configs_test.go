package finetune

import (
	"context"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestRecipes loads every recipe under configs/ and runs those on the
// repository's tiny model for a few steps; the recipes for real
// checkpoints (under checkpoints/, downloaded by the user) are validated
// only.
func TestRecipes(t *testing.T) {
	t.Chdir("../..")
	var paths []string
	for _, pattern := range []string{"configs/*.yaml", "configs/*/*.yaml"} {
		m, err := filepath.Glob(pattern)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range m {
			// Unlearning and distillation recipes: packages unlearn/recipe
			// and distill/recipe.
			if !strings.HasPrefix(p, "configs/unlearn/") && !strings.HasPrefix(p, "configs/distill/") {
				paths = append(paths, p)
			}
		}
	}
	if len(paths) < 20 {
		t.Fatalf("%d recipes: %v", len(paths), paths)
	}
	b := testBackend(t)
	for _, path := range paths {
		t.Run(strings.TrimSuffix(strings.TrimPrefix(path, "configs/"), ".yaml"), func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "run")
			cfg, err := LoadConfig(path, []string{"output.dir=" + out})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := os.Stat(cfg.Model.Path); err != nil {
				if !strings.HasPrefix(cfg.Model.Path, "checkpoints/") {
					t.Fatalf("model.path %s: %v", cfg.Model.Path, err)
				}
				return // a real checkpoint the user downloads
			}
			cfg, err = LoadConfig(path, []string{"output.dir=" + out, "training.max_steps=4", "training.eval_every=2", "data.eval_batches=1"})
			if err != nil {
				t.Fatal(err)
			}
			res, err := Run(context.Background(), cfg, Options{Backend: b})
			if err != nil {
				t.Fatal(err)
			}
			if res.Steps != 4 || math.IsNaN(res.TrainLoss) || res.Eval == nil || !(res.Eval.Loss < res.InitialEval.Loss) {
				t.Errorf("%d steps, train loss %g, eval %+v (initial %+v)", res.Steps, res.TrainLoss, res.Eval, res.InitialEval)
			}
		})
	}
}
