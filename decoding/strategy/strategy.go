// Package strategy decodes with a named strategy over the KV-cache
// generator of package models, composing the logits processors of package
// decoding: greedy and sampling; contrastive decoding against an amateur
// model or, without one, against the model itself with dropout (DCD);
// DoLa's layer contrast; self-speculative decoding (LayerSkip); dropout
// ensembles (MC dropout) with per-step uncertainty; uncertainty-guided
// Dropout Decoding; and, with any of them, Antislop's phrase bans and
// frequency/presence penalties. `lethe generate --strategy` is a thin layer
// over it.
package strategy

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"sort"

	"github.com/gomlx/compute"

	"github.com/lethe-ml/lethe/decoding"
	"github.com/lethe-ml/lethe/decoding/mc"
	"github.com/lethe-ml/lethe/decoding/uncertainty"
	"github.com/lethe-ml/lethe/models"
	"github.com/lethe-ml/lethe/peft"
	"github.com/lethe-ml/lethe/train/dropout"
)

// Names lists the strategies.
var Names = []string{"greedy", "sample", "contrastive", "dcd", "dola", "speculative", "mc-dropout", "dropout-decoding"}

// Config is a strategy and its settings; zero values take the defaults in
// brackets.
type Config struct {
	// Strategy is one of Names [greedy].
	Strategy string
	// Generation are the decoding settings (length, EOS, processors);
	// Strategy decides greedy (every strategy but sample) or sampling.
	Generation decoding.GenerationConfig
	// Alpha is the plausibility cutoff of contrastive, dcd and dola [0.1];
	// Beta the amateur's weight of contrastive and dcd [0.5].
	Alpha float64
	Beta  *float64
	// Dropout is the dropout rate of the dcd amateur, of mc-dropout's
	// passes [0.1] (0 is allowed: the passes then equal the model).
	Dropout *float64
	// DoLaLayers picks DoLa's premature layers: "high" or "low" (DoLa's
	// buckets) [high].
	DoLaLayers string
	// ExitLayer and Draft are speculative's draft depth [half the layers]
	// and draft length [4].
	ExitLayer, Draft int
	// Samples is the number of passes of mc-dropout and dropout-decoding
	// [5].
	Samples int
	// DropContext is the fraction of the most uncertain prompt tokens each
	// dropout-decoding pass removes [0.3]; Uncertain how many of the
	// prompt's tokens count as uncertain (the top fraction by MC-dropout
	// mutual information) [0.5].
	DropContext, Uncertain *float64
	// Ban are phrases Antislop keeps out of the output (Decode turns ids
	// into text for it); FoldCase matches them case-insensitively.
	Ban      []string
	FoldCase bool
	Decode   func(ids []int) string
	// AmateurPrompt, for contrastive and dcd, rewrites the amateur's
	// prompt: DCD's contrastive chain-of-thought demonstrations (see
	// decoding.DCDPrompts) before the question [the expert's prompt].
	AmateurPrompt func(prompt []int) []int
	// Frequency and Presence are OpenAI-style penalties on generated
	// tokens.
	Frequency, Presence float64
	// Seed seeds sampling and dropout masks.
	Seed uint64
}

// Result is a generation.
type Result struct {
	// Tokens are the new tokens.
	Tokens []int
	// MutualInformation holds, for mc-dropout, each step's mutual
	// information between the token distribution and the dropout masks
	// (nats).
	MutualInformation []float64 `json:",omitempty"`
	// Speculative holds speculative's acceptance statistics.
	Speculative *models.SpeculativeStats `json:",omitempty"`
	// Backtracks counts Antislop's backtracks.
	Backtracks int `json:",omitempty"`
	// DoLaLayers counts how often DoLa chose each premature layer.
	DoLaLayers map[int]int `json:",omitempty"`
}

// Decoder generates with one strategy.
type Decoder struct {
	cfg     Config
	m       *models.Model
	b       compute.Backend
	gen     *models.Generator
	layers  []int // dola's premature layers
	anti    *decoding.Antislop
	scorer  *mc.Scorer // dropout-decoding's context uncertainty
	dropout float64
}

