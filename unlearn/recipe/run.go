package recipe

import (
	"context"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/gomlx/compute"
	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/gomlx/ml/model"
	"go.yaml.in/yaml/v3"

	"github.com/lethe-ml/lethe/data"
	"github.com/lethe-ml/lethe/data/tokenizer"
	"github.com/lethe-ml/lethe/internal/backend"
	"github.com/lethe-ml/lethe/models"
	"github.com/lethe-ml/lethe/peft"
	"github.com/lethe-ml/lethe/peft/lora"
	"github.com/lethe-ml/lethe/train"
	"github.com/lethe-ml/lethe/train/dropout"
	"github.com/lethe-ml/lethe/unlearn"
	"github.com/lethe-ml/lethe/unlearn/eval"
	"github.com/lethe-ml/lethe/unlearn/facts"
	"github.com/lethe-ml/lethe/unlearn/tofu"
)

// Files of a run folder.
const (
	ConfigFile  = "config.yaml"   // the resolved recipe
	SummaryFile = "metrics.json"  // Result
	MetricsFile = "metrics.jsonl" // one record per logged step
	ModelDir    = "model"         // the unlearned model (output.save_model)
	AdapterDir  = "adapter"       // the unlearning adapter (peft, output.save_model)
)

// Options are the settings of a run that are not part of the recipe.
type Options struct {
	// Log receives progress lines [io.Discard].
	Log io.Writer
	// Backend overrides model.backend (tests pass one to share it).
	Backend compute.Backend
	// EvalOnly evaluates the model (and reference) without unlearning.
	EvalOnly bool
	// Cache, shared by runs of several methods on one benchmark, keeps the
	// evaluations of the reference and of the model before unlearning.
	Cache *EvalCache
}

// EvalCache keeps evaluations of unchanged models between runs (see
// Options.Cache). The zero value is ready to use.
type EvalCache struct {
	mu sync.Mutex
	m  map[string]map[string]*eval.SplitResult
}

