package main

import (
	"errors"
	"fmt"

	"github.com/lethe-ml/lethe/data"
	"github.com/lethe-ml/lethe/data/chat"
	"github.com/lethe-ml/lethe/data/tokenizer"
	"github.com/spf13/cobra"
)

func newDataCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "data",
		Short: "Look into Parquet datasets",
	}
	cmd.AddCommand(newDataInspectCmd(), newDataStatsCmd())
	return cmd
}

// bindSourceFlags binds the flags that say how to read a dataset.
func bindSourceFlags(cmd *cobra.Command, src *data.SourceConfig) {
	fs := cmd.Flags()
	fs.StringVar((*string)(&src.Shape), "shape", "", "dataset shape: text, prompt_completion or messages (default: detected from the schema)")
	fs.StringVar(&src.Columns.Text, "text-column", "", `column of a text dataset (default "text")`)
	fs.StringVar(&src.Columns.Prompt, "prompt-column", "", `prompt column (default "prompt")`)
	fs.StringVar(&src.Columns.Completion, "completion-column", "", `completion column (default "completion")`)
	fs.StringVar(&src.Columns.Messages, "messages-column", "", `list-of-messages column (default "messages")`)
	fs.StringVar(&src.Columns.Role, "role-field", "", `field holding a message's role (default "role")`)
	fs.StringVar(&src.Columns.Content, "content-field", "", `field holding a message's text (default "content")`)
	fs.StringVar(&src.Split.Column, "split-column", "", "keep only rows whose value in this column is one of --split-value")
	fs.StringSliceVar(&src.Split.Values, "split-value", nil, "accepted values of --split-column (repeatable)")
	fs.Float64Var(&src.Split.Fraction, "split-fraction", 0, "hold out this fraction of the rows as the eval part (with --split-part)")
	fs.Uint64Var(&src.Split.Seed, "split-seed", 0, "seed choosing the rows of --split-fraction")
	fs.StringVar(&src.Split.Part, "split-part", "", "part of --split-fraction to read: train or eval")
	fs.StringVar((*string)(&src.Nulls), "nulls", "", "rows with a null field: skip, error or empty (default skip)")
}

func newDataInspectCmd() *cobra.Command {
	opts := data.InspectOptions{}
	cmd := &cobra.Command{
		Use:   "inspect FILE...",
		Short: "Print the schema, row counts, detected shape and first examples of Parquet files",
		Long: `inspect prints, for each Parquet file (paths or globs), its row groups,
compression and schema, then the dataset shape lethe detects and the first
examples as JSON.`,
		Example: `  lethe data inspect train.parquet
  lethe data inspect 'data/*.parquet' --split-column split --split-value forget`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Source.Files = args
			return data.Inspect(cmd.Context(), opts, cmd.OutOrStdout())
		},
	}
	bindSourceFlags(cmd, &opts.Source)
	cmd.Flags().IntVar(&opts.Samples, "samples", 3, "number of examples to print")
	cmd.Flags().IntVar(&opts.MaxChars, "max-chars", 200, "shorten printed strings to this many characters (0: print them whole)")
	return cmd
}

func newDataStatsCmd() *cobra.Command {
	opts := data.StatsOptions{}
	var tokPath, template string
	cmd := &cobra.Command{
		Use:   "stats --tokenizer PATH FILE...",
		Short: "Print the token-length distribution of a dataset (count, p50, p90, p95, p99, max)",
		Long: `stats tokenizes every example as training would and prints the number of
examples, tokens and loss tokens, and the length percentiles, to choose
max_length and buckets.

Messages datasets are rendered with the chat template of the tokenizer's
tokenizer_config.json, or with a built-in template named by --chat-template.`,
		Example: `  lethe data stats --tokenizer path/to/model train.parquet
  lethe data stats --tokenizer tokenizer.json --chat-template chatml chats.parquet`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if tokPath == "" {
				return errors.New("--tokenizer is required")
			}
			tok, err := loadTokenizer(tokPath, cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			opts.Encoder = tok
			if opts.Tokenize.AppendEOS {
				if opts.Tokenize.EOSID, err = data.EOSID(tok); err != nil {
					return fmt.Errorf("--append-eos: %w", err)
				}
			}
			if opts.Chat, err = chatRenderer(tok, template); err != nil {
				return err
			}
			opts.Source.Files = args
			_, err = data.Stats(cmd.Context(), opts, cmd.OutOrStdout())
			return err
		},
	}
	bindSourceFlags(cmd, &opts.Source)
	cmd.Flags().StringVar(&tokPath, "tokenizer", "", "tokenizer.json file or folder holding one (required)")
	cmd.Flags().StringVar(&template, "chat-template", "", fmt.Sprintf("built-in chat template for messages datasets (%v; default: the tokenizer's own)", chat.BuiltinNames()))
	cmd.Flags().BoolVar(&opts.Tokenize.AddSpecialTokens, "special", false, "add the tokenizer's special tokens (BOS, ...) to text and prompt_completion examples")
	cmd.Flags().BoolVar(&opts.Tokenize.AppendEOS, "append-eos", false, "append the tokenizer's EOS token to text and prompt_completion examples")
	cmd.Flags().StringVar((*string)(&opts.Tokenize.LossOn), "loss-on", "", "tokens counted as loss tokens: completion (default) or all")
	return cmd
}

// chatRenderer is data.NewChatRenderer with the error naming the flag.
func chatRenderer(tok *tokenizer.Tokenizer, name string) (data.ChatRenderer, error) {
	r, err := data.NewChatRenderer(tok, name)
	if err != nil && name != "" {
		return nil, fmt.Errorf("--chat-template: %w", err)
	}
	return r, err
}
