package main

import (
	"encoding/json"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/lethe-ml/lethe/data"
	"github.com/lethe-ml/lethe/data/tokenizer"
	"github.com/lethe-ml/lethe/models"
)

func newScoreCmd() *cobra.Command {
	var (
		mf        modelFlags
		ids, text string
		files     []string
		src       data.SourceConfig
		batch     int
		lossOn    string
	)
	cmd := &cobra.Command{
		Use:   "score",
		Short: "Print the log-likelihood of sequences under a checkpoint",
		Long: `score prints one JSON line per sequence:
{"loss": mean NLL of the predicted tokens, "tokens": n, "logprobs": [...]}.

With --data, prompt+completion rows score the completion and conversations
the assistant turns (--loss-on all scores every token); text rows score every
token after the first.`,
		Example: `  lethe score --model ./tiny --ids 1,5,9,12
  lethe score --model ./SmolLM2-135M --text "The quick brown fox"
  lethe score --model ./SmolLM2-135M --data forget.parquet --split-column split --split-value forget`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			n := 0
			for _, s := range []bool{ids != "", text != "", len(files) > 0} {
				if s {
					n++
				}
			}
			if n != 1 {
				return fmt.Errorf("give exactly one of --ids, --text and --data")
			}
			m, b, err := mf.open(cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			var seqs, labels [][]int
			switch {
			case ids != "":
				seq, err := parseIDs("--ids", ids)
				if err != nil {
					return err
				}
				seqs = [][]int{seq}
			default:
				tok, err := tokenizer.Load(mf.dir)
				if err != nil {
					return err
				}
				if text != "" {
					enc, err := tok.Encode(text, true)
					if err != nil {
						return err
					}
					seqs = [][]int{enc.IDs}
					break
				}
				src.Files = files
				if seqs, labels, err = readScoreData(cmd, tok, src, data.LossOn(lossOn)); err != nil {
					return err
				}
			}
			s := models.NewScorer(m, b)
			s.Hooks = mf.hooks
			if batch > 0 {
				s.BatchSize = batch
			}
			scores, err := s.Score(cmd.Context(), seqs, labels)
			if err != nil {
				return err
			}
			enc := json.NewEncoder(cmd.OutOrStdout())
			for _, sc := range scores {
				if err := enc.Encode(sc); err != nil {
					return err
				}
			}
			return nil
		},
	}
	mf.bind(cmd)
	f := cmd.Flags()
	f.StringVar(&ids, "ids", "", "one sequence as comma-separated token ids")
	f.StringVar(&text, "text", "", "one text, tokenized with the checkpoint's tokenizer")
	f.StringSliceVar(&files, "data", nil, "Parquet files or globs (one sequence per row)")
	f.IntVar(&batch, "batch-size", 8, "sequences per forward pass")
	f.StringVar(&lossOn, "loss-on", "", "with --data: completion (default) or all")
	bindSourceFlags(cmd, &src)
	return cmd
}

// readScoreData tokenizes every example of a dataset with its loss mask.
func readScoreData(cmd *cobra.Command, tok *tokenizer.Tokenizer, src data.SourceConfig, lossOn data.LossOn) ([][]int, [][]int, error) {
	ds, err := data.Open(cmd.Context(), src)
	if err != nil {
		return nil, nil, err
	}
	renderer, err := chatRenderer(tok, "")
	if err != nil {
		return nil, nil, err
	}
	pre, err := data.NewPreprocessor(tok, renderer, data.TokenizeConfig{AddSpecialTokens: true, LossOn: lossOn})
	if err != nil {
		return nil, nil, err
	}
	var seqs, labels [][]int
	_, err = ds.Each(cmd.Context(), func(ex data.Example) error {
		s, err := pre.Encode(ex)
		if err != nil {
			return err
		}
		ids := make([]int, len(s.IDs))
		lab := make([]int, len(s.Labels))
		for i := range s.IDs {
			ids[i] = int(s.IDs[i])
			lab[i] = int(s.Labels[i])
		}
		seqs = append(seqs, ids)
		labels = append(labels, lab)
		return nil
	})
	return seqs, labels, err
}
