// Command lethe fine-tunes, unlearns, distills and decodes large language
// models. Each subcommand is a thin layer over a library package that research
// code can import directly.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"strings"

	"github.com/lethe-ml/lethe/internal/backend"
)

func main() {
	// A CUDA plugin found in a Python environment needs its libraries on
	// LD_LIBRARY_PATH before the process starts: re-execute if so.
	backend.ReexecWithPluginEnv(backend.Resolve(backendFlag(os.Args[1:])))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	root := newRootCmd(os.Stdin, os.Stdout, os.Stderr)
	if err := root.ExecuteContext(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "lethe:", err)
		os.Exit(1)
	}
}

// backendFlag finds --backend in the arguments before cobra parses them.
func backendFlag(args []string) string {
	for i, a := range args {
		if v, ok := strings.CutPrefix(a, "--backend="); ok {
			return v
		}
		if a == "--backend" && i+1 < len(args) {
			return args[i+1]
		}
	}
	return ""
}
