package main

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/lethe-ml/lethe/distill/recipe"
	"github.com/lethe-ml/lethe/distill/topk"
	"github.com/lethe-ml/lethe/internal/backend"
)

func newDistillCmd() *cobra.Command {
	var (
		cfgPath, backendSpec string
		resume               bool
	)
	cmd := &cobra.Command{
		Use:   "distill --config RECIPE.yaml [key=value ...]",
		Short: "Distill one or more teachers into a student from a recipe",
		Long: `distill trains a student (a checkpoint folder, full weights or adapters, as
lethe finetune) on (1−λ)·CE + λ·KD against frozen teachers that run in the
same graphs, or against a top-k cache of a teacher written by
lethe distill cache-teacher. Losses: ` + strings.Join(recipe.Losses, ", ") + `;
hidden-state hints (fitnets, vkd); several weighted teachers; on-policy
(mode.on_policy), sequence-level (mode.sequence_kd) and noisy-student
(mode.noisy_student) distillation.

The run folder is finetune's (metrics.jsonl, checkpoints/, model/ or
adapter/); its metrics.json adds kl_before and kl_after (the student-teacher
forward KL per held-out token), kl_reduction and the CE losses.`,
		Example: `  lethe distill --config configs/distill/smoke.yaml
  lethe distill --config configs/distill/qwen2.5-1.5b_to_0.5b.yaml loss.name=jsd loss.beta=0.5
  lethe distill cache-teacher --config configs/distill/smoke.yaml --k 64 --out runs/teacher.topk.parquet`,
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := loadDistillConfig(cfgPath, backendSpec, args)
			if err != nil {
				return err
			}
			res, err := recipe.Run(cmd.Context(), cfg, recipe.Options{Log: cmd.ErrOrStderr(), Resume: resume})
			if err != nil {
				return err
			}
			enc := json.NewEncoder(cmd.OutOrStdout())
			enc.SetIndent("", "  ")
			return enc.Encode(res)
		},
	}
	cmd.Flags().StringVar(&cfgPath, "config", "", "recipe YAML file (required)")
	cmd.Flags().StringVar(&backendSpec, "backend", "", "compute backend, overriding model.backend")
	cmd.Flags().BoolVar(&resume, "resume", false, "continue the run in output.dir from its latest checkpoint")
	cmd.AddCommand(newCacheTeacherCmd())
	return cmd
}

func loadDistillConfig(path, backendSpec string, args []string) (recipe.Config, error) {
	for _, a := range args {
		if !strings.Contains(a, "=") {
			return recipe.Config{}, fmt.Errorf("argument %q is not a key=value override", a)
		}
	}
	if path == "" && len(args) == 0 {
		return recipe.Config{}, fmt.Errorf("--config is required")
	}
	cfg, err := recipe.LoadConfig(path, args)
	if err != nil {
		return cfg, err
	}
	if backendSpec != "" {
		cfg.Model.Backend = backendSpec
	}
	return cfg, nil
}

func newCacheTeacherCmd() *cobra.Command {
	var (
		cfgPath, backendSpec, out string
		k, teacherIndex           int
	)
	cmd := &cobra.Command{
		Use:   "cache-teacher --config RECIPE.yaml --out FILE [--k 64] [key=value ...]",
		Short: "Write a teacher's top-k log-probabilities over a recipe's data to Parquet",
		Long: `cache-teacher runs the recipe's teacher once over its training and evaluation
data (the batches lethe distill trains on) and writes, for every token, the
teacher's k most likely next tokens and their log-probabilities to a Parquet
file. Set teacher.cache to that file and drop teacher.path (or keep it for
reference) to train without the teacher in memory.`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if out == "" {
				return fmt.Errorf("--out is required")
			}
			cfg, err := loadDistillConfig(cfgPath, backendSpec, args)
			if err != nil {
				return err
			}
			ts := cfg.TeacherList()
			if teacherIndex < 0 || teacherIndex >= len(ts) {
				return fmt.Errorf("--teacher %d: the recipe has %d teacher(s)", teacherIndex, len(ts))
			}
			tc := ts[teacherIndex]
			if tc.Path == "" {
				return fmt.Errorf("teacher.path: required to run the teacher")
			}
			tm, err := tc.Load()
			if err != nil {
				return fmt.Errorf("teacher.path: %w", err)
			}
			src, err := recipe.CacheSource(cmd.Context(), cfg)
			if err != nil {
				return err
			}
			defer src.Close()
			b, info, err := backend.New(backend.Resolve(backendSpec, cfg.Model.Backend))
			if err != nil {
				return err
			}
			backend.Log(cmd.ErrOrStderr(), info)
			if k == 0 {
				k = min(64, tm.Config.VocabSize)
			}
			if err := topk.Write(cmd.Context(), out, tm, b, src, k, cmd.ErrOrStderr()); err != nil {
				return err
			}
			abs, _ := filepath.Abs(out)
			fmt.Fprintf(cmd.OutOrStdout(), "{\"cache\": %q, \"k\": %d}\n", abs, k)
			return nil
		},
	}
	cmd.Flags().StringVar(&cfgPath, "config", "", "distillation recipe (its data and teacher)")
	cmd.Flags().StringVar(&backendSpec, "backend", "", "compute backend, overriding model.backend")
	cmd.Flags().StringVar(&out, "out", "", "the cache file to write (Parquet)")
	cmd.Flags().IntVar(&k, "k", 0, "log-probabilities kept per token [64, or the vocabulary if smaller]")
	cmd.Flags().IntVar(&teacherIndex, "teacher", 0, "which of the recipe's teachers to cache")
	return cmd
}