// evaluate returns the cached evaluation of the model in dir, or runs it.
func (c *EvalCache) evaluate(ctx context.Context, key string, run func() (map[string]*eval.SplitResult, error)) (map[string]*eval.SplitResult, error) {
	if c == nil {
		return run()
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if r, ok := c.m[key]; ok {
		return r, nil
	}
	r, err := run()
	if err != nil {
		return nil, err
	}
	if c.m == nil {
		c.m = map[string]map[string]*eval.SplitResult{}
	}
	c.m[key] = r
	return r, nil
}

// Result is what metrics.json holds.
type Result struct {
	Method string `json:"method,omitempty"`
	// Before and After are the evaluations of the model before and after
	// unlearning; Reference that of the retain-only model.
	Before    *eval.Report `json:"before"`
	After     *eval.Report `json:"after,omitempty"`
	Reference *eval.Report `json:"reference,omitempty"`
	// Steps, the losses of the first and last steps, and times.
	Steps          int     `json:"steps"`
	FirstLoss      float64 `json:"first_loss,omitempty"`
	LastLoss       float64 `json:"last_loss,omitempty"`
	UnlearnSeconds float64 `json:"unlearn_seconds"`
	Seconds        float64 `json:"seconds"`
	Backend        string  `json:"backend"`
	Trainable      int64   `json:"trainable_parameters,omitempty"`
	Model          string  `json:"model,omitempty"`
	Adapter        string  `json:"adapter,omitempty"`
}

// Run runs the recipe and writes the run folder.
func Run(ctx context.Context, cfg Config, opts Options) (*Result, error) {
	start := time.Now()
	log := opts.Log
	if log == nil {
		log = io.Discard
	}
	dir := cfg.Output.Dir
	if _, err := os.Stat(filepath.Join(dir, SummaryFile)); err == nil && !cfg.Output.Overwrite {
		return nil, fmt.Errorf("output.dir: %s holds a finished run (set output.overwrite=true to replace it)", dir)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("output.dir: %w", err)
	}
	y, err := yaml.Marshal(cfg)
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, ConfigFile), y, 0o644); err != nil {
		return nil, err
	}
	b := opts.Backend
	res := &Result{Method: cfg.Method.Name}
	if b == nil {
		var info backend.Info
		if b, info, err = backend.NewTraining(backend.Resolve(cfg.Model.Backend)); err != nil {
			return nil, fmt.Errorf("model.backend: %w", err)
		}
		backend.Log(log, info)
	}
	res.Backend = b.Description()
	lo := models.LoadOptions{}
	if d := cfg.Model.DType; d == "bfloat16" || d == "bf16" {
		lo.DType, lo.WeightDType = dtypes.BFloat16, dtypes.Float32
	}
	m, err := models.Load(cfg.Model.Path, lo)
	if err != nil {
		return nil, fmt.Errorf("model.path: %w", err)
	}
	tok, err := tokenizer.Load(cfg.Model.Path)
	if err != nil {
		return nil, fmt.Errorf("model.path: %w", err)
	}
	if cfg.Data.MUSE != nil {
		return runMUSE(ctx, cfg, opts, m, tok, b, lo, res, start, log)
	}
	examples, err := readData(cfg.Data)
	if err != nil {
		return nil, err
	}
	splits := map[string][]facts.Example{}
	for _, s := range facts.Splits {
		splits[s] = facts.Split(examples, s)
		if n := cfg.Data.Limit; n > 0 && len(splits[s]) > n {
			splits[s] = splits[s][:n]
		}
	}
	if len(splits[facts.SplitForget]) == 0 {
		return nil, fmt.Errorf("data.file: no %s examples", facts.SplitForget)
	}
	pf, err := newFormat(tok, cfg.Data)
	if err != nil {
		return nil, err
	}
	eo := eval.Options{MaxNewTokens: cfg.Eval.MaxNewTokens, Correct: pf.correct, StopIDs: pf.stopIDs}
	ro := eval.ReportOptions{Bootstrap: *cfg.Eval.Bootstrap, Confidence: cfg.Eval.Confidence, Seed: uint64(cfg.Training.Seed)}

	// Evaluations of unchanged models are cached under the model, the data
	// and the evaluation settings.
	key := func(model string) string {
		var tofu string
		if t := cfg.Data.TOFU; t != nil {
			tofu = t.Dir + "/" + t.Forget
		}
		return fmt.Sprintf("%s|%s|%s|%s|%d|%d|%s", model, cfg.Data.File, tofu, cfg.Data.Template, cfg.Data.Limit, cfg.Eval.MaxNewTokens, cfg.Model.DType)
	}
	// The retain-only reference, for forget quality and privacy leakage.
	var refForget *eval.SplitResult
	if cfg.Reference != "" {
		rs, err := opts.Cache.evaluate(ctx, key(cfg.Reference), func() (map[string]*eval.SplitResult, error) {
			rm, err := models.Load(cfg.Reference, lo)
			if err != nil {
				return nil, err
			}
			fmt.Fprintf(log, "lethe: evaluating the reference %s\n", cfg.Reference)
			em := &eval.Model{M: rm, Tokenizer: tok, Backend: b, BatchSize: cfg.Eval.BatchSize}
			return evaluateSplits(ctx, em, splits, eo, pf)
		})
		if err != nil {
			return nil, fmt.Errorf("reference: %w", err)
		}
		refForget = rs[facts.SplitForget]
		rep := eval.Summarize(rs[facts.SplitForget], rs[facts.SplitRetain], rs[facts.SplitHoldout], nil, ro)
		res.Reference = &rep
	}
	before, err := opts.Cache.evaluate(ctx, key(cfg.Model.Path), func() (map[string]*eval.SplitResult, error) {
		em := &eval.Model{M: m, Tokenizer: tok, Backend: b, BatchSize: cfg.Eval.BatchSize}
		fmt.Fprintf(log, "lethe: evaluating %s before unlearning\n", cfg.Model.Path)
		return evaluateSplits(ctx, em, splits, eo, pf)
	})
	if err != nil {
		return nil, err
	}
	beforeRep := eval.Summarize(before[facts.SplitForget], before[facts.SplitRetain], before[facts.SplitHoldout], refForget, ro)
	res.Before = &beforeRep
	var reg *dropout.Regularizer
	if cfg.Eval.Multiplicity.Samples > 0 {
		em := &eval.Model{M: m, Tokenizer: tok, Backend: b, BatchSize: cfg.Eval.BatchSize}
		if res.Before.Multiplicity, err = multiplicity(ctx, em, splits, eo, pf, cfg, log); err != nil {
			return nil, err
		}
		reg = em.Dropout
	}
	if opts.EvalOnly {
		res.Seconds = time.Since(start).Seconds()
		return res, train.WriteJSONAtomic(filepath.Join(dir, SummaryFile), res)
	}

	var (
		evalHooks models.Hooks
		adapter   *lora.Adapter
		abstain   func(context.Context, []string) ([]bool, error)
	)
	probe, err := unlearn.NewMethod(cfg.Method, m.Config.NumLayers, m.Config.HiddenSize, uint64(cfg.Training.Seed))
	if err != nil {
		return nil, err
	}
	switch {
	case probe.TrainingFree():
		t0 := time.Now()
		if abstain, err = fitKSD(ctx, m, b, tok, pf, probe, splits, log); err != nil {
			return nil, err
		}
		res.UnlearnSeconds = time.Since(t0).Seconds()
	case probe.DropsNeurons():
		t0 := time.Now()
		if err := runSeND(ctx, m, b, tok, pf, probe, splits, log); err != nil {
			return nil, err
		}
		res.UnlearnSeconds = time.Since(t0).Seconds()
	default:
		var u *unlearn.Unlearner
		var uopts unlearn.Options
		u, uopts, evalHooks, adapter, err = newUnlearner(m, b, cfg, res)
		if err != nil {
			return nil, err
		}
		if err := train1(ctx, m, u, uopts, tok, pf, cfg, splits, res, log); err != nil {
			return nil, err
		}
	}
	m.WeightsChanged()
	em := &eval.Model{M: m, Hooks: evalHooks, Tokenizer: tok, Backend: b, BatchSize: cfg.Eval.BatchSize,
		Abstain: abstain, Refusal: unlearn.Refusals[0]}
	fmt.Fprintf(log, "lethe: evaluating after %d steps of %s\n", res.Steps, cfg.Method.Name)
	after, err := evaluateSplits(ctx, em, splits, eo, pf)
	if err != nil {
		return nil, err
	}
	afterRep := eval.Summarize(after[facts.SplitForget], after[facts.SplitRetain], after[facts.SplitHoldout], refForget, ro)
	res.After = &afterRep
	if cfg.Eval.Multiplicity.Samples > 0 {
		em := &eval.Model{M: m, Hooks: evalHooks, Tokenizer: tok, Backend: b, BatchSize: cfg.Eval.BatchSize, Dropout: reg}
		if res.After.Multiplicity, err = multiplicity(ctx, em, splits, eo, pf, cfg, log); err != nil {
			return nil, err
		}
	}
	if err := saveOutput(cfg, m, adapter, res); err != nil {
		return nil, err
	}
	res.Seconds = time.Since(start).Seconds()
	return res, train.WriteJSONAtomic(filepath.Join(dir, SummaryFile), res)
}

