package main

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/gomlx/compute"
	"github.com/spf13/cobra"

	"github.com/lethe-ml/lethe/data/tokenizer"
	"github.com/lethe-ml/lethe/decoding"
	"github.com/lethe-ml/lethe/decoding/strategy"
	"github.com/lethe-ml/lethe/models"
)

// strategyFlags are `lethe generate`'s strategy flags.
type strategyFlags struct {
	strategy, amateur, dolaLayers string
	amateurPrefix                 string
	alpha, beta, dropout          float64
	exitLayer, draft, samples     int
	dropContext                   float64
	ban                           []string
	frequency, presence           float64
}

func (f *strategyFlags) bind(cmd *cobra.Command) {
	fs := cmd.Flags()
	fs.StringVar(&f.strategy, "strategy", "", "decoding strategy: "+strings.Join(strategy.Names, ", "))
	fs.StringVar(&f.amateur, "amateur", "", "contrastive: the amateur checkpoint (same vocabulary) [the model with dropout]")
	fs.StringVar(&f.amateurPrefix, "amateur-prefix", "", "contrastive, dcd: text put before the amateur's prompt (DCD's contrastive chain-of-thought demonstrations)")
	fs.Float64Var(&f.alpha, "alpha", 0.1, "contrastive, dcd, dola: plausibility cutoff (share of the top probability)")
	fs.Float64Var(&f.beta, "beta", 0.5, "contrastive, dcd: the amateur's weight")
	fs.Float64Var(&f.dropout, "dropout", 0.1, "dcd, mc-dropout: dropout rate of the stochastic passes")
	fs.StringVar(&f.dolaLayers, "dola-layers", "high", "dola: premature layer bucket, high or low")
	fs.IntVar(&f.exitLayer, "exit-layer", 0, "speculative: draft layers [half of them]")
	fs.IntVar(&f.draft, "draft", 4, "speculative: tokens drafted per verification")
	fs.IntVar(&f.samples, "samples", 5, "mc-dropout, dropout-decoding: passes")
	fs.Float64Var(&f.dropContext, "drop-context", 0.3, "dropout-decoding: share of the uncertain prompt tokens each pass drops")
	fs.StringArrayVar(&f.ban, "ban", nil, "a phrase to keep out of the output (Antislop backtracking); repeat for more")
	fs.Float64Var(&f.frequency, "frequency-penalty", 0, "subtract this times the count of each generated token from its logit")
	fs.Float64Var(&f.presence, "presence-penalty", 0, "subtract this from the logits of generated tokens")
}

// run generates with the strategy and prints the ids (asIDs) or the text.
func (f *strategyFlags) run(cmd *cobra.Command, m *models.Model, b compute.Backend, hooks models.Hooks, tok *tokenizer.Tokenizer,
	cfg decoding.GenerationConfig, prompt []int, seed uint64, asIDs bool) error {
	dropout, dropContext, beta := f.dropout, f.dropContext, f.beta
	sc := strategy.Config{Strategy: f.strategy, Generation: cfg, Alpha: f.alpha, Beta: &beta, Dropout: &dropout,
		DoLaLayers: f.dolaLayers, ExitLayer: f.exitLayer, Draft: f.draft, Samples: f.samples, DropContext: &dropContext,
		Ban: f.ban, Frequency: f.frequency, Presence: f.presence, Seed: seed}
	if tok == nil && (len(f.ban) > 0 || f.amateurPrefix != "") {
		t, err := tokenizer.Load(m.Dir)
		if err != nil {
			return fmt.Errorf("--ban, --amateur-prefix: %w", err)
		}
		tok = t
	}
	if len(f.ban) > 0 {
		sc.Decode = func(ids []int) string { s, _ := tok.Decode(ids, true); return s }
	}
	if f.amateurPrefix != "" {
		enc, err := tok.Encode(f.amateurPrefix, true) // with the tokenizer's BOS
		if err != nil {
			return err
		}
		bos, _ := tok.Encode("", true)
		sc.AmateurPrompt = func(p []int) []int {
			// The prefix (with BOS) replaces the prompt's own BOS, if any.
			rest := p
			if n := len(bos.IDs); n > 0 && len(p) >= n && slices.Equal(p[:n], bos.IDs) {
				rest = p[n:]
			}
			return append(slices.Clone(enc.IDs), rest...)
		}
	}
	var amateur *models.Model
	if f.amateur != "" {
		a, err := models.Load(f.amateur, models.LoadOptions{DType: m.DType})
		if err != nil {
			return fmt.Errorf("--amateur: %w", err)
		}
		amateur = a
	}
	d, err := strategy.New(m, b, hooks, amateur, sc)
	if err != nil {
		return err
	}
	res, err := d.Generate(cmd.Context(), prompt)
	if err != nil {
		return err
	}
	errOut := cmd.ErrOrStderr()
	if st := res.Speculative; st != nil {
		fmt.Fprintf(errOut, "lethe: speculative: %d drafted, %d accepted (%.1f%%), %d draft and %d verify passes\n",
			st.Drafted, st.Accepted, 100*st.AcceptanceRate, st.DraftPasses, st.VerifyPasses)
	}
	if len(res.MutualInformation) > 0 {
		js, _ := json.Marshal(res.MutualInformation)
		fmt.Fprintf(errOut, "lethe: mutual information per step: %s\n", js)
	}
	if res.Backtracks > 0 {
		fmt.Fprintf(errOut, "lethe: antislop: %d backtracks\n", res.Backtracks)
	}
	out := cmd.OutOrStdout()
	if asIDs {
		return json.NewEncoder(out).Encode(map[string][]int{"ids": append(prompt, res.Tokens...)})
	}
	text, err := tok.Decode(res.Tokens, true)
	if err != nil {
		return err
	}
	fmt.Fprintln(out, text)
	return nil
}
