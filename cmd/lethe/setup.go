package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/lethe-ml/lethe/internal/backend"
)

func newSetupCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "setup",
		Short: "Install optional runtime pieces",
	}
	var plugin, path string
	xla := &cobra.Command{
		Use:   "xla",
		Short: "Download and install XLA PJRT plugins (CPU, plus CUDA/TPU when present)",
		Long: `setup xla runs go-xla's installer: the XLA CPU plugin, and the CUDA or TPU
plugins when such hardware is found (or only --plugin). It is the only lethe
command that downloads anything; --backend auto then finds the plugins.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := backend.SetupXLA(plugin, path); err != nil {
				return fmt.Errorf("setup xla: %w", err)
			}
			_, _, why := backend.Discover()
			fmt.Fprintf(cmd.OutOrStdout(), "installed; %s\n", why)
			return nil
		},
	}
	xla.Flags().StringVar(&plugin, "plugin", "", "install only this plugin: cpu, cuda, rocm or tpu")
	xla.Flags().StringVar(&path, "path", "", "install folder (default: go-xla's, ~/.local/lib/go-xla)")
	cmd.AddCommand(xla)
	return cmd
}