// saveOutput writes the unlearned model or adapter when output.save_model
// asks for it.
func saveOutput(cfg Config, m *models.Model, adapter *lora.Adapter, res *Result) error {
	if !cfg.Output.SaveModel {
		return nil
	}
	if adapter != nil {
		res.Adapter = filepath.Join(cfg.Output.Dir, AdapterDir)
		return adapter.Save(res.Adapter)
	}
	res.Model = filepath.Join(cfg.Output.Dir, ModelDir)
	if err := m.Export(res.Model, models.ExportOptions{}); err != nil {
		return err
	}
	return models.CopyTokenizerFiles(res.Model, cfg.Model.Path, "")
}

// train1 runs a training-based method: SalUn masks, the loop or SLSG's
// single step, and task-vector negation.
func train1(ctx context.Context, m *models.Model, u *unlearn.Unlearner, uopts unlearn.Options, tok *tokenizer.Tokenizer, pf *format,
	cfg Config, splits map[string][]facts.Example, res *Result, log io.Writer) error {
	vars := trainedVars(m, uopts)
	if cfg.Method.Saliency > 0 {
		if err := applySaliency(u, uopts, vars, tok, pf, cfg, splits[facts.SplitForget], log); err != nil {
			return err
		}
	}
	return negating(u, vars, log, func() error {
		if u.Method().SingleStep() {
			t0 := time.Now()
			if err := runSLSG(ctx, m, u, uopts, tok, pf, cfg, splits, res, log); err != nil {
				return err
			}
			res.UnlearnSeconds = time.Since(t0).Seconds()
			return nil
		}
		return unlearnLoop(ctx, u, tok, pf, cfg, splits, res, log)
	})
}

