package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/lethe-ml/lethe/data"
	"github.com/lethe-ml/lethe/data/tokenizer"
	"github.com/lethe-ml/lethe/decoding"
	"github.com/lethe-ml/lethe/decoding/mc"
	"github.com/lethe-ml/lethe/decoding/uncertainty"
	"github.com/lethe-ml/lethe/models"
	"github.com/lethe-ml/lethe/peft"
	"github.com/lethe-ml/lethe/train"
	"github.com/lethe-ml/lethe/train/dropout"
)

// uncertaintyRow is one example's line of `lethe uncertainty`'s output.
type uncertaintyRow struct {
	Index       int     `json:"index" parquet:"index"`
	Prompt      string  `json:"prompt" parquet:"prompt"`
	Answer      string  `json:"answer" parquet:"answer"`
	Gold        string  `json:"gold" parquet:"gold"`
	Correct     bool    `json:"correct" parquet:"correct"`
	Abstain     bool    `json:"abstain" parquet:"abstain"`
	Score       float64 `json:"score" parquet:"score"`
	MeanPE      float64 `json:"mean_predictive_entropy" parquet:"mean_predictive_entropy"`
	MeanEE      float64 `json:"mean_expected_entropy" parquet:"mean_expected_entropy"`
	MeanMI      float64 `json:"mean_mutual_information" parquet:"mean_mutual_information"`
	MaxMI       float64 `json:"max_mutual_information" parquet:"max_mutual_information"`
	MeanLogProb float64 `json:"mean_log_prob" parquet:"mean_log_prob"`
	LogProbStd  float64 `json:"log_prob_std" parquet:"log_prob_std"`
	// With --answers K: the agreement of K answers sampled with dropout,
	// their number of distinct answers, and the EigenScore and Efficient
	// EigenScore of their embeddings.
	Agreement  float64 `json:"agreement,omitempty" parquet:"agreement"`
	Distinct   int     `json:"distinct_answers,omitempty" parquet:"distinct_answers"`
	EigenScore float64 `json:"eigenscore,omitempty" parquet:"eigenscore"`
	EES        float64 `json:"efficient_eigenscore,omitempty" parquet:"efficient_eigenscore"`
}

// calibration is the abstention report of `lethe uncertainty`.
type calibration struct {
	Examples       int      `json:"examples"`
	Score          string   `json:"score"`
	Accuracy       float64  `json:"accuracy"`
	AURC           float64  `json:"aurc"`
	SelectiveAUROC float64  `json:"selective_auroc"`
	AccuracyAt50   float64  `json:"accuracy_at_coverage_0.5"`
	AccuracyAt80   float64  `json:"accuracy_at_coverage_0.8"`
	TargetAccuracy float64  `json:"target_accuracy"`
	Threshold      *float64 `json:"threshold"` // null when no threshold reaches the target
	Coverage       float64  `json:"coverage_at_threshold"`
	Reached        bool     `json:"target_reached"`
	Output         string   `json:"output,omitempty"`
	// Rashomon is the dropout Rashomon set of --rashomon masks on the gold
	// completions.
	Rashomon *mc.RashomonResult `json:"rashomon,omitempty"`
}

