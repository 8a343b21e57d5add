package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/lethe-ml/lethe/models"
)

func newMergeCmd() *cobra.Command {
	var model, adapterDir, out string
	var overwrite bool
	cmd := &cobra.Command{
		Use:   "merge",
		Short: "Fold an adapter into its base model and write a plain checkpoint",
		Long: `merge loads a checkpoint and a LoRA/DoRA adapter (PEFT's adapter_config.json
and adapter_model.safetensors), folds the adapter into the weights as PEFT's
merge_and_unload does, and writes a checkpoint that transformers and lethe
load without PEFT: config.json, model.safetensors in the base's dtype, and the
tokenizer and generation files of the base. Files are written atomically.`,
		Example: `  lethe merge --model ./SmolLM2-135M --adapter runs/lora/adapter --out ./SmolLM2-135M-chat`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			for _, f := range []struct{ flag, v string }{{"--model", model}, {"--adapter", adapterDir}, {"--out", out}} {
				if f.v == "" {
					return fmt.Errorf("%s is required", f.flag)
				}
			}
			if _, err := os.Stat(out); err == nil && !overwrite {
				return fmt.Errorf("--out: %s exists (add --overwrite to replace its files)", out)
			}
			m, err := models.Load(model, models.LoadOptions{})
			if err != nil {
				return err
			}
			a, err := loadAdapter(m, adapterDir, func(s string) { fmt.Fprintf(cmd.ErrOrStderr(), "lethe: warning: %s\n", s) })
			if err != nil {
				return err
			}
			if a.merge == nil {
				return fmt.Errorf("--adapter: %s is a mixture of LoRA experts, which routes by input and cannot be merged; use --adapter with score or generate", adapterDir)
			}
			if err := a.merge(); err != nil {
				return fmt.Errorf("merge %s: %w", adapterDir, err)
			}
			if err := m.Export(out, models.ExportOptions{}); err != nil {
				return err
			}
			if err := models.CopyTokenizerFiles(out, model, ""); err != nil {
				return err
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "lethe: merged %s into %s: %s\n", adapterDir, model, out)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&model, "model", "", "base checkpoint folder (required)")
	f.StringVar(&adapterDir, "adapter", "", "adapter folder (required)")
	f.StringVar(&out, "out", "", "folder for the merged checkpoint (required)")
	f.BoolVar(&overwrite, "overwrite", false, "write into an existing --out folder")
	return cmd
}
