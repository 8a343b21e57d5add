package main

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/lethe-ml/lethe/internal/backend"
	"github.com/lethe-ml/lethe/models"
)

func newBenchCmd() *cobra.Command {
	var (
		cfgName, backendSpec, dtype, batches string
		dir                                  string
		promptLen, newTokens, repeats        int
		noCache, asJSON                      bool
		seed                                 uint64
	)
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Measure prefill and decode tokens/s (random weights or a checkpoint)",
		Long: `bench times generation: the prompt pass (prefill tokens/s), the single-token
steps with the KV cache (decode tokens/s), both together (generate tokens/s)
and, with --no-cache, decoding that re-runs the whole sequence per token.
--config picks a random-weight model of a known shape: tiny (2 layers, hidden
256, vocab 32000) or smollm2 (SmolLM2-135M's shape); --model a checkpoint.`,
		Example: `  lethe bench --config tiny --backend go --batch 1,8 --no-cache
  lethe bench --config smollm2 --backend xla:cuda --dtype bfloat16 --batch 8 --prompt-len 512`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			dt, err := parseDType(dtype)
			if err != nil {
				return err
			}
			b, info, err := backend.New(backend.Resolve(backendSpec))
			if err != nil {
				return fmt.Errorf("--backend: %w", err)
			}
			backend.Log(cmd.ErrOrStderr(), info)
			var m *models.Model
			if dir != "" {
				m, err = models.Load(dir, models.LoadOptions{DType: dt})
			} else {
				var cfg *models.Config
				if cfg, err = models.BenchConfig(cfgName); err != nil {
					return err
				}
				m, err = models.New(cfg, models.LoadOptions{DType: dt}, seed)
			}
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			for _, bs := range strings.Split(batches, ",") {
				n, err := strconv.Atoi(strings.TrimSpace(bs))
				if err != nil || n <= 0 {
					return fmt.Errorf("--batch: %q is not a positive integer", bs)
				}
				r, err := models.Bench(cmd.Context(), m, b, models.BenchOptions{Batch: n, PromptLen: promptLen, NewTokens: newTokens, Repeats: repeats, NoCache: noCache})
				if err != nil {
					return err
				}
				if asJSON {
					rec := struct {
						Model   string `json:"model"`
						Backend string `json:"backend"`
						DType   string `json:"dtype"`
						models.BenchResult
					}{cfgName, info.Spec, dt.String(), r}
					if dir != "" {
						rec.Model = dir
					}
					if err := json.NewEncoder(out).Encode(rec); err != nil {
						return err
					}
					continue
				}
				fmt.Fprintf(out, "batch %d, prompt %d, %d new tokens: forward (all logits) %.0f tok/s, prefill %.0f tok/s, decode %.0f tok/s, generate %.0f tok/s",
					r.Batch, r.PromptLen, r.NewTokens, r.Forward, r.Prefill, r.Decode, r.Generate)
				if noCache {
					fmt.Fprintf(out, ", decode without cache %.0f tok/s", r.DecodeNoCache)
				}
				fmt.Fprintf(out, " (first call %.1f s)\n", r.FirstCallSeconds)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfgName, "config", "tiny", "random-weight model: tiny, small or smollm2")
	f.StringVar(&dir, "model", "", "benchmark a checkpoint folder instead")
	f.StringVar(&backendSpec, "backend", "", "compute backend: auto, go[:options], xla[:plugin]")
	f.StringVar(&dtype, "dtype", "float32", "compute dtype: float32 or bfloat16")
	f.StringVar(&batches, "batch", "1,8", "batch sizes, comma-separated")
	f.IntVar(&promptLen, "prompt-len", 128, "prompt tokens")
	f.IntVar(&newTokens, "new-tokens", 128, "generated tokens")
	f.IntVar(&repeats, "repeats", 3, "timed runs (the best is kept)")
	f.BoolVar(&noCache, "no-cache", false, "also time decoding without the KV cache")
	f.BoolVar(&asJSON, "json", false, "print one JSON line per batch size")
	f.Uint64Var(&seed, "seed", 1, "seed of the random weights")
	cmd.AddCommand(newBenchTrainCmd(), newBenchGenerateCmd())
	return cmd
}
