package main

import (
	"io"

	"github.com/spf13/cobra"
)

// newRootCmd builds the lethe command tree. Input and output are injected so
// tests can drive the CLI in-process.
func newRootCmd(in io.Reader, out, errOut io.Writer) *cobra.Command {
	root := &cobra.Command{
		Use:           "lethe",
		Short:         "Fine-tune, unlearn, distill and decode large language models",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetIn(in)
	root.SetOut(out)
	root.SetErr(errOut)
	root.AddCommand(
		newVersionCmd(),
		newTokenizeCmd(),
		newDataCmd(),
		newGenerateCmd(),
		newScoreCmd(),
		newInspectCmd(),
		newSetupCmd(),
		newBenchCmd(),
		newFinetuneCmd(),
		newPlotCmd(),
		newMergeCmd(),
		newUnlearnCmd(),
		newEvalCmd(),
		newQuickstartCmd(),
		newDistillCmd(),
		newUncertaintyCmd(),
	)
	return root
}
