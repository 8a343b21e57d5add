package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/lethe-ml/lethe/data/tokenizer"
	"github.com/lethe-ml/lethe/internal/backend"
	"github.com/lethe-ml/lethe/models"
	"github.com/lethe-ml/lethe/unlearn"
	"github.com/lethe-ml/lethe/unlearn/eval"
	"github.com/lethe-ml/lethe/unlearn/muse"
	"github.com/lethe-ml/lethe/unlearn/quickstart"
	"github.com/lethe-ml/lethe/unlearn/recipe"
)

func newUnlearnCmd() *cobra.Command {
	var cfgPath, backendSpec string
	cmd := &cobra.Command{
		Use:   "unlearn --config RECIPE.yaml [key=value ...]",
		Short: "Unlearn a forget set from a model and evaluate it before and after",
		Long: `unlearn runs an unlearning recipe: it evaluates the model (and the retain-only
reference) on the forget, retain and holdout splits, runs the method on full
weights or through a LoRA adapter, evaluates again and writes a run folder
whose metrics.json holds "before" and "after" (forget/retain/holdout accuracy,
forget quality, MIA AUC, model utility, and more under "extra").

Methods: ` + strings.Join(unlearn.Methods(), ", ") + `.`,
		Example: `  lethe unlearn --config configs/unlearn/smoke.yaml
  lethe unlearn --config configs/unlearn/npo.yaml method.beta=0.2 training.steps=100`,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runRecipe(cmd, cfgPath, backendSpec, args, false)
		},
	}
	cmd.Flags().StringVar(&cfgPath, "config", "", "recipe file (required)")
	cmd.Flags().StringVar(&backendSpec, "backend", "", "compute backend, overriding model.backend")
	return cmd
}

func newEvalCmd() *cobra.Command {
	var cfgPath, backendSpec, museDir, modelDir, refDir string
	cmd := &cobra.Command{
		Use:   "eval --config RECIPE.yaml [key=value ...]",
		Short: "Evaluate a model on an unlearning benchmark (no training)",
		Long: `eval evaluates model.path (and the reference, if set) on the forget, retain
and holdout splits of the recipe's benchmark and writes metrics.json with
"before" only.`,
		Example: `  lethe eval --config configs/unlearn/smoke.yaml model.path=runs/unlearn-smoke/model
  lethe eval --muse ./MUSE-News --model ./muse-news-unlearned --reference ./muse-news-retrain`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if museDir != "" {
				return runMUSE(cmd, museDir, modelDir, refDir, backendSpec)
			}
			return runRecipe(cmd, cfgPath, backendSpec, args, true)
		},
	}
	cmd.Flags().StringVar(&cfgPath, "config", "", "recipe file (required unless --muse)")
	cmd.Flags().StringVar(&backendSpec, "backend", "", "compute backend, overriding model.backend")
	cmd.Flags().StringVar(&museDir, "muse", "", "run MUSE's evaluations (VerbMem, KnowMem, PrivLeak) from this MUSE folder instead of a recipe")
	cmd.Flags().StringVar(&modelDir, "model", "", "with --muse: the model to evaluate")
	cmd.Flags().StringVar(&refDir, "reference", "", "with --muse: the model retrained without the forget set (PrivLeak's baseline; default AUC 0.5)")
	return cmd
}

// runMUSE evaluates a model (and a retrained reference) on MUSE and prints
// the JSON report.
func runMUSE(cmd *cobra.Command, museDir, modelDir, refDir, backendSpec string) error {
	if modelDir == "" {
		return fmt.Errorf("--muse needs --model")
	}
	d, err := muse.Load(museDir)
	if err != nil {
		return err
	}
	b, info, err := backend.New(backend.Resolve(backendSpec))
	if err != nil {
		return fmt.Errorf("--backend: %w", err)
	}
	backend.Log(cmd.ErrOrStderr(), info)
	evalModel := func(dir string, opts muse.Options) (muse.Report, error) {
		m, err := models.Load(dir, models.LoadOptions{})
		if err != nil {
			return muse.Report{}, err
		}
		tok, err := tokenizer.Load(dir)
		if err != nil {
			return muse.Report{}, err
		}
		return muse.Evaluate(cmd.Context(), &eval.Model{M: m, Tokenizer: tok, Backend: b}, d, opts)
	}
	out := map[string]muse.Report{}
	var opts muse.Options
	if refDir != "" {
		ref, err := evalModel(refDir, opts)
		if err != nil {
			return fmt.Errorf("--reference: %w", err)
		}
		out["reference"] = ref
		opts.RetrainAUC = &ref.MIAAUC
	}
	r, err := evalModel(modelDir, opts)
	if err != nil {
		return err
	}
	out["model"] = r
	enc := json.NewEncoder(cmd.OutOrStdout())
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}