func newUncertaintyCmd() *cobra.Command {
	var (
		mf                  modelFlags
		dataPath, out, stop string
		scoreName           string
		passes, maxNew      int
		limit               int
		rate, target        float64
		seed                uint64
		gold                bool
		answers, rashomon   int
		epsilon             float64
	)
	cmd := &cobra.Command{
		Use:   "uncertainty --model DIR --data FILE [--out scores.jsonl|.parquet]",
		Short: "MC-dropout uncertainty of a model's answers, with an abstention report",
		Long: `uncertainty answers every prompt of a dataset (Parquet with prompt/completion,
messages or text columns) greedily, scores the answer with K forward passes
with dropout on (MC dropout: predictive entropy, expected entropy, mutual
information, log-probability and its spread across passes), judges it
against the gold completion (exact match after normalising case and
spaces), and writes one row per example to --out (JSON lines, or Parquet for
a .parquet name). It prints an abstention report: accuracy, the area under
the risk-coverage curve, how well the score separates wrong from right
answers, the accuracy at 50% and 80% coverage, and the threshold that
reaches --target-accuracy on the answered part. With --gold it scores the
gold completions instead of answering.`,
		Example: `  lethe uncertainty --model unlearn/quickstart/models/full --data unlearn/quickstart/models/facts.parquet --stop "\n" --limit 100 --out runs/uncertainty.jsonl`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if dataPath == "" {
				return fmt.Errorf("--data is required")
			}
			switch scoreName {
			case "mi", "pe", "nll":
			default:
				return fmt.Errorf("--score: mi, pe or nll, got %q", scoreName)
			}
			m, b, err := mf.open(cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			tok, err := tokenizer.Load(mf.dir)
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			ds, err := data.Open(ctx, data.SourceConfig{Files: []string{dataPath}})
			if err != nil {
				return fmt.Errorf("--data: %w", err)
			}
			render, err := data.NewChatRenderer(tok, "")
			if err != nil {
				return err
			}
			pre, err := data.NewPreprocessor(tok, render, data.TokenizeConfig{AddSpecialTokens: true})
			if err != nil {
				return err
			}
			cfg, err := models.LoadGenerationConfig(mf.dir, m.Config)
			if err != nil {
				return err
			}
			cfg.DoSample, cfg.MaxNewTokens = false, maxNew
			if stop != "" {
				enc, err := tok.Encode(strings.ReplaceAll(stop, `\n`, "\n"), false)
				if err != nil {
					return err
				}
				cfg.StopTokenIDs = append(cfg.StopTokenIDs, enc.IDs...)
			}
			drop := dropout.Config{Residual: rate}
			s, err := mc.NewScorer(m, b, mc.Options{Passes: passes, Dropout: drop, NoDropout: rate == 0, Seed: seed, Hooks: mf.hooks})
			if err != nil {
				return err
			}
			var gen *models.Generator
			if !gold {
				gen = models.NewGenerator(m, b)
				gen.Hooks = mf.hooks
			}
			var sampler *models.Generator
			var embed *mc.Embedder
			if answers > 1 {
				reg, err := dropout.New(m, dropout.Config{Residual: max(rate, 1e-6)})
				if err != nil {
					return err
				}
				sampler = models.NewGenerator(m, b)
				sampler.Hooks, sampler.ShareWeights = peft.ComposeHooks(mf.hooks, reg.Hooks()), true
				embed = mc.NewEmbedder(m, b, mf.hooks)
			}
			var rows []uncertaintyRow
			var scores []float64
			var correct []bool
			var golds []mc.Example
			_, err = ds.Each(ctx, func(ex data.Example) error {
				if limit > 0 && len(rows) >= limit {
					return errStop
				}
				smp, err := pre.Encode(ex)
				if err != nil {
					return err
				}
				prompt, want := mc.SplitSample(smp)
				if len(prompt) == 0 || len(want) == 0 {
					return nil
				}
				a, err := s.Answer(ctx, gen, cfg, prompt, want)
				if err != nil {
					return fmt.Errorf("example %d: %w", len(rows), err)
				}
				text := func(ids []int) string { t, _ := tok.Decode(trimStop(ids, cfg.StopTokenIDs), true); return t }
				r := uncertaintyRow{Index: len(rows), Prompt: text(prompt), Answer: text(a.Answer), Gold: text(want),
					MeanPE: a.Scores.MeanPE, MeanEE: a.Scores.MeanEE, MeanMI: a.Scores.MeanMI, MaxMI: a.Scores.MaxMI,
					MeanLogProb: a.Scores.MeanLogProb, LogProbStd: a.Scores.LogProbStd}
				r.Correct = uncertainty.Normalize(r.Answer) == uncertainty.Normalize(r.Gold)
				switch scoreName {
				case "mi":
					r.Score = r.MeanMI
				case "pe":
					r.Score = r.MeanPE
				default:
					r.Score = -r.MeanLogProb
				}
				if sampler != nil {
					if err := sampleAnswers(ctx, &r, m, sampler, embed, cfg, prompt, answers, seed, text); err != nil {
						return fmt.Errorf("example %d: %w", len(rows), err)
					}
				}
				rows, scores, correct = append(rows, r), append(scores, r.Score), append(correct, r.Correct)
				golds = append(golds, mc.Example{Prompt: prompt, Completion: want})
				return nil
			})
			if err != nil && err != errStop {
				return err
			}
			if len(rows) == 0 {
				return fmt.Errorf("--data: %s has no example with a prompt and a completion", dataPath)
			}
			rep := calibration{Examples: len(rows), Score: scoreName, TargetAccuracy: target}
			for _, c := range correct {
				if c {
					rep.Accuracy += 1 / float64(len(rows))
				}
			}
			if rep.AURC, err = uncertainty.AURC(scores, correct); err != nil {
				return err
			}
			if rep.SelectiveAUROC, err = uncertainty.SelectiveAUROC(scores, correct); err != nil {
				rep.SelectiveAUROC = 0.5 // every answer right, or every answer wrong
			}
			if rep.AccuracyAt50, err = uncertainty.AccuracyAtCoverage(scores, correct, 0.5); err != nil {
				return err
			}
			if rep.AccuracyAt80, err = uncertainty.AccuracyAtCoverage(scores, correct, 0.8); err != nil {
				return err
			}
			pt, ok, err := uncertainty.ThresholdForAccuracy(scores, correct, target)
			if err != nil {
				return err
			}
			rep.Coverage, rep.Reached = pt.Coverage, ok
			if !math.IsInf(pt.Threshold, 0) && !math.IsNaN(pt.Threshold) {
				rep.Threshold = &pt.Threshold
			}
			for i, a := range uncertainty.Abstain(scores, pt.Threshold) {
				rows[i].Abstain = a && ok
			}
			if rashomon > 0 {
				r, err := mc.NewRashomon(m, b, mc.RashomonOptions{Masks: rashomon, Rate: max(rate, 1e-6), Epsilon: epsilon, Seed: seed, Hooks: mf.hooks})
				if err != nil {
					return err
				}
				if rep.Rashomon, err = r.Evaluate(ctx, golds); err != nil {
					return err
				}
			}
			if out != "" {
				if err := writeRows(out, rows); err != nil {
					return err
				}
				rep.Output = out
			}
			enc := json.NewEncoder(cmd.OutOrStdout())
			enc.SetIndent("", "  ")
			return enc.Encode(rep)
		},
	}
	mf.bind(cmd)
	f := cmd.Flags()
	f.StringVar(&dataPath, "data", "", "Parquet file of prompt/completion, messages or text rows (required)")
	f.StringVar(&out, "out", "", "per-example scores: JSON lines, or Parquet for a .parquet name")
	f.IntVar(&passes, "passes", 10, "stochastic passes K")
	f.Float64Var(&rate, "rate", 0.1, "dropout rate on every residual branch (0: all passes equal)")
	f.Uint64Var(&seed, "seed", 0, "seed of the dropout masks")
	f.IntVar(&maxNew, "max-new-tokens", 32, "longest answer")
	f.StringVar(&stop, "stop", "", `text of a token that ends answers, e.g. "\n"`)
	f.IntVar(&limit, "limit", 0, "score the first N examples [all]")
	f.BoolVar(&gold, "gold", false, "score the gold completions instead of greedy answers")
	f.StringVar(&scoreName, "score", "mi", "uncertainty the abstention uses: mi (mutual information), pe (predictive entropy) or nll")
	f.Float64Var(&target, "target-accuracy", 0.9, "accuracy the abstention threshold is chosen for")
	f.IntVar(&answers, "answers", 0, "also sample this many answers with dropout: their agreement and (Efficient) EigenScore")
	f.IntVar(&rashomon, "rashomon", 0, "also evaluate this many fixed dropout masks on the gold completions: the Rashomon set's loss spread and predictive multiplicity")
	f.Float64Var(&epsilon, "epsilon", 0.05, "the Rashomon set's loss tolerance (nats per token)")
	return cmd
}

