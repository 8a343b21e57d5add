package recipe

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"time"

	"github.com/gomlx/compute"

	"github.com/lethe-ml/lethe/data/tokenizer"
	"github.com/lethe-ml/lethe/models"
	"github.com/lethe-ml/lethe/train"
	"github.com/lethe-ml/lethe/unlearn/eval"
	"github.com/lethe-ml/lethe/unlearn/muse"
)

// MUSEConfig runs MUSE's protocol (package muse): unlearn the raw forget
// corpus with a retain corpus, and measure verbatim and knowledge
// memorisation and privacy leakage before and after.
type MUSEConfig struct {
	// Dir is a MUSE corpus folder as downloaded (MUSE-News, MUSE-Books).
	Dir string `yaml:"dir" json:"dir"`
	// Forget and Retain are the raw splits trained on [forget; retain1].
	Forget string `yaml:"forget" json:"forget"`
	Retain string `yaml:"retain" json:"retain"`
	// VerbMemTokens and KnowMemTokens bound the generations [128; 32].
	VerbMemTokens int `yaml:"verbmem_tokens" json:"verbmem_tokens,omitempty"`
	KnowMemTokens int `yaml:"knowmem_tokens" json:"knowmem_tokens,omitempty"`
}

// museReport maps MUSE's numbers onto the recipe's report: forget and
// retain accuracy are KnowMem on the forget and retain questions (ROUGE-L
// F1), MIA AUC is privleak's Min-K%++ AUC of forget against holdout texts,
// model utility is KnowMem retain (MUSE's utility criterion); forget
// quality and holdout accuracy have no MUSE counterpart and are null.
// Extra holds all of MUSE's numbers under their own names.
func museReport(r muse.Report) *eval.Report {
	return &eval.Report{
		ForgetAccuracy: r.KnowMemForget,
		RetainAccuracy: r.KnowMemRetain,
		MIAAUC:         r.MIAAUC,
		ModelUtility:   r.KnowMemRetain,
		Extra: map[string]float64{"verbmem_forget": r.VerbMemForget, "knowmem_forget": r.KnowMemForget,
			"knowmem_retain": r.KnowMemRetain, "privleak": r.PrivLeak, "privleak_auc": r.MIAAUC},
		NotApplicable: []string{"holdout_accuracy", "forget_quality"},
	}
}

// chunks tokenizes documents and cuts them into rows of at most maxLen
// tokens, the loss on every token (as MUSE trains on its raw corpora).
// The first row of a document starts with the tokenizer's special tokens.
func chunks(tok *tokenizer.Tokenizer, docs []muse.Text, maxLen int) ([]sample, error) {
	var out []sample
	for i, d := range docs {
		enc, err := tok.Encode(d.Text, true)
		if err != nil {
			return nil, fmt.Errorf("document %d: %w", i, err)
		}
		for lo := 0; lo < len(enc.IDs); lo += maxLen {
			var s sample
			for _, id := range enc.IDs[lo:min(lo+maxLen, len(enc.IDs))] {
				s.ids, s.labels = append(s.ids, int32(id)), append(s.labels, int32(id))
			}
			if len(s.ids) > 1 {
				out = append(out, s)
			}
		}
	}
	return out, nil
}

// runMUSE is Run for data.muse: evaluate the reference (its privleak AUC
// is the retrained model's), the model before, unlearn on the raw forget
// corpus, evaluate after.
func runMUSE(ctx context.Context, cfg Config, opts Options, m *models.Model, tok *tokenizer.Tokenizer, b compute.Backend,
	lo models.LoadOptions, res *Result, start time.Time, log io.Writer) (*Result, error) {
	mc := cfg.Data.MUSE
	d, err := muse.Load(mc.Dir)
	if err != nil {
		return nil, fmt.Errorf("data.muse.dir: %w", err)
	}
	mo := muse.Options{VerbMemTokens: mc.VerbMemTokens, KnowMemTokens: mc.KnowMemTokens}
	evaluate := func(mm *models.Model, hooks models.Hooks, what string) (muse.Report, error) {
		fmt.Fprintf(log, "lethe: MUSE evaluation of %s\n", what)
		em := &eval.Model{M: mm, Hooks: hooks, Tokenizer: tok, Backend: b, BatchSize: cfg.Eval.BatchSize}
		return muse.Evaluate(ctx, em, d, mo)
	}
	if cfg.Reference != "" {
		rm, err := models.Load(cfg.Reference, lo)
		if err != nil {
			return nil, fmt.Errorf("reference: %w", err)
		}
		rr, err := evaluate(rm, models.Hooks{}, "the reference "+cfg.Reference)
		if err != nil {
			return nil, fmt.Errorf("reference: %w", err)
		}
		rr.PrivLeak = 0
		res.Reference = museReport(rr)
		mo.RetrainAUC = &rr.MIAAUC
	}
	br, err := evaluate(m, models.Hooks{}, cfg.Model.Path+" before unlearning")
	if err != nil {
		return nil, err
	}
	res.Before = museReport(br)
	if opts.EvalOnly {
		res.Seconds = time.Since(start).Seconds()
		return res, train.WriteJSONAtomic(filepath.Join(cfg.Output.Dir, SummaryFile), res)
	}

	read := func(split string) ([]sample, error) {
		docs, err := muse.Raw(mc.Dir, split)
		if err != nil {
			return nil, err
		}
		return chunks(tok, docs, cfg.Training.MaxLength)
	}
	forget, err := read(mc.Forget)
	if err != nil {
		return nil, fmt.Errorf("data.muse.forget: %w", err)
	}
	var retain []sample
	if cfg.Training.RetainBatch > 0 {
		if retain, err = read(mc.Retain); err != nil {
			return nil, fmt.Errorf("data.muse.retain: %w", err)
		}
	}
	fmt.Fprintf(log, "lethe: MUSE: %d forget and %d retain rows of at most %d tokens\n", len(forget), len(retain), cfg.Training.MaxLength)
	u, uopts, evalHooks, adapter, err := newUnlearner(m, b, cfg, res)
	if err != nil {
		return nil, err
	}
	if err := negating(u, trainedVars(m, uopts), log, func() error {
		return loop(ctx, u, forget, retain, nil, cfg, res, log)
	}); err != nil {
		return nil, err
	}
	m.WeightsChanged()
	ar, err := evaluate(m, evalHooks, fmt.Sprintf("%s after %d steps of %s", cfg.Model.Path, res.Steps, cfg.Method.Name))
	if err != nil {
		return nil, err
	}
	res.After = museReport(ar)
	if err := saveOutput(cfg, m, adapter, res); err != nil {
		return nil, err
	}
	res.Seconds = time.Since(start).Seconds()
	return res, train.WriteJSONAtomic(filepath.Join(cfg.Output.Dir, SummaryFile), res)
}

// museMethodError rejects the methods MUSE's raw-text protocol cannot run:
// those needing questions (dpo's refusals, KSD's prompts, SeND's and SLSG's
// per-question passes) or SalUn's saliency pass.
func museMethodError(c *Config) error {
	switch c.Method.Name {
	case "dpo", "ksd", "send", "slsg":
		return fmt.Errorf("method.name: %s needs question/answer data; data.muse trains on raw text (use grad_ascent, grad_diff, npo, simnpo, rmu, undial, wga, mudman, stochastic_teacher or task_vector)", c.Method.Name)
	}
	if c.Method.Saliency > 0 {
		return fmt.Errorf("method.saliency: not available with data.muse")
	}
	return nil
}