// negating runs train and, for task_vector, negates the change it made to
// vars (task arithmetic: θ₀ − λ(θ − θ₀)).
func negating(u *unlearn.Unlearner, vars map[string]*model.Variable, log io.Writer, train func() error) error {
	negates, lambda := u.Method().Negates()
	var start0 map[string][]float32
	if negates {
		var err error
		if start0, err = hostValues(vars); err != nil {
			return err
		}
	}
	if err := train(); err != nil {
		return err
	}
	if negates {
		fmt.Fprintf(log, "lethe: negating the task vector (λ = %g)\n", lambda)
		return negate(vars, start0, lambda)
	}
	return nil
}

// fitKSD fits Key Space Detection on the forget and retain prompts and
// returns the abstention rule of the evaluation.
func fitKSD(ctx context.Context, m *models.Model, b compute.Backend, tok *tokenizer.Tokenizer, pf *format, meth *unlearn.Method,
	splits map[string][]facts.Example, log io.Writer) (func(context.Context, []string) ([]bool, error), error) {
	ids := func(prompts []string) ([][]int, error) {
		out := make([][]int, len(prompts))
		for i, p := range prompts {
			enc, err := tok.Encode(p, true)
			if err != nil {
				return nil, err
			}
			out[i] = enc.IDs
		}
		return out, nil
	}
	prompts := func(ex []facts.Example) ([]string, error) {
		var out []string
		for _, e := range ex {
			p, err := pf.prompt(e.Question)
			if err != nil {
				return nil, err
			}
			out = append(out, p)
		}
		return out, nil
	}
	fp, err := prompts(splits[facts.SplitForget])
	if err != nil {
		return nil, err
	}
	rp, err := prompts(splits[facts.SplitRetain])
	if err != nil {
		return nil, err
	}
	fi, err := ids(fp)
	if err != nil {
		return nil, err
	}
	ri, err := ids(rp)
	if err != nil {
		return nil, err
	}
	d, err := unlearn.NewKeySpaceDetector(ctx, m, b, models.Hooks{}, meth.Layer(), fi, ri, meth.Config().FalsePositiveRate)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(log, "lethe: ksd: layer %d, similarity threshold %.4f\n", d.Layer, d.Threshold)
	return func(ctx context.Context, prompts []string) ([]bool, error) {
		p, err := ids(prompts)
		if err != nil {
			return nil, err
		}
		return d.Refuse(ctx, p)
	}, nil
}

// runSeND drops the neurons most specific to the forget data.
func runSeND(ctx context.Context, m *models.Model, b compute.Backend, tok *tokenizer.Tokenizer, pf *format, meth *unlearn.Method,
	splits map[string][]facts.Example, log io.Writer) error {
	seqs := func(ex []facts.Example) ([][]int, error) {
		var out [][]int
		for _, e := range ex {
			p, err := pf.prompt(e.Question)
			if err != nil {
				return nil, err
			}
			enc, err := tok.Encode(p+pf.completion(e.Answer), true)
			if err != nil {
				return nil, err
			}
			out = append(out, enc.IDs)
		}
		return out, nil
	}
	fs, err := seqs(splits[facts.SplitForget])
	if err != nil {
		return err
	}
	rs, err := seqs(splits[facts.SplitRetain])
	if err != nil {
		return err
	}
	fa, err := unlearn.NeuronActivity(ctx, m, b, fs)
	if err != nil {
		return err
	}
	ra, err := unlearn.NeuronActivity(ctx, m, b, rs)
	if err != nil {
		return err
	}
	neurons, err := unlearn.SensitiveNeurons(fa, ra, meth.Config().DropFraction)
	if err != nil {
		return err
	}
	n := 0
	for _, l := range neurons {
		n += len(l)
	}
	fmt.Fprintf(log, "lethe: send: dropping %d feed-forward neurons (%.1f%% per layer)\n", n, 100*meth.Config().DropFraction)
	return unlearn.DropNeurons(m, neurons)
}

// multiplicity measures dropout predictive multiplicity on the forget and
// retain splits.
func multiplicity(ctx context.Context, em *eval.Model, splits map[string][]facts.Example, eo eval.Options, pf *format, cfg Config, log io.Writer) (map[string]eval.Multiplicity, error) {
	mc := cfg.Eval.Multiplicity
	out := map[string]eval.Multiplicity{}
	for _, s := range []string{facts.SplitForget, facts.SplitRetain} {
		fmt.Fprintf(log, "lethe: predictive multiplicity on %s: %d dropout samples at rate %g\n", s, mc.Samples, mc.Rate)
		its, err := pf.items(splits[s])
		if err != nil {
			return nil, err
		}
		r, err := em.DropoutMultiplicity(ctx, its, eo, mc.Rate, mc.Samples, uint64(cfg.Training.Seed))
		if err != nil {
			return nil, fmt.Errorf("multiplicity on %s: %w", s, err)
		}
		out[s] = r
	}
	return out, nil
}