func orDefault(p *float64, d float64) float64 {
	if p == nil {
		return d
	}
	return *p
}

// New prepares decoding m (with hooks, e.g. an adapter) on b; amateur, for
// contrastive, is a smaller model of the same vocabulary (nil: the model
// with dropout, as DCD).
func New(m *models.Model, b compute.Backend, hooks models.Hooks, amateur *models.Model, cfg Config) (*Decoder, error) {
	if cfg.Strategy == "" {
		cfg.Strategy = "greedy"
	}
	if !slices.Contains(Names, cfg.Strategy) {
		return nil, fmt.Errorf("strategy %q: not one of %v", cfg.Strategy, Names)
	}
	if cfg.Alpha == 0 {
		cfg.Alpha = 0.1
	}
	if cfg.Samples == 0 {
		cfg.Samples = 5
	}
	if cfg.Samples < 1 || cfg.Alpha < 0 || cfg.Alpha > 1 || orDefault(cfg.Beta, 0.5) < 0 {
		return nil, fmt.Errorf("strategy %s: samples must be positive, alpha in [0, 1] and beta >= 0", cfg.Strategy)
	}
	d := &Decoder{cfg: cfg, m: m, b: b, gen: models.NewGenerator(m, b), dropout: orDefault(cfg.Dropout, 0.1)}
	d.gen.Hooks = hooks
	if d.dropout < 0 || d.dropout >= 1 {
		return nil, fmt.Errorf("strategy %s: dropout must be in [0, 1), got %g", cfg.Strategy, d.dropout)
	}
	dropHooks := func() (models.Hooks, error) {
		reg, err := dropout.New(m, dropout.Config{Residual: d.dropout})
		if err != nil {
			return models.Hooks{}, err
		}
		d.gen.ShareWeights = true // dropout draws from the store's generator: training-mode graphs
		return peft.ComposeHooks(hooks, reg.Hooks()), nil
	}
	switch cfg.Strategy {
	case "contrastive", "dcd":
		if amateur != nil && cfg.Strategy == "contrastive" {
			a, err := amateur.FrozenIn(m.Store, "amateur")
			if err != nil {
				return nil, fmt.Errorf("amateur: %w", err)
			}
			if a.Config.VocabSize != m.Config.VocabSize {
				return nil, fmt.Errorf("amateur: vocabulary %d, the model's %d", a.Config.VocabSize, m.Config.VocabSize)
			}
			d.gen.Passes = []models.Pass{{Model: a}}
			break
		}
		h, err := dropHooks()
		if err != nil {
			return nil, err
		}
		d.gen.Passes = []models.Pass{{Hooks: h}}
	case "dola":
		which := cfg.DoLaLayers
		if which == "" {
			which = "high"
		}
		ls, err := decoding.DoLaLayers(m.Config.NumLayers, m.Config.TieWordEmbeddings, which)
		if err != nil {
			return nil, err
		}
		d.layers = ls
		d.gen.LayerLogits = ls
	case "mc-dropout", "dropout-decoding":
		if cfg.Strategy == "mc-dropout" {
			h, err := dropHooks()
			if err != nil {
				return nil, err
			}
			d.gen.Hooks = h
			for range cfg.Samples - 1 {
				d.gen.Passes = append(d.gen.Passes, models.Pass{Hooks: h})
			}
			break
		}
		for range cfg.Samples - 1 {
			d.gen.Passes = append(d.gen.Passes, models.Pass{Hooks: hooks})
		}
		s, err := mc.NewScorer(m, b, mc.Options{Passes: 8, Dropout: dropout.Config{Residual: max(d.dropout, 1e-6)}, Seed: cfg.Seed, Hooks: hooks})
		if err != nil {
			return nil, err
		}
		d.scorer = s
	case "speculative":
		if cfg.ExitLayer == 0 {
			d.cfg.ExitLayer = max(1, m.Config.NumLayers/2)
		}
	}
	if len(cfg.Ban) > 0 {
		if cfg.Decode == nil {
			return nil, errors.New("ban: needs Decode to turn ids into text")
		}
		a, err := decoding.NewAntislop(cfg.Ban, cfg.Decode, decoding.AntislopOptions{FoldCase: cfg.FoldCase})
		if err != nil {
			return nil, err
		}
		d.anti = a
	}
	return d, nil
}

