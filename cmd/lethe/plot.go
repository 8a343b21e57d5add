package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/lethe-ml/lethe/train"
	"github.com/lethe-ml/lethe/train/plot"
)

func newPlotCmd() *cobra.Command {
	var (
		out, metrics, title string
		logY, list          bool
	)
	cmd := &cobra.Command{
		Use:   "plot RUN_DIR|metrics.jsonl",
		Short: "Draw a run's loss and metric curves to PNG, SVG or PDF",
		Long: `plot reads a run's metrics.jsonl and draws the chosen metrics against the
step (default: loss and eval_loss). The format follows the extension of
--out (.png, .svg, .pdf).`,
		Example: `  lethe plot runs/smoke
  lethe plot runs/smoke --metrics lr --out runs/smoke/lr.svg
  lethe plot runs/smoke --list`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			recs, err := train.ReadMetrics(args[0])
			if err != nil {
				return err
			}
			if list {
				fmt.Fprintln(cmd.OutOrStdout(), strings.Join(plot.Available(recs), "\n"))
				return nil
			}
			if out == "" {
				dir := args[0]
				if st, err := os.Stat(dir); err == nil && !st.IsDir() {
					dir = filepath.Dir(dir)
				}
				out = filepath.Join(dir, "loss.png")
			}
			opts := plot.Options{Title: title, LogY: logY}
			if metrics != "" {
				opts.Metrics = strings.Split(metrics, ",")
			}
			if opts.Title == "" {
				opts.Title = filepath.Base(filepath.Clean(args[0]))
			}
			if err := plot.Save(recs, out, opts); err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), out)
			return nil
		},
	}
	cmd.Flags().StringVar(&out, "out", "", "image to write: .png, .svg or .pdf (default RUN_DIR/loss.png)")
	cmd.Flags().StringVar(&metrics, "metrics", "", "comma-separated metrics to draw (default loss,eval_loss)")
	cmd.Flags().StringVar(&title, "title", "", "chart title (default: the run folder's name)")
	cmd.Flags().BoolVar(&logY, "log-y", false, "log-scale y axis")
	cmd.Flags().BoolVar(&list, "list", false, "list the metrics of the run and exit")
	return cmd
}