// readData reads the benchmark file, or TOFU, or generates the built-in
// benchmark.
func readData(c DataConfig) ([]facts.Example, error) {
	if c.TOFU != nil {
		ex, err := tofu.Load(c.TOFU.Dir, c.TOFU.Forget)
		if err != nil {
			return nil, fmt.Errorf("data.tofu: %w", err)
		}
		return ex, nil
	}
	if c.File == "" {
		return facts.Default()
	}
	ex, err := facts.Read(c.File)
	if err != nil {
		return nil, fmt.Errorf("data.file: %w", err)
	}
	return ex, nil
}

// items turns examples into evaluation items.
func (pf *format) items(ex []facts.Example) ([]eval.Item, error) {
	out := make([]eval.Item, len(ex))
	for i, e := range ex {
		prompt, err := pf.prompt(e.Question)
		if err != nil {
			return nil, err
		}
		it := eval.Item{Prompt: prompt, Answer: pf.completion(e.Answer), Short: e.Answer}
		if e.ParaphrasedAnswer != "" {
			it.Paraphrased = pf.completion(e.ParaphrasedAnswer)
		}
		for _, p := range e.PerturbedAnswers {
			it.Perturbed = append(it.Perturbed, pf.completion(p))
		}
		out[i] = it
	}
	return out, nil
}

// evaluateSplits evaluates a model on the three splits.
func evaluateSplits(ctx context.Context, em *eval.Model, splits map[string][]facts.Example, eo eval.Options, pf *format) (map[string]*eval.SplitResult, error) {
	out := map[string]*eval.SplitResult{}
	for _, s := range facts.Splits {
		its, err := pf.items(splits[s])
		if err != nil {
			return nil, err
		}
		r, err := em.Split(ctx, its, eo)
		if err != nil {
			return nil, fmt.Errorf("evaluate the %s split: %w", s, err)
		}
		out[s] = r
	}
	return out, nil
}

// newUnlearner builds the method and the trainer: full weights with a
// frozen copy as reference, or a LoRA adapter whose base is the reference.
// It returns the hooks evaluations apply afterwards and the adapter.
func newUnlearner(m *models.Model, b compute.Backend, cfg Config, res *Result) (*unlearn.Unlearner, unlearn.Options, models.Hooks, *lora.Adapter, error) {
	meth, err := unlearn.NewMethod(cfg.Method, m.Config.NumLayers, m.Config.HiddenSize, uint64(cfg.Training.Seed))
	if err != nil {
		return nil, unlearn.Options{}, models.Hooks{}, nil, err
	}
	t := cfg.Training
	opts := unlearn.Options{Method: meth, Layout: unlearn.Layout{t.ForgetBatch, t.RetainBatch, 0},
		Optimizer: cfg.Optimizer, Seed: t.Seed}
	if meth.NeedsAlternate() {
		opts.Layout[unlearn.Alternate] = t.ForgetBatch
	}
	var evalHooks models.Hooks
	var adapter *lora.Adapter
	if cfg.PEFT.Method == "lora" {
		if meth.RandomReference() {
			return nil, opts, evalHooks, nil, fmt.Errorf("method.name: stochastic_teacher needs a random teacher copy of the full model; leave out peft")
		}
		if cfg.Method.Saliency > 0 {
			return nil, opts, evalHooks, nil, fmt.Errorf("method.saliency: SalUn masks full weights; leave out peft")
		}
		if meth.Name() == "task_vector" {
			return nil, opts, evalHooks, nil, fmt.Errorf("method.name: task_vector negates full weights; leave out peft")
		}
		lc := lora.Config{R: cfg.PEFT.R, Alpha: cfg.PEFT.LoraAlpha, UseRSLoRA: cfg.PEFT.UseRSLoRA, UseDoRA: cfg.PEFT.UseDoRA}
		if lc.TargetModules, err = peft.ParseTargets(cfg.PEFT.TargetModules, "peft.target_modules"); err != nil {
			return nil, opts, evalHooks, nil, err
		}
		if lc.TargetModules.IsZero() {
			lc.TargetModules = peft.Regexp(peft.AllLinear)
		}
		if adapter, err = lora.Attach(m, "unlearn", lc, uint64(t.Seed)); err != nil {
			return nil, opts, evalHooks, nil, fmt.Errorf("peft: %w", err)
		}
		opts.Params, opts.Vars, opts.Hooks = adapter.Params(), adapter.Vars(), adapter.Hooks(true)
		evalHooks = adapter.Hooks(false)
	} else {
		opts.Params = m.ParamNames()
		if meth.NeedsReference() {
			if opts.Reference, err = m.Frozen("reference"); err != nil {
				return nil, opts, evalHooks, nil, err
			}
			if meth.RandomReference() {
				if err := randomize(opts.Reference, uint64(t.Seed)); err != nil {
					return nil, opts, evalHooks, nil, err
				}
			}
		}
		if cfg.Method.Saliency > 0 {
			if opts.GradMasks, err = maskVariables(m, trainedVars(m, opts)); err != nil {
				return nil, opts, evalHooks, nil, err
			}
		}
	}
	for _, name := range opts.Params {
		v, ok := opts.Vars[name]
		if !ok {
			v, _ = m.Param(name)
		}
		res.Trainable += int64(v.Shape().Size())
	}
	u, err := unlearn.NewUnlearner(m, b, opts)
	return u, opts, evalHooks, adapter, err
}