// Generate continues prompt.
func (d *Decoder) Generate(ctx context.Context, prompt []int) (*Result, error) {
	if d.anti == nil {
		return d.once(ctx, prompt, nil, 0)
	}
	// Antislop: generate, find the first banned phrase, back up to its
	// first token, ban that token there, generate again from there.
	bans := decoding.Bans{}
	var kept []int
	res := &Result{}
	maxNew := d.cfg.Generation.MaxNewTokens
	for {
		cfg := d.cfg.Generation
		if maxNew > 0 {
			cfg.MaxNewTokens = maxNew - len(kept)
		}
		if maxNew > 0 && cfg.MaxNewTokens <= 0 {
			res.Tokens = kept
			return res, nil
		}
		r, err := d.once(ctx, append(slices.Clone(prompt), kept...), &bans, len(kept))
		if err != nil {
			return nil, err
		}
		all := append(slices.Clone(kept), r.Tokens...)
		k, found := d.backtrack(all, len(kept), &bans)
		if !found {
			r.Tokens, r.Backtracks = all, res.Backtracks
			return r, nil
		}
		res.Backtracks++
		if res.Backtracks > 1000 {
			return nil, errors.New("antislop: more than 1000 backtracks")
		}
		kept = k
	}
}

// backtrack checks the tokens from index from on one at a time, as
// Antislop's sampler does after every token, and backs up to the first
// banned phrase it has not accepted yet.
func (d *Decoder) backtrack(all []int, from int, bans *decoding.Bans) ([]int, bool) {
	for e := from + 1; e <= len(all); e++ {
		if kept, _, found := d.anti.Backtrack(all[:e], bans); found {
			return slices.Clone(kept), true
		}
	}
	return all, false
}

// offsetBans applies bans at positions counted from the first generated
// token of the whole answer.
type offsetBans struct {
	bans   *decoding.Bans
	offset int
}

func (o offsetBans) Process(logits []float32, _ []int, step int) { o.bans.Apply(logits, o.offset+step) }

// once runs the strategy once.
func (d *Decoder) once(ctx context.Context, prompt []int, bans *decoding.Bans, offset int) (*Result, error) {
	cfg := d.cfg.Generation
	cfg.DoSample = d.cfg.Strategy == "sample"
	opts := models.GenerateOptions{Config: cfg, Seed: d.cfg.Seed}
	if d.cfg.Frequency != 0 || d.cfg.Presence != 0 {
		opts.Processors = append(opts.Processors, decoding.FrequencyPresencePenalty{Frequency: d.cfg.Frequency, Presence: d.cfg.Presence})
	}
	if bans != nil {
		opts.Processors = append(opts.Processors, offsetBans{bans, offset})
	}
	res := &Result{}
	if d.gen.ShareWeights {
		if err := d.m.Store.SetRNGStateFromSeed(int64(d.cfg.Seed)); err != nil {
			return nil, err
		}
	}
	switch d.cfg.Strategy {
	case "speculative":
		if bans != nil || len(opts.Processors) > 0 {
			return nil, errors.New("speculative: bans and penalties are not supported (they change the verified distribution)")
		}
		g, st, err := d.gen.GenerateSpeculative(ctx, [][]int{prompt}, models.SpeculativeOptions{Config: cfg, ExitLayer: d.cfg.ExitLayer, Draft: d.cfg.Draft})
		if err != nil {
			return nil, err
		}
		res.Tokens, res.Speculative = g.Tokens[0], st
		return res, nil
	case "contrastive", "dcd":
		c := decoding.Contrastive{Alpha: d.cfg.Alpha, Beta: orDefault(d.cfg.Beta, 0.5)}
		opts.Combine = func(_, _ int, main []float32, passes, _ [][]float32) error { return c.Combine(main, passes[0]) }
		if ap := d.cfg.AmateurPrompt; ap != nil {
			opts.PassPrompts = func(_, _ int, p []int) []int { return ap(p) }
		}
	case "dola":
		res.DoLaLayers = map[int]int{}
		opts.Combine = func(_, _ int, main []float32, _, layers [][]float32) error {
			scores, chosen, err := decoding.DoLa(main, layers, d.cfg.Alpha)
			if err != nil {
				return err
			}
			res.DoLaLayers[d.layers[chosen]]++
			copy(main, scores)
			return nil
		}
	case "mc-dropout", "dropout-decoding":
		opts.Combine = func(_, _ int, main []float32, passes, _ [][]float32) error {
			mi := ensemble(main, passes)
			res.MutualInformation = append(res.MutualInformation, mi)
			return nil
		}
		if d.cfg.Strategy == "dropout-decoding" {
			drops, err := d.contextDrops(ctx, prompt)
			if err != nil {
				return nil, err
			}
			opts.PassPrompts = func(pass, _ int, p []int) []int {
				var out []int
				for j, id := range p {
					if !drops[pass][j] {
						out = append(out, id)
					}
				}
				return out
			}
		}
	}
	g, err := d.gen.Generate(ctx, [][]int{prompt}, opts)
	if err != nil {
		return nil, err
	}
	res.Tokens = g.Tokens[0]
	return res, nil
}

