package main

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/gomlx/compute/dtypes"
	"github.com/spf13/cobra"

	"github.com/lethe-ml/lethe/internal/backend"
	"github.com/lethe-ml/lethe/models"
	"github.com/lethe-ml/lethe/train/finetune"
)

func newBenchTrainCmd() *cobra.Command {
	var (
		cfgName, dir, backendSpec, dtype, modes string
		opts                                    finetune.BenchOptions
		asJSON                                  bool
	)
	cmd := &cobra.Command{
		Use:   "train",
		Short: "Measure training tokens/s and peak memory of LoRA and full fine-tuning",
		Long: `bench train times training steps (forward, causal-LM loss over every
position, backward, AdamW) on a fixed batch of random ids: LoRA (r=16,
alpha=32 on every linear projection of every layer, base frozen) and full
fine-tuning, each on a fresh model. The settings are those of
bench/torch/train_bench.py, so the JSON lines compare one to one.

--dtype bfloat16 computes in bfloat16 with float32 master weights (use it on
XLA; the pure Go backend has no bfloat16 softmax). Peak memory is the
process's peak resident memory after each mode (run one --mode per process
for separate figures).`,
		Example: `  lethe bench train --config tiny --backend go --batch 8 --seq 128 --json
  lethe bench train --config smollm2 --backend xla:cuda --dtype bfloat16 --batch 8 --seq 512 --mode lora`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			dt, err := parseDType(dtype)
			if err != nil {
				return err
			}
			lo := models.LoadOptions{DType: dt}
			if dt != dtypes.Float32 {
				lo.WeightDType = dtypes.Float32
			}
			b, info, err := backend.NewTraining(backend.Resolve(backendSpec))
			if err != nil {
				return fmt.Errorf("--backend: %w", err)
			}
			backend.Log(cmd.ErrOrStderr(), info)
			out := cmd.OutOrStdout()
			for _, mode := range strings.Split(modes, ",") {
				var m *models.Model
				if dir != "" {
					m, err = models.Load(dir, lo)
				} else {
					var cfg *models.Config
					if cfg, err = models.BenchConfig(cfgName); err != nil {
						return fmt.Errorf("--config: %w", err)
					}
					m, err = models.New(cfg, lo, opts.Seed)
				}
				if err != nil {
					return err
				}
				o := opts
				o.Mode = strings.TrimSpace(mode)
				r, err := finetune.Bench(cmd.Context(), m, b, o)
				if err != nil {
					return err
				}
				if asJSON {
					rec := struct {
						Impl    string `json:"impl"`
						Model   string `json:"config"`
						Backend string `json:"backend"`
						DType   string `json:"dtype"`
						finetune.BenchResult
					}{"lethe", cfgName, info.String(), dt.String(), r}
					if dir != "" {
						rec.Model = dir
					}
					if err := json.NewEncoder(out).Encode(rec); err != nil {
						return err
					}
					continue
				}
				fmt.Fprintf(out, "%s: batch %d × %d, %d trainable: %.0f tokens/s (median step %.1f ms, first step %.1f s), peak memory %.1f MiB, losses %.4g\n",
					r.Mode, r.Batch, r.Seq, r.Trainable, r.TokensPerSecond, r.MedianStepMS, r.FirstStepSeconds, float64(r.PeakMemoryBytes)/(1<<20), r.Losses)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfgName, "config", "tiny", "random-weight model: tiny, small or smollm2")
	f.StringVar(&dir, "model", "", "benchmark a checkpoint folder instead")
	f.StringVar(&backendSpec, "backend", "", "compute backend: auto, go[:options], xla[:plugin]")
	f.StringVar(&dtype, "dtype", "float32", "compute dtype: float32 or bfloat16 (float32 master weights)")
	f.StringVar(&modes, "mode", "lora,full", "what is trained: lora, full, or both comma-separated")
	f.IntVar(&opts.Batch, "batch", 8, "sequences per step")
	f.IntVar(&opts.Seq, "seq", 128, "tokens per sequence")
	f.IntVar(&opts.Rank, "rank", 16, "LoRA rank")
	f.Float64Var(&opts.Alpha, "alpha", 32, "LoRA alpha")
	f.IntVar(&opts.Steps, "steps", 5, "timed steps")
	f.IntVar(&opts.Warmup, "warmup", 2, "untimed steps before them (the first compiles)")
	f.Uint64Var(&opts.Seed, "seed", 1, "seed of the weights, ids and adapter")
	f.BoolVar(&asJSON, "json", false, "print one JSON line per mode")
	return cmd
}