var errStop = fmt.Errorf("stop")

// trimStop drops a final stop token.
func trimStop(ids, stop []int) []int {
	if n := len(ids); n > 0 {
		for _, s := range stop {
			if ids[n-1] == s {
				return ids[:n-1]
			}
		}
	}
	return ids
}

// writeRows writes the rows as Parquet or JSON lines, atomically.
func writeRows(path string, rows []uncertaintyRow) error {
	if strings.HasSuffix(path, ".parquet") {
		return data.WriteFile(path, rows, data.WriteOptions{})
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	for _, r := range rows {
		if err := enc.Encode(r); err != nil {
			return err
		}
	}
	return train.WriteFileAtomic(path, b.Bytes())
}

// sampleAnswers decodes k answers with dropout on (fresh masks each) and
// adds their agreement and EigenScores to r.
func sampleAnswers(ctx context.Context, r *uncertaintyRow, m *models.Model, gen *models.Generator, embed *mc.Embedder,
	cfg decoding.GenerationConfig, prompt []int, k int, seed uint64, text func([]int) string) error {
	var texts []string
	var toks [][]int
	for i := range k {
		if err := m.Store.SetRNGStateFromSeed(int64(seed)*1000 + int64(i)); err != nil {
			return err
		}
		g, err := gen.Generate(ctx, [][]int{prompt}, models.GenerateOptions{Config: cfg})
		if err != nil {
			return err
		}
		a := g.Tokens[0]
		if len(a) == 0 {
			a = []int{0}
		}
		toks, texts = append(toks, a), append(texts, text(a))
	}
	ag := uncertainty.Agree(texts)
	r.Agreement, r.Distinct = ag.Rate, ag.Distinct
	emb, err := embed.Embed(ctx, prompt, toks)
	if err != nil {
		return err
	}
	if r.EigenScore, err = uncertainty.EigenScore(emb, uncertainty.EigenConfig{}); err != nil {
		return err
	}
	r.EES, err = uncertainty.EfficientEigenScore(emb, uncertainty.EigenConfig{})
	return err
}
