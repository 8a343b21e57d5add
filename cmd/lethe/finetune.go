package main

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/lethe-ml/lethe/train/finetune"
)

func newFinetuneCmd() *cobra.Command {
	var (
		cfgPath, backendSpec string
		resume, dryRun       bool
	)
	cmd := &cobra.Command{
		Use:   "finetune --config RECIPE.yaml [key=value ...]",
		Short: "Fine-tune a checkpoint (full or with adapters) from a recipe",
		Long: `finetune runs a supervised fine-tuning recipe (see configs/). Arguments
of the form key=value override the recipe, torchtune-style: the key is the
dotted YAML path and the value is parsed as YAML (optimizer.lr=1e-4,
data.train.files=[a.parquet,b.parquet], peft.target_modules=all-linear).
An unknown key is an error that lists the keys allowed there.

The run folder (output.dir) receives config.yaml (the resolved recipe),
metrics.jsonl (one line per step: loss, lr, grad_norm, tokens_per_s, and
eval_* at evaluations), metrics.json (the summary: final train and
validation loss, tokens/s, peak memory), checkpoints/ and the result:
model/ (a Hugging Face checkpoint) or adapter/ (PEFT's format).

Ctrl-C writes a checkpoint before stopping; --resume continues the run
exactly where it stopped. lethe plot RUN_DIR draws the curves.`,
		Example: `  lethe finetune --config configs/smollm2_135m_lora.yaml
  lethe finetune --config configs/smoke.yaml optimizer.lr=1e-3 training.max_steps=20
  lethe finetune --config configs/smollm2_135m_lora.yaml --resume`,
		RunE: func(cmd *cobra.Command, args []string) error {
			for _, a := range args {
				if !strings.Contains(a, "=") {
					return fmt.Errorf("argument %q is not a key=value override", a)
				}
			}
			if cfgPath == "" && len(args) == 0 {
				return fmt.Errorf("--config is required")
			}
			cfg, err := finetune.LoadConfig(cfgPath, args)
			if err != nil {
				return err
			}
			if backendSpec != "" {
				cfg.Model.Backend = backendSpec
			}
			if dryRun {
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				return enc.Encode(cfg)
			}
			res, err := finetune.Run(cmd.Context(), cfg, finetune.Options{Log: cmd.ErrOrStderr(), Resume: resume})
			if err != nil {
				return err
			}
			enc := json.NewEncoder(cmd.OutOrStdout())
			enc.SetIndent("", "  ")
			return enc.Encode(res)
		},
	}
	cmd.Flags().StringVar(&cfgPath, "config", "", "recipe YAML file (required)")
	cmd.Flags().StringVar(&backendSpec, "backend", "", "compute backend, overriding model.backend: auto, go[:options], xla[:plugin]")
	cmd.Flags().BoolVar(&resume, "resume", false, "continue the run in output.dir from its latest checkpoint")
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "print the resolved, validated recipe as JSON and exit")
	return cmd
}
