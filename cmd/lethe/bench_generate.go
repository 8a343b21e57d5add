package main

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/lethe-ml/lethe/data/tokenizer"
	"github.com/lethe-ml/lethe/decoding"
	"github.com/lethe-ml/lethe/decoding/strategy"
)

func newBenchGenerateCmd() *cobra.Command {
	var (
		mf                         modelFlags
		strategies, promptIDs      string
		newTokens, repeats, prompt int
		exitLayer, draft, samples  int
		asJSON                     bool
		texts                      []string
	)
	cmd := &cobra.Command{
		Use:   "generate --model DIR",
		Short: "Tokens/s of every decoding strategy relative to greedy, and speculative's acceptance",
		Long: `bench generate decodes the same prompts with each strategy (greedy first, as
the baseline) and reports tokens/s, the ratio to greedy, whether the tokens
equal greedy's, and for speculative the acceptance rate (its ratio is its
speedup). Prompts are --prompt texts, --prompt-ids (several separated by ';') or, by
default, 8 prompts of --prompt-len token ids spread over the vocabulary.`,
		Example: `  lethe bench generate --model unlearn/quickstart/models/full --backend go --new-tokens 32 --exit-layer 2`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			m, b, err := mf.open(cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			var prompts [][]int
			if len(texts) > 0 {
				tok, err := tokenizer.Load(mf.dir)
				if err != nil {
					return err
				}
				for _, t := range texts {
					ids, err := encodePrompt(tok, strings.ReplaceAll(t, `\n`, "\n"), false)
					if err != nil {
						return err
					}
					prompts = append(prompts, ids)
				}
			} else if promptIDs != "" {
				for _, p := range strings.Split(promptIDs, ";") {
					ids, err := parseIDs("--prompt-ids", p)
					if err != nil {
						return err
					}
					prompts = append(prompts, ids)
				}
			} else {
				V := m.Config.VocabSize
				for i := range 8 {
					var p []int
					for j := range prompt {
						p = append(p, (7+31*i+17*j*j)%V)
					}
					prompts = append(prompts, p)
				}
			}
			gc := decoding.GenerationConfig{MaxNewTokens: newTokens, MinNewTokens: newTokens, NumBeams: 1, Temperature: 1, TopP: 1, TypicalP: 1, RepetitionPenalty: 1,
				EOSTokenIDs: m.Config.EOSTokenID}
			var names []string
			if strategies != "" {
				names = strings.Split(strategies, ",")
			}
			res, err := strategy.Bench(cmd.Context(), m, b, strategy.BenchOptions{Strategies: names, Prompts: prompts, Repeats: repeats, Hooks: mf.hooks,
				Config: strategy.Config{Generation: gc, ExitLayer: exitLayer, Draft: draft, Samples: samples, Seed: 1}})
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if asJSON {
				enc := json.NewEncoder(out)
				for _, r := range res {
					if err := enc.Encode(r); err != nil {
						return err
					}
				}
				return nil
			}
			fmt.Fprintf(out, "%-18s %10s %9s %13s %11s\n", "strategy", "tokens/s", "vs greedy", "same tokens", "acceptance")
			for _, r := range res {
				acc := ""
				if r.Strategy == "speculative" {
					acc = fmt.Sprintf("%.3f", r.AcceptanceRate)
				}
				fmt.Fprintf(out, "%-18s %10.1f %8.2fx %13v %11s\n", r.Strategy, r.TokensPerSecond, r.Relative, r.SameAsGreedy, acc)
			}
			return nil
		},
	}
	mf.bind(cmd)
	f := cmd.Flags()
	f.StringVar(&strategies, "strategies", "", "comma-separated strategies [all]")
	f.StringVar(&promptIDs, "prompt-ids", "", "prompts as comma-separated ids, several separated by ';'")
	f.StringArrayVar(&texts, "prompt", nil, `a prompt text ("\n" for a newline); repeat for more`)
	f.IntVar(&prompt, "prompt-len", 16, "length of the default prompts")
	f.IntVar(&newTokens, "new-tokens", 32, "tokens generated per prompt (end-of-sequence suppressed)")
	f.IntVar(&repeats, "repeats", 3, "timed passes; the best is kept")
	f.IntVar(&exitLayer, "exit-layer", 0, "speculative's draft layers [half of them]")
	f.IntVar(&draft, "draft", 4, "speculative's draft length")
	f.IntVar(&samples, "samples", 5, "passes of mc-dropout and dropout-decoding")
	f.BoolVar(&asJSON, "json", false, "print JSON lines")
	return cmd
}
