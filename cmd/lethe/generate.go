package main

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/lethe-ml/lethe/data/chat"
	"github.com/lethe-ml/lethe/data/tokenizer"
	"github.com/lethe-ml/lethe/decoding"
	"github.com/lethe-ml/lethe/models"
)

func newGenerateCmd() *cobra.Command {
	var (
		mf        modelFlags
		prompt    string
		promptIDs string
		useChat   bool
		seed      uint64
		ov        decoding.Overrides
		doSample  bool
		maxNew    int
		minNew    int
		temp      float64
		topK      int
		topP      float64
		minP      float64
		repPen    float64
		stopIDs   string
		sf        strategyFlags
	)
	cmd := &cobra.Command{
		Use:   "generate",
		Short: "Continue a prompt with a checkpoint (KV-cache decoding)",
		Long: `generate continues a prompt. Decoding settings start from the checkpoint's
generation_config.json (greedy when it sets nothing) and flags override them.

With --prompt-ids it prints one JSON line {"ids":[...]} holding the prompt and
the new tokens, as transformers' generate returns them; with --prompt it
prints the text as tokens arrive.

--strategy picks a decoding strategy (package decoding/strategy):
  greedy, sample          as the flags above
  contrastive             (1+β)·expert − β·amateur over the tokens the expert
                          finds plausible (α); the amateur is --amateur, or
                          without it the model itself with dropout (DCD)
  dcd                     contrastive against the model with --dropout
  dola                    DoLa: the final layer against the premature layer
                          that differs most (--dola-layers high|low)
  speculative             self-speculative: draft with the first --exit-layer
                          layers, verify with all of them (same tokens as greedy)
  mc-dropout              the mean of --samples dropout passes (--dropout);
                          the mutual information of each step goes to stderr
  dropout-decoding        --samples passes that each drop part (--drop-context)
                          of the most uncertain prompt tokens, ensembled
--ban and the penalties work with every strategy but speculative.`,
		Example: `  lethe generate --model ./SmolLM2-135M --prompt "The capital of France is" --max-new-tokens 20
  lethe generate --model ./Qwen2.5-0.5B-Instruct --chat --prompt "Hi!" --do-sample --temperature 0.7 --seed 1
  lethe generate --model ./tiny --prompt-ids 1,5,9 --max-new-tokens 5`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if (prompt == "") == (promptIDs == "") {
				return fmt.Errorf("give exactly one of --prompt and --prompt-ids")
			}
			if useChat && prompt == "" {
				return fmt.Errorf("--chat needs --prompt")
			}
			fs := cmd.Flags()
			set := func(name string) bool { return fs.Changed(name) }
			if set("do-sample") {
				ov.DoSample = &doSample
			}
			if set("max-new-tokens") {
				ov.MaxNewTokens = &maxNew
			}
			if set("min-new-tokens") {
				ov.MinNewTokens = &minNew
			}
			if set("temperature") {
				ov.Temperature = &temp
			}
			if set("top-k") {
				ov.TopK = &topK
			}
			if set("top-p") {
				ov.TopP = &topP
			}
			if set("min-p") {
				ov.MinP = &minP
			}
			if set("repetition-penalty") {
				ov.RepetitionPenalty = &repPen
			}
			if stopIDs != "" {
				ids, err := parseIDs("--stop-ids", stopIDs)
				if err != nil {
					return err
				}
				ov.StopTokenIDs = ids
			}
			m, b, err := mf.open(cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			base, err := models.LoadGenerationConfig(mf.dir, m.Config)
			if err != nil {
				return err
			}
			cfg, err := decoding.Merge(base, ov)
			if err != nil {
				return err
			}
			for _, w := range cfg.Warnings() {
				fmt.Fprintf(cmd.ErrOrStderr(), "lethe: warning: %s\n", w)
			}
			var ids []int
			var tok *tokenizer.Tokenizer
			if promptIDs != "" {
				if ids, err = parseIDs("--prompt-ids", promptIDs); err != nil {
					return err
				}
			} else {
				if tok, err = tokenizer.Load(mf.dir); err != nil {
					return err
				}
				if ids, err = encodePrompt(tok, prompt, useChat); err != nil {
					return err
				}
			}
			out := cmd.OutOrStdout()
			if sf.strategy != "" {
				return sf.run(cmd, m, b, mf.hooks, tok, cfg, ids, seed, promptIDs != "")
			}
			gen := models.NewGenerator(m, b)
			gen.Hooks = mf.hooks
			opts := models.GenerateOptions{Config: cfg, Seed: seed}
			if tok != nil {
				// Stream: print what the new tokens decode to, holding back
				// an incomplete UTF-8 character.
				var newIDs []int
				printed := ""
				opts.OnStep = func(_ int, tokens []int, _ []bool) error {
					newIDs = append(newIDs, tokens[0])
					text, err := tok.Decode(newIDs, true)
					if err != nil {
						return err
					}
					if strings.HasSuffix(text, "\uFFFD") || !strings.HasPrefix(text, printed) {
						return nil
					}
					fmt.Fprint(out, text[len(printed):])
					printed = text
					return nil
				}
			}
			res, err := gen.Generate(cmd.Context(), [][]int{ids}, opts)
			if err != nil {
				return err
			}
			if tok != nil {
				fmt.Fprintln(out)
				return nil
			}
			return json.NewEncoder(out).Encode(map[string][]int{"ids": append(ids, res.Tokens[0]...)})
		},
	}
	mf.bind(cmd)
	f := cmd.Flags()
	f.StringVar(&prompt, "prompt", "", "prompt text (tokenized with the checkpoint's tokenizer.json)")
	f.StringVar(&promptIDs, "prompt-ids", "", "prompt as comma-separated token ids")
	f.BoolVar(&useChat, "chat", false, "wrap --prompt as a user turn with the checkpoint's chat template")
	f.Uint64Var(&seed, "seed", 0, "random seed for sampling")
	f.BoolVar(&doSample, "do-sample", false, "sample instead of greedy decoding")
	f.IntVar(&maxNew, "max-new-tokens", 0, "maximum new tokens")
	f.IntVar(&minNew, "min-new-tokens", 0, "minimum new tokens (end-of-sequence suppressed until then)")
	f.Float64Var(&temp, "temperature", 1, "sampling temperature")
	f.IntVar(&topK, "top-k", 0, "keep the k most likely tokens (0: off)")
	f.Float64Var(&topP, "top-p", 1, "nucleus sampling mass (1: off)")
	f.Float64Var(&minP, "min-p", 0, "drop tokens less likely than min-p times the most likely (0: off)")
	f.Float64Var(&repPen, "repetition-penalty", 1, "penalty for tokens already present (1: off)")
	f.StringVar(&stopIDs, "stop-ids", "", "extra token ids that end generation, comma-separated")
	sf.bind(cmd)
	return cmd
}

// encodePrompt tokenizes a prompt, through the chat template when asked.
func encodePrompt(tok *tokenizer.Tokenizer, prompt string, useChat bool) ([]int, error) {
	if !useChat {
		enc, err := tok.Encode(prompt, true)
		if err != nil {
			return nil, err
		}
		return enc.IDs, nil
	}
	t, opts, err := chat.FromConfig(tok.Config(), "")
	if err != nil {
		return nil, fmt.Errorf("--chat: %w", err)
	}
	opts.AddGenerationPrompt = true
	text, err := t.Render([]chat.Message{{Role: "user", Content: prompt}}, opts)
	if err != nil {
		return nil, fmt.Errorf("--chat: %w", err)
	}
	enc, err := tok.Encode(text, false)
	if err != nil {
		return nil, err
	}
	return enc.IDs, nil
}