func runRecipe(cmd *cobra.Command, cfgPath, backendSpec string, overrides []string, evalOnly bool) error {
	if cfgPath == "" {
		return fmt.Errorf("--config is required")
	}
	if backendSpec != "" {
		overrides = append(overrides, "model.backend="+backendSpec)
	}
	cfg, err := recipe.LoadConfig(cfgPath, overrides)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt)
	defer stop()
	res, err := recipe.Run(ctx, cfg, recipe.Options{Log: cmd.ErrOrStderr(), EvalOnly: evalOnly})
	if err != nil {
		return err
	}
	fmt.Fprint(cmd.OutOrStdout(), quickstart.Table(res))
	fmt.Fprintf(cmd.ErrOrStderr(), "lethe: run folder %s\n", cfg.Output.Dir)
	return nil
}

func newQuickstartCmd() *cobra.Command {
	var (
		opts    quickstart.Options
		compare bool
		asJSON  bool
	)
	cmd := &cobra.Command{
		Use:   "quickstart",
		Short: "Unlearn part of the built-in facts benchmark on the CPU and print the before/after table",
		Long: `quickstart runs lethe's unlearning benchmark end to end: a small model that
learned facts about countries and chemical elements forgets 10% of the
entities (method ` + quickstart.DefaultMethod + ` unless --method), and is evaluated
before and after against a model trained without them. It prints forget,
retain and holdout accuracy, forget quality (KS test of truth ratios), the
membership-inference AUC of forget against holdout, and model utility.

With --compare it runs every method and writes runs/quickstart-compare/report.md.
Run it from the repository root, which ships the two prepared models
(` + quickstart.DefaultModels + `; remake them with "lethe quickstart prepare").`,
		Example: `  lethe quickstart
  lethe quickstart --method grad_diff
  lethe quickstart --compare`,
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Overrides = args
			opts.Log = cmd.ErrOrStderr()
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt)
			defer stop()
			start := time.Now()
			if compare {
				path, err := quickstart.Compare(ctx, opts, unlearn.Methods())
				if err != nil {
					return err
				}
				report, err := os.ReadFile(path)
				if err != nil {
					return err
				}
				fmt.Fprint(cmd.OutOrStdout(), string(report))
				fmt.Fprintf(cmd.ErrOrStderr(), "lethe: report %s (%s)\n", path, time.Since(start).Round(time.Second))
				return nil
			}
			res, err := quickstart.Run(ctx, opts)
			if err != nil {
				return err
			}
			if asJSON {
				return json.NewEncoder(cmd.OutOrStdout()).Encode(res)
			}
			fmt.Fprint(cmd.OutOrStdout(), quickstart.Table(res))
			fmt.Fprintf(cmd.ErrOrStderr(), "lethe: %s, %d steps, wall time %s; run folder %s\n", res.Method, res.Steps,
				time.Since(start).Round(time.Second), opts.OutOrDefault())
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&opts.Models, "models", "", "prepared models folder (default "+quickstart.DefaultModels+")")
	f.StringVar(&opts.Out, "out", "", "run folder (default runs/quickstart, or runs/quickstart-compare)")
	f.StringVar(&opts.Backend, "backend", "", "compute backend: auto, go[:options], xla[:plugin]")
	f.StringVar(&opts.Method, "method", "", "unlearning method (default "+quickstart.DefaultMethod+"): "+strings.Join(unlearn.Methods(), ", "))
	f.BoolVar(&compare, "compare", false, "run every method and write a comparison report")
	f.BoolVar(&asJSON, "json", false, "print the result as JSON")
	cmd.AddCommand(newQuickstartPrepareCmd())
	return cmd
}

func newQuickstartPrepareCmd() *cobra.Command {
	var opts quickstart.PrepareOptions
	cmd := &cobra.Command{
		Use:   "prepare",
		Short: "Write the facts benchmark and train the two models quickstart starts from",
		Long: `prepare writes the facts benchmark (facts.parquet) and trains, from one random
initialisation, a model on its forget and retain splits (full/) and one on the
retain split only (retain/). This is how ` + quickstart.DefaultModels + ` was made:

  lethe quickstart prepare --out ` + quickstart.DefaultModels,
		RunE: func(cmd *cobra.Command, _ []string) error {
			opts.Log = cmd.ErrOrStderr()
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt)
			defer stop()
			start := time.Now()
			if err := quickstart.Prepare(ctx, opts); err != nil {
				return err
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "lethe: prepared %s in %s\n", opts.Dir, time.Since(start).Round(time.Second))
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&opts.Dir, "out", quickstart.DefaultModels, "folder for the data and the two models")
	f.StringVar(&opts.Backend, "backend", "", "compute backend")
	f.IntVar(&opts.Epochs, "epochs", 0, "epochs over the training split (default 100)")
	f.Float64Var(&opts.LR, "lr", 0, "peak learning rate (default 3e-3)")
	f.Uint64Var(&opts.Seed, "seed", 1, "seed of the initialisation and training")
	return cmd
}