// applySaliency sets SalUn's masks from the objective's gradient on the
// whole forget split.
func applySaliency(u *unlearn.Unlearner, opts unlearn.Options, vars map[string]*model.Variable, tok *tokenizer.Tokenizer, pf *format, cfg Config, forget []facts.Example, log io.Writer) error {
	t := cfg.Training
	sum := map[string][]float32{}
	for start := 0; start < len(forget); start += t.ForgetBatch {
		var ss []sample
		for _, e := range forget[start:min(start+t.ForgetBatch, len(forget))] {
			s, err := pf.encode(tok, e, pf.completion(e.Answer), t.MaxLength)
			if err != nil {
				return err
			}
			ss = append(ss, s)
		}
		g, err := u.Gradients(batch(ss, t.MaxLength))
		if err != nil {
			return fmt.Errorf("saliency: %w", err)
		}
		for name, v := range g {
			acc := sum[name]
			if acc == nil {
				acc = make([]float32, len(v))
				sum[name] = acc
			}
			for i, x := range v {
				acc[i] += float32(math.Abs(float64(x)))
			}
		}
	}
	masks, thr := saliencyMasks(sum, cfg.Method.Saliency)
	kept, total := 0, 0
	for _, m := range masks {
		for _, v := range m {
			kept += int(v)
			total++
		}
	}
	fmt.Fprintf(log, "lethe: SalUn: updating %d of %d weights (|gradient| >= %.3g)\n", kept, total, thr)
	return setValues(opts.GradMasks, masks)
}

// sample is one tokenized row: prompt and completion, loss on the latter.
type sample struct{ ids, labels []int32 }

func encode(tok *tokenizer.Tokenizer, prompt, completion string, maxLen int) (sample, error) {
	p, err := tok.Encode(prompt, true)
	if err != nil {
		return sample{}, err
	}
	c, err := tok.Encode(completion, false)
	if err != nil {
		return sample{}, err
	}
	var s sample
	for _, id := range p.IDs {
		s.ids, s.labels = append(s.ids, int32(id)), append(s.labels, data.IgnoreIndex)
	}
	for _, id := range c.IDs {
		s.ids, s.labels = append(s.ids, int32(id)), append(s.labels, int32(id))
	}
	if len(s.ids) > maxLen {
		s.ids, s.labels = s.ids[:maxLen], s.labels[:maxLen]
	}
	return s, nil
}

// batch right-pads samples to L tokens.
func batch(ss []sample, L int) *data.Batch {
	b := &data.Batch{Size: len(ss), Length: L, Examples: len(ss)}
	for _, s := range ss {
		for j := range L {
			if j < len(s.ids) {
				b.InputIDs = append(b.InputIDs, s.ids[j])
				b.Labels = append(b.Labels, s.labels[j])
				b.AttentionMask = append(b.AttentionMask, 1)
				b.PositionIDs = append(b.PositionIDs, int32(j))
				b.SegmentIDs = append(b.SegmentIDs, 1)
				b.Tokens++
				if s.labels[j] >= 0 {
					b.LossTokens++
				}
				continue
			}
			b.InputIDs = append(b.InputIDs, 0)
			b.Labels = append(b.Labels, data.IgnoreIndex)
			b.AttentionMask = append(b.AttentionMask, 0)
			b.PositionIDs = append(b.PositionIDs, 0)
			b.SegmentIDs = append(b.SegmentIDs, 0)
		}
	}
	return b
}

