package main

import (
	"fmt"
	"io"

	"github.com/lethe-ml/lethe/data/tokenizer"
	"github.com/lethe-ml/lethe/data/tokenizer/builtin"
	"github.com/spf13/cobra"
)

func newTokenizeCmd() *cobra.Command {
	var (
		path        string
		special     bool
		decode      bool
		skipSpecial bool
	)
	cmd := &cobra.Command{
		Use:   "tokenize",
		Short: "Encode JSON strings (one per line on stdin) into token ids, or decode ids back",
		Long: `tokenize reads one JSON string per line on stdin and writes one JSON object
per line: {"ids":[...],"tokens":[...]}. With --decode it reads {"ids":[...]}
lines and writes {"text":"..."} lines.

--tokenizer takes a tokenizer.json file or a checkpoint folder; without it the
GPT-2 tokenizer embedded in lethe is used.`,
		Example: `  echo '"Hello, world!"' | lethe tokenize --tokenizer path/to/model
  echo '{"ids":[15496,11,995,0]}' | lethe tokenize --decode`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			tok, err := loadTokenizer(path, cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			if decode {
				return tok.DecodeJSONLines(cmd.Context(), cmd.InOrStdin(), cmd.OutOrStdout(), skipSpecial)
			}
			return tok.EncodeJSONLines(cmd.Context(), cmd.InOrStdin(), cmd.OutOrStdout(), special)
		},
	}
	cmd.Flags().StringVar(&path, "tokenizer", "", "tokenizer.json file or folder holding one (default: the embedded GPT-2 tokenizer)")
	cmd.Flags().BoolVar(&special, "special", false, "add the model's special tokens (BOS, CLS/SEP, ...) as the post-processor says")
	cmd.Flags().BoolVar(&decode, "decode", false, `decode {"ids":[...]} lines into {"text":"..."} lines`)
	cmd.Flags().BoolVar(&skipSpecial, "skip-special", false, "with --decode, leave special tokens out of the text")
	return cmd
}

// loadTokenizer loads path, or the embedded GPT-2 tokenizer when path is "",
// and prints the loader's warnings to warn.
func loadTokenizer(path string, warn io.Writer) (*tokenizer.Tokenizer, error) {
	if path == "" {
		return builtin.Load("gpt2")
	}
	tok, err := tokenizer.Load(path)
	if err != nil {
		return nil, fmt.Errorf("--tokenizer: %w", err)
	}
	for _, w := range tok.Warnings() {
		fmt.Fprintf(warn, "lethe: warning: %s: %s\n", tok.Name(), w)
	}
	return tok, nil
}