// ensemble replaces main by the log of the mean of the rows'
// probabilities (taken relative to the first row, so that equal rows give
// it back exactly) and returns the mutual information between the token
// and the pass (uncertainty.Token), in nats.
func ensemble(main []float32, passes [][]float32) float64 {
	rows := append([][]float32{main}, passes...)
	K := float64(len(rows))
	logp := make([][]float64, len(rows))
	for k, r := range rows {
		logp[k] = logSoftmax(r)
	}
	ts, err := uncertainty.Token(logp)
	if err != nil {
		return math.NaN()
	}
	for v := range main {
		first := logp[0][v]
		if math.IsInf(first, -1) {
			main[v] = float32(first)
			continue
		}
		var rel float64
		for k := range rows {
			rel += math.Exp(logp[k][v]-first) / K
		}
		main[v] = float32(first + math.Log(rel))
	}
	return ts.MutualInformation
}

func logSoftmax(r []float32) []float64 {
	m := math.Inf(-1)
	for _, v := range r {
		m = max(m, float64(v))
	}
	var z float64
	for _, v := range r {
		z += math.Exp(float64(v) - m)
	}
	out := make([]float64, len(r))
	lz := m + math.Log(z)
	for i, v := range r {
		out[i] = float64(v) - lz
	}
	return out
}

// contextDrops chooses, for each dropout-decoding pass, the prompt tokens
// it leaves out: a random DropContext share of the Uncertain share of the
// prompt's tokens with the highest MC-dropout mutual information (the
// first token, which nothing predicts, always stays).
func (d *Decoder) contextDrops(ctx context.Context, prompt []int) ([][]bool, error) {
	drops := make([][]bool, len(d.gen.Passes))
	if len(prompt) < 2 {
		for i := range drops {
			drops[i] = make([]bool, len(prompt))
		}
		return drops, nil
	}
	seq, err := d.scorer.Score(ctx, prompt[:1], prompt[1:])
	if err != nil {
		return nil, err
	}
	idx := make([]int, len(seq.Tokens))
	for i := range idx {
		idx[i] = i + 1
	}
	sort.SliceStable(idx, func(a, b int) bool {
		return seq.Tokens[idx[a]-1].MutualInformation > seq.Tokens[idx[b]-1].MutualInformation
	})
	nu := int(math.Round(orDefault(d.cfg.Uncertain, 0.5) * float64(len(idx))))
	frac := orDefault(d.cfg.DropContext, 0.3)
	rng := rand.New(rand.NewPCG(d.cfg.Seed, 0x6464))
	for p := range drops {
		drops[p] = make([]bool, len(prompt))
		for _, j := range idx[:nu] {
			if rng.Float64() < frac {
				drops[p][j] = true
			}
		}
	}
	return drops, nil
}