// unlearnLoop encodes the benchmark's forget and retain examples (and, for
// dpo, each forget question with a refusal) and runs the optimizer steps.
func unlearnLoop(ctx context.Context, u *unlearn.Unlearner, tok *tokenizer.Tokenizer, pf *format, cfg Config, splits map[string][]facts.Example, res *Result, log io.Writer) error {
	t := cfg.Training
	enc := func(ex []facts.Example, completion func(i int, e facts.Example) string) ([]sample, error) {
		var out []sample
		for i, e := range ex {
			s, err := pf.encode(tok, e, completion(i, e), t.MaxLength)
			if err != nil {
				return nil, err
			}
			out = append(out, s)
		}
		return out, nil
	}
	answer := func(_ int, e facts.Example) string { return pf.completion(e.Answer) }
	forget, err := enc(splits[facts.SplitForget], answer)
	if err != nil {
		return err
	}
	retain, err := enc(splits[facts.SplitRetain], answer)
	if err != nil {
		return err
	}
	refusals := cfg.Data.Refusals
	if len(refusals) == 0 {
		refusals = unlearn.Refusals
	}
	alternate, err := enc(splits[facts.SplitForget], func(i int, _ facts.Example) string { return pf.completion(refusals[i%len(refusals)]) })
	if err != nil {
		return err
	}
	return loop(ctx, u, forget, retain, alternate, cfg, res, log)
}

// loop runs the optimizer steps over tokenized rows: forget rows in a
// seeded order, cycled, with their alternates (dpo); retain rows drawn at
// random.
func loop(ctx context.Context, u *unlearn.Unlearner, forget, retain, alternate []sample, cfg Config, res *Result, log io.Writer) error {
	t := cfg.Training
	rng := rand.New(rand.NewPCG(uint64(t.Seed), 0x756e6c))
	order := rng.Perm(len(forget))
	metrics, err := train.OpenMetricsLog(filepath.Join(cfg.Output.Dir, MetricsFile), -1)
	if err != nil {
		return err
	}
	defer metrics.Close()
	prog := train.Progress{Total: t.Steps}
	prog.Start(0)
	start := time.Now()
	next := 0
	for step := 1; step <= t.Steps; step++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		var fs, as, rs []sample
		for range min(t.ForgetBatch, len(forget)) {
			if next == len(order) {
				order, next = rng.Perm(len(forget)), 0
			}
			fs = append(fs, forget[order[next]])
			if alternate != nil {
				as = append(as, alternate[order[next]])
			}
			next++
		}
		if len(retain) > 0 {
			for range t.RetainBatch {
				rs = append(rs, retain[rng.IntN(len(retain))])
			}
		}
		var alt *data.Batch
		if u.Method().NeedsAlternate() {
			alt = batch(as, t.MaxLength)
		}
		var rb *data.Batch
		if len(rs) > 0 {
			rb = batch(rs, t.MaxLength)
		}
		lr := cfg.Schedule.LR(cfg.Optimizer.LR, step-1, t.Steps)
		r, err := u.Step(batch(fs, t.MaxLength), rb, alt, lr)
		if err != nil {
			return fmt.Errorf("step %d: %w", step, err)
		}
		if step == 1 {
			res.FirstLoss = r.Loss
		}
		res.LastLoss, res.Steps = r.Loss, step
		if step%t.LogEvery == 0 || step == t.Steps {
			rate := float64(step*(t.ForgetBatch+t.RetainBatch)*t.MaxLength) / time.Since(start).Seconds()
			fmt.Fprintln(log, prog.Line(step, r.Loss, lr, r.GradNorm, rate))
			if err := metrics.Write(train.Record{Step: step, Values: map[string]float64{"loss": r.Loss, "lr": lr, "grad_norm": r.GradNorm}}); err != nil {
				return err
			}
		}
	}
	res.UnlearnSeconds = time.Since(start).Seconds()
	return nil
}
