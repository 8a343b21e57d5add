package finetune

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gomlx/compute"
	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/gomlx/ml/model"
	"go.yaml.in/yaml/v3"

	"github.com/lethe-ml/lethe/data"
	"github.com/lethe-ml/lethe/data/tokenizer"
	"github.com/lethe-ml/lethe/internal/backend"
	"github.com/lethe-ml/lethe/internal/memstat"
	"github.com/lethe-ml/lethe/models"
	"github.com/lethe-ml/lethe/peft"
	"github.com/lethe-ml/lethe/train"
	"github.com/lethe-ml/lethe/train/dropout"
)

// Files and folders of a run folder.
const (
	ConfigFile     = "config.yaml"  // the resolved recipe
	SummaryFile    = "metrics.json" // Result, rewritten at every evaluation and at the end
	CheckpointsDir = "checkpoints"  // step-NNNNNNN/ folders (train.SaveCheckpoint)
	ModelDir       = "model"        // the fine-tuned (or merged) checkpoint
	AdapterDir     = "adapter"      // the trained adapter, in PEFT's format
)

// Options are the settings of a run that are not part of the recipe.
type Options struct {
	// Log receives the progress lines and notices [io.Discard].
	Log io.Writer
	// Resume continues the run in Output.Dir from its latest checkpoint.
	Resume bool
	// Backend is used instead of creating the one Model.Backend names.
	Backend compute.Backend
	// Objective, when set, replaces the causal-LM objective (distillation:
	// package distill/recipe). It is called once the model, its adapters,
	// dropout and the evaluation batches exist.
	Objective func(ObjectiveInfo) (*Objective, error)
}

// ObjectiveInfo is what Options.Objective builds an objective from.
type ObjectiveInfo struct {
	Model     *models.Model
	Tokenizer *tokenizer.Tokenizer
	Backend   compute.Backend
	// Hooks are the training hooks (adapters and dropout), EvalHooks the
	// evaluation hooks (adapters), HeadSamples the multi-sample dropout
	// samples of the LM head.
	Hooks, EvalHooks models.Hooks
	HeadSamples      int
	// EvalBatches are the held-out batches (data.eval).
	EvalBatches []*data.Batch
	// Log receives progress lines.
	Log io.Writer
}

// Objective is a training objective in place of the causal-LM loss.
type Objective struct {
	// Loss is the objective of training graphs; evaluation graphs (train
	// false) should return the causal-LM loss, so that eval_loss and early
	// stopping mean what they do in fine-tuning.
	Loss train.LossFunc
	// Params and Vars are trained along with the model's (or adapter's)
	// parameters, e.g. the projections of hidden-state hints.
	Params []string
	Vars   map[string]*model.Variable
	// Prepare, when set, sees every training batch before its step (step
	// counts from 0) and returns the batch to train on: side inputs (an
	// offline teacher's top-k), sequences the student generated.
	Prepare func(ctx context.Context, b *data.Batch, step int) (*data.Batch, error)
	// Finish, when set, runs after the last step, before the model is
	// exported: final measurements.
	Finish func(ctx context.Context) error
}

// Result summarises a run; Run writes it to metrics.json.
type Result struct {
	// Steps is the number of optimizer steps done, of TotalSteps planned.
	Steps      int `json:"steps"`
	TotalSteps int `json:"total_steps"`
	// Epochs is the number of epochs begun.
	Epochs int `json:"epochs"`
	// TrainLoss is the token-weighted mean loss of the last LogEvery steps;
	// FirstTrainLoss that of the first step.
	TrainLoss      float64 `json:"train_loss"`
	FirstTrainLoss float64 `json:"first_train_loss"`
	// Eval is the last evaluation and InitialEval the one before training
	// (training.eval_at_start), when there is evaluation data.
	Eval        *train.EvalResult `json:"eval,omitempty"`
	InitialEval *train.EvalResult `json:"initial_eval,omitempty"`
	// BestEvalLoss and BestStep are the best evaluation so far.
	BestEvalLoss float64 `json:"best_eval_loss,omitempty"`
	BestStep     int     `json:"best_step,omitempty"`
	// StoppedEarly says early stopping ended the run.
	StoppedEarly bool `json:"stopped_early"`
	// Tokens is the number of (non-padding) input tokens trained on;
	// TokensPerSecond their rate over the training steps (compilation of
	// the first step and evaluations excluded); Seconds the training time
	// (steps only, across resumptions).
	Tokens          int64   `json:"tokens"`
	TokensPerSecond float64 `json:"tokens_per_second"`
	Seconds         float64 `json:"seconds"`
	// PeakMemoryBytes is the peak resident memory of the process (host
	// memory; device memory of an accelerator is not included).
	PeakMemoryBytes int64 `json:"peak_memory_bytes"`
	// Backend describes the backend.
	Backend string `json:"backend"`
	// Trainable is the number of trained parameters (scalars).
	Trainable int64 `json:"trainable_parameters"`
	// Model and Adapter are the folders written at the end, if any.
	Model   string `json:"model,omitempty"`
	Adapter string `json:"adapter,omitempty"`
}

// Run fine-tunes as cfg says, in the run folder cfg.Output.Dir. It stops
// at the end of the planned steps, when early stopping says so, or when
// ctx is cancelled: it then writes a checkpoint first, so that a run
// interrupted with Ctrl-C continues with Resume.
func Run(ctx context.Context, cfg Config, opts Options) (*Result, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	r, err := newRun(ctx, cfg, opts)
	if err != nil {
		return nil, err
	}
	defer r.close()
	return r.train(ctx)
}

// run is one fine-tuning run in progress.
type run struct {
	cfg  Config
	opts Options
	log  io.Writer
	dir  string

	backend compute.Backend
	info    string
	model   *models.Model
	tok     *tokenizer.Tokenizer
	tuner   tuner
	obj     *Objective
	reg     *dropout.Regularizer
	prog    *progressive
	trainer *train.Trainer

	loader    *data.Loader
	evalBatch []*data.Batch
	total     int

	state   train.TrainerState
	metrics *train.MetricsLog
	result  Result
}

func newRun(ctx context.Context, cfg Config, opts Options) (*run, error) {
	r := &run{cfg: cfg, opts: opts, log: opts.Log, dir: cfg.Output.Dir}
	if r.log == nil {
		r.log = io.Discard
	}
	if err := r.prepareDir(); err != nil {
		return nil, err
	}
	if err := r.open(); err != nil {
		return nil, err
	}
	if err := r.openData(ctx); err != nil {
		return nil, err
	}
	if err := r.build(); err != nil {
		return nil, err
	}
	if err := r.restore(); err != nil {
		return nil, err
	}
	return r, nil
}

// prepareDir creates the run folder, refusing to overwrite a previous
// run unless asked, and records the resolved recipe.
func (r *run) prepareDir() error {
	if err := os.MkdirAll(r.dir, 0o755); err != nil {
		return fmt.Errorf("output.dir: %w", err)
	}
	_, err := os.Stat(filepath.Join(r.dir, train.MetricsFile))
	exists := err == nil
	switch {
	case r.opts.Resume:
		if _, err := latestCheckpoint(r.dir); err != nil {
			return err
		}
	case exists && !r.cfg.Output.Overwrite:
		return fmt.Errorf("output.dir: %s holds a previous run; continue it with --resume, or set output.overwrite=true to replace it", r.dir)
	case exists:
		if err := os.RemoveAll(filepath.Join(r.dir, CheckpointsDir)); err != nil {
			return fmt.Errorf("output.dir: %w", err)
		}
	}
	y, err := yaml.Marshal(r.cfg)
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	return train.WriteFileAtomic(filepath.Join(r.dir, ConfigFile), y)
}

// open creates the backend and loads the model, tokenizer and tuner.
func (r *run) open() error {
	r.backend = r.opts.Backend
	if r.backend == nil {
		b, info, err := backend.NewTraining(backend.Resolve(r.cfg.Model.Backend))
		if err != nil {
			return fmt.Errorf("model.backend: %w", err)
		}
		backend.Log(r.log, info)
		r.backend, r.info = b, info.String()
	} else {
		r.info = r.backend.Description()
	}
	lo := models.LoadOptions{}
	if d := strings.ToLower(r.cfg.Model.DType); d == "bfloat16" || d == "bf16" {
		lo.DType, lo.WeightDType = dtypes.BFloat16, dtypes.Float32
	}
	var err error
	if r.model, err = models.Load(r.cfg.Model.Path, lo); err != nil {
		return fmt.Errorf("model.path: %w", err)
	}
	if r.tok, err = tokenizer.Load(r.cfg.Tokenizer.Path); err != nil {
		return fmt.Errorf("tokenizer.path: %w", err)
	}
	return nil
}

// Loaders opens a recipe's training data (epochs passes) and its
// evaluation data (one pass; nil without data.eval), tokenized with tok
// as a run does: `lethe distill cache-teacher` runs a teacher over the
// same batches a run trains on.
func Loaders(ctx context.Context, cfg Config, tok *tokenizer.Tokenizer, epochs int) (trainL, evalL *data.Loader, err error) {
	dc := cfg.Data
	tc := dc.Tokenize
	if tc.AppendEOS && tc.EOSID == 0 {
		id, err := data.EOSID(tok)
		if err != nil {
			return nil, nil, fmt.Errorf("data.tokenize.append_eos: %w (or set data.tokenize.eos_id)", err)
		}
		tc.EOSID = id
	}
	render, err := data.NewChatRenderer(tok, cfg.Tokenizer.ChatTemplate)
	if err != nil {
		return nil, nil, fmt.Errorf("tokenizer.chat_template: %w", err)
	}
	pre, err := data.NewPreprocessor(tok, render, tc)
	if err != nil {
		return nil, nil, fmt.Errorf("data.tokenize: %w", err)
	}
	ds, err := data.Open(ctx, dc.Train)
	if err != nil {
		return nil, nil, fmt.Errorf("data.train: %w", err)
	}
	lc := data.LoaderConfig{Collate: dc.Collate, Shuffle: dc.Shuffle, Seed: dc.Seed, WindowRows: dc.WindowRows, Epochs: epochs}
	if trainL, err = data.NewLoader(ds, pre, lc); err != nil {
		return nil, nil, fmt.Errorf("data: %w", err)
	}
	if dc.Eval == nil {
		return trainL, nil, nil
	}
	eds, err := data.Open(ctx, *dc.Eval)
	if err != nil {
		return nil, nil, fmt.Errorf("data.eval: %w", err)
	}
	if evalL, err = data.NewLoader(eds, pre, data.LoaderConfig{Collate: dc.Collate, Epochs: 1}); err != nil {
		return nil, nil, fmt.Errorf("data.eval: %w", err)
	}
	return trainL, evalL, nil
}

// openData opens the datasets, counts the steps and reads the evaluation
// batches.
func (r *run) openData(ctx context.Context) error {
	dc := r.cfg.Data
	epochs := r.cfg.Training.Epochs
	if epochs == 0 { // until training.max_steps
		epochs = math.MaxInt32
	}
	var el *data.Loader
	var err error
	if r.loader, el, err = Loaders(ctx, r.cfg, r.tok, epochs); err != nil {
		return err
	}
	if r.cfg.Training.Epochs == 0 {
		// Repeating the data until max_steps needs one batch in an epoch.
		probe, _, err := Loaders(ctx, r.cfg, r.tok, 1)
		if err != nil {
			return err
		}
		if n, err := firstBatches(ctx, probe, 1); err != nil {
			return fmt.Errorf("data.train: %w", err)
		} else if n == 0 {
			return errors.New("data.train: no example with a loss token")
		}
	}
	r.total = r.cfg.Training.MaxSteps
	if r.total == 0 {
		n, err := countBatches(ctx, r.loader)
		if err != nil {
			return fmt.Errorf("data.train: %w", err)
		}
		r.total = n / r.cfg.Training.GradAccum
		if r.total == 0 {
			return fmt.Errorf("data.train: %d batches make no optimizer step of %d batches (training.grad_accum)", n, r.cfg.Training.GradAccum)
		}
	}
	if el == nil {
		return nil
	}
	it, err := el.Iterate(data.Position{})
	if err != nil {
		return fmt.Errorf("data.eval: %w", err)
	}
	defer it.Close()
	for dc.EvalBatches == 0 || len(r.evalBatch) < dc.EvalBatches {
		b, err := it.Next(ctx)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("data.eval: %w", err)
		}
		r.evalBatch = append(r.evalBatch, b)
	}
	if len(r.evalBatch) == 0 {
		return fmt.Errorf("data.eval: no example with a loss token")
	}
	return nil
}

// countBatches iterates the loader once to count its batches.
func countBatches(ctx context.Context, l *data.Loader) (int, error) {
	return firstBatches(ctx, l, math.MaxInt)
}

// firstBatches counts the loader's batches, up to limit.
func firstBatches(ctx context.Context, l *data.Loader, limit int) (int, error) {
	it, err := l.Iterate(data.Position{})
	if err != nil {
		return 0, err
	}
	defer it.Close()
	n := 0
	for n < limit {
		_, err := it.Next(ctx)
		if errors.Is(err, io.EOF) {
			return n, nil
		}
		if err != nil {
			return 0, err
		}
		n++
	}
	return n, nil
}

// build creates the regularizer, the tuner and the trainer.
func (r *run) build() error {
	var err error
	if r.reg, err = dropout.New(r.model, r.cfg.Dropout); err != nil {
		return fmt.Errorf("dropout: %w", err)
	}
	if r.tuner, err = newTuner(r.model, r.cfg, r.reg); err != nil {
		return err
	}
	for _, w := range r.tuner.Warnings() {
		fmt.Fprintf(r.log, "lethe: warning: peft: %s\n", w)
	}
	if r.cfg.Dropout.Progressive.Enabled {
		if r.prog, err = newProgressive(r.backend, r.model, r.cfg.Dropout.Progressive, r.cfg.Data.Collate.MaxLength); err != nil {
			return err
		}
		r.loader.SetFilter(r.prog.keep)
	}
	hooks := peft.ComposeHooks(r.tuner.Hooks(true), r.reg.Hooks())
	evalHooks := r.tuner.Hooks(false)
	loss := train.CausalLM(r.model, hooks, evalHooks, r.reg.HeadSamples())
	if ee := r.cfg.EarlyExit; ee != nil {
		if r.reg.HeadSamples() > 1 {
			return errors.New("early_exit: not with dropout.head_samples")
		}
		if loss, err = train.EarlyExitLoss(r.model, hooks, evalHooks, *ee); err != nil {
			return fmt.Errorf("early_exit: %w", err)
		}
	}
	params, vars := r.tuner.Params(), r.tuner.Vars()
	if r.opts.Objective != nil {
		if r.obj, err = r.opts.Objective(ObjectiveInfo{Model: r.model, Tokenizer: r.tok, Backend: r.backend, Hooks: hooks,
			EvalHooks: evalHooks, HeadSamples: r.reg.HeadSamples(), EvalBatches: r.evalBatch, Log: r.log}); err != nil {
			return err
		}
		loss = r.obj.Loss
		params = append(slices.Clone(params), r.obj.Params...)
		if len(r.obj.Vars) > 0 {
			merged := maps.Clone(r.obj.Vars)
			maps.Copy(merged, vars)
			vars = merged
		}
	}
	if w, ok := r.tuner.(interface {
		WrapLoss(train.LossFunc) train.LossFunc
	}); ok {
		loss = w.WrapLoss(loss)
	}
	r.trainer, err = train.NewTrainer(r.model, r.backend, train.TrainerOptions{
		Params: params, Vars: vars, Optimizer: r.cfg.Optimizer, Loss: loss,
		GradAccum: r.cfg.Training.GradAccum, Seed: r.cfg.Training.Seed,
	})
	if err != nil {
		return err
	}
	r.result.Trainable = r.tuner.Trainable()
	if r.obj != nil {
		for _, name := range r.obj.Params {
			if v, ok := r.obj.Vars[name]; ok {
				r.result.Trainable += int64(v.Shape().Size())
			}
		}
	}
	r.result.Backend = r.info
	r.result.TotalSteps = r.total
	return nil
}

// restore loads the latest checkpoint when resuming and opens the metrics
// log.
func (r *run) restore() error {
	keep := -1
	if r.opts.Resume {
		dir, err := latestCheckpoint(r.dir)
		if err != nil {
			return err
		}
		if r.state, err = r.trainer.LoadCheckpoint(dir); err != nil {
			return fmt.Errorf("resume: %w", err)
		}
		if err := r.loadSummary(); err != nil {
			return err
		}
		if r.prog != nil {
			if err := r.prog.restore(r.state.Extra); err != nil {
				return fmt.Errorf("resume %s: %w", dir, err)
			}
		}
		keep = r.state.Step
		fmt.Fprintf(r.log, "lethe: resuming %s at step %d\n", dir, r.state.Step)
	}
	var err error
	r.metrics, err = train.OpenMetricsLog(filepath.Join(r.dir, train.MetricsFile), keep)
	return err
}

// loadSummary reads the metrics.json of the run being resumed, which
// carries the initial evaluation and the first loss.
func (r *run) loadSummary() error {
	raw, err := os.ReadFile(filepath.Join(r.dir, SummaryFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("resume: %w", err)
	}
	var prev Result
	if err := json.Unmarshal(raw, &prev); err != nil {
		return fmt.Errorf("resume: %s: %w", filepath.Join(r.dir, SummaryFile), err)
	}
	r.result.InitialEval, r.result.FirstTrainLoss = prev.InitialEval, prev.FirstTrainLoss
	return nil
}

func (r *run) close() {
	if r.metrics != nil {
		r.metrics.Close()
	}
}

// train is the loop.
func (r *run) train(ctx context.Context) (*Result, error) {
	tc := r.cfg.Training
	it, err := r.loader.Iterate(r.position())
	if err != nil {
		return nil, err
	}
	defer it.Close()
	if len(r.evalBatch) > 0 && tc.EvalAtStart && r.state.Step == 0 {
		ev, err := r.evaluate(0)
		if err != nil {
			return nil, err
		}
		r.result.InitialEval = &ev
		rec := train.Record{Step: 0, Values: map[string]float64{}}
		addEval(rec.Values, ev)
		if err := r.metrics.Write(rec); err != nil {
			return nil, err
		}
	}
	progress := train.Progress{Total: r.total}
	progress.Start(r.state.Step)
	var window struct {
		loss   float64
		tokens int
	}
	var stepTime time.Duration
	var stepTokens int64
	for r.state.Step < r.total {
		if err := ctx.Err(); err != nil {
			if serr := r.checkpoint(it); serr != nil {
				return nil, errors.Join(err, serr)
			}
			fmt.Fprintf(r.log, "lethe: interrupted at step %d; checkpoint written, continue with --resume\n", r.state.Step)
			return nil, err
		}
		epoch := it.Position().Epoch
		micro, err := r.nextBatches(ctx, it)
		if err != nil {
			return nil, err
		}
		if micro == nil {
			break // the data ended before the planned steps
		}
		if e := it.Position().Epoch; e != epoch && r.prog != nil {
			r.prog.endEpoch()
		}
		if r.prog != nil {
			if err := r.prog.observe(micro); err != nil {
				return nil, err
			}
		}
		step := r.state.Step
		if err := r.reg.SetStep(step, r.total); err != nil {
			return nil, err
		}
		rng := rand.New(rand.NewPCG(uint64(tc.Seed), uint64(step)))
		var inTokens int64
		for i, b := range micro {
			if r.obj != nil && r.obj.Prepare != nil {
				if b, err = r.obj.Prepare(ctx, b, step); err != nil {
					return nil, fmt.Errorf("step %d: %w", step+1, err)
				}
			}
			micro[i] = r.reg.MaskBatch(b, rng)
			inTokens += nonPadding(b)
		}
		lr := r.cfg.Schedule.LR(r.cfg.Optimizer.LR, step, r.total)
		start := time.Now()
		res, err := r.trainer.Step(micro, lr)
		if err != nil {
			return nil, fmt.Errorf("step %d: %w", step+1, err)
		}
		took := time.Since(start)
		if math.IsNaN(res.Loss) || math.IsInf(res.Loss, 0) {
			return nil, fmt.Errorf("step %d: the loss is %v (lower optimizer.lr, set optimizer.max_grad_norm, or check the data)", step+1, res.Loss)
		}
		r.state.Step++
		r.state.Tokens += inTokens
		r.state.Seconds += took.Seconds()
		if step > 0 || r.opts.Resume { // the first step compiles
			stepTime += took
			stepTokens += inTokens
		}
		if r.state.Step == 1 {
			r.result.FirstTrainLoss = res.Loss
		}
		window.loss += res.Loss * float64(res.Tokens)
		window.tokens += res.Tokens
		tps := float64(inTokens) / took.Seconds()
		rec := train.Record{Step: r.state.Step, Values: map[string]float64{
			"loss": res.Loss, "lr": lr, "grad_norm": res.GradNorm, "tokens_per_s": tps,
			"epoch": float64(it.Position().Epoch),
		}}
		for site, rate := range ratesOf(r.reg.Rates()) {
			if rate > 0 {
				rec.Values["dropout_"+site] = rate
			}
		}
		if r.prog != nil {
			rec.Values["progressive_dropped"] = float64(r.prog.dropped())
		}
		if r.state.Step%tc.LogEvery == 0 || r.state.Step == r.total {
			fmt.Fprintln(r.log, progress.Line(r.state.Step, window.loss/math.Max(1, float64(window.tokens)), lr, res.GradNorm, tps))
			r.result.TrainLoss = window.loss / math.Max(1, float64(window.tokens))
			window.loss, window.tokens = 0, 0
		}
		stop := false
		if len(r.evalBatch) > 0 && tc.EvalEvery > 0 && r.state.Step%tc.EvalEvery == 0 {
			ev, err := r.evaluate(r.state.Step)
			if err != nil {
				return nil, err
			}
			addEval(rec.Values, ev)
			stop = r.earlyStop(ev)
		}
		if err := r.metrics.Write(rec); err != nil {
			return nil, err
		}
		if tc.SaveEvery > 0 && r.state.Step%tc.SaveEvery == 0 && r.state.Step < r.total {
			if err := r.checkpoint(it); err != nil {
				return nil, err
			}
		}
		if stop {
			r.result.StoppedEarly = true
			fmt.Fprintf(r.log, "lethe: early stopping at step %d: no improvement of the evaluation loss for %d evaluations (best %.4f at step %d)\n",
				r.state.Step, r.state.BadEvals, r.state.BestEval, r.result.BestStep)
			break
		}
	}
	if window.tokens > 0 {
		r.result.TrainLoss = window.loss / float64(window.tokens)
	}
	if len(r.evalBatch) > 0 && (tc.EvalEvery == 0 || r.state.Step%tc.EvalEvery != 0) {
		ev, err := r.evaluate(r.state.Step)
		if err != nil {
			return nil, err
		}
		r.earlyStop(ev) // records the best evaluation
		rec := train.Record{Step: r.state.Step, Values: map[string]float64{}}
		addEval(rec.Values, ev)
		if err := r.metrics.Write(rec); err != nil {
			return nil, err
		}
	}
	if stepTime > 0 {
		r.result.TokensPerSecond = float64(stepTokens) / stepTime.Seconds()
	} else if r.state.Seconds > 0 {
		r.result.TokensPerSecond = float64(r.state.Tokens) / r.state.Seconds
	}
	if err := r.checkpoint(it); err != nil {
		return nil, err
	}
	if r.obj != nil && r.obj.Finish != nil {
		if err := r.obj.Finish(ctx); err != nil {
			return nil, err
		}
	}
	if err := r.export(); err != nil {
		return nil, err
	}
	if err := r.writeSummary(it); err != nil {
		return nil, err
	}
	fmt.Fprintf(r.log, "lethe: done: %d steps, train loss %.4f%s, %s tokens/s, peak memory %s; run folder %s\n",
		r.state.Step, r.result.TrainLoss, evalNote(r.result.Eval), fmtInt(r.result.TokensPerSecond), fmtBytes(r.result.PeakMemoryBytes), r.dir)
	return &r.result, nil
}

// nextBatches returns the micro-batches of one step, or nil at the end
// of the data (a last incomplete group is left out).
func (r *run) nextBatches(ctx context.Context, it *data.Iterator) ([]*data.Batch, error) {
	var micro []*data.Batch
	for len(micro) < r.cfg.Training.GradAccum {
		b, err := it.Next(ctx)
		if errors.Is(err, io.EOF) {
			if len(micro) > 0 {
				fmt.Fprintf(r.log, "lethe: the last %d batch(es) do not fill an accumulation of %d and are left out\n", len(micro), r.cfg.Training.GradAccum)
			}
			return nil, nil
		}
		if err != nil {
			return nil, fmt.Errorf("data.train: %w", err)
		}
		micro = append(micro, b)
	}
	return micro, nil
}

// position is the data position the run continues from.
func (r *run) position() data.Position {
	var pos data.Position
	if len(r.state.DataPosition) > 0 {
		// A malformed position is reported by Iterate through its fields.
		_ = json.Unmarshal(r.state.DataPosition, &pos)
	}
	return pos
}

// evaluate runs the evaluation batches.
func (r *run) evaluate(step int) (train.EvalResult, error) {
	ev, err := r.trainer.Evaluate(r.evalBatch)
	if err != nil {
		return ev, fmt.Errorf("evaluate at step %d: %w", step, err)
	}
	r.result.Eval = &ev
	fmt.Fprintf(r.log, "eval step %d  loss %.4f  perplexity %.3f  token_accuracy %.4f  (%d tokens)\n", step, ev.Loss, ev.Perplexity, ev.TokenAccuracy, ev.Tokens)
	return ev, nil
}

// earlyStop records an evaluation and says whether to stop.
func (r *run) earlyStop(ev train.EvalResult) bool {
	es := r.cfg.Training.EarlyStopping
	if r.result.BestStep == 0 && r.state.BestEval == 0 || ev.Loss < r.state.BestEval-es.MinDelta {
		r.state.BestEval, r.state.BadEvals = ev.Loss, 0
		r.result.BestEvalLoss, r.result.BestStep = ev.Loss, r.state.Step
		return false
	}
	r.state.BadEvals++
	return es.Patience > 0 && r.state.BadEvals >= es.Patience
}

func addEval(v map[string]float64, ev train.EvalResult) {
	v["eval_loss"] = ev.Loss
	v["eval_perplexity"] = ev.Perplexity
	v["eval_token_accuracy"] = ev.TokenAccuracy
}

// checkpoint writes checkpoints/step-N and keeps the newest
// training.keep_checkpoints of them.
func (r *run) checkpoint(it *data.Iterator) error {
	pos, err := json.Marshal(it.Position())
	if err != nil {
		return err
	}
	r.state.DataPosition = pos
	r.state.Epoch = it.Position().Epoch
	if r.prog != nil {
		if r.state.Extra, err = r.prog.save(); err != nil {
			return err
		}
	}
	dir := filepath.Join(r.dir, CheckpointsDir, fmt.Sprintf("step-%07d", r.state.Step))
	if err := r.trainer.SaveCheckpoint(dir, r.state); err != nil {
		return err
	}
	if err := r.writeSummary(it); err != nil {
		return err
	}
	all, err := checkpoints(r.dir)
	if err != nil {
		return err
	}
	for len(all) > r.cfg.Training.KeepCheckpoints {
		if err := os.RemoveAll(all[0]); err != nil {
			return fmt.Errorf("checkpoint: %w", err)
		}
		all = all[1:]
	}
	return nil
}

// checkpoints lists the run's checkpoint folders, oldest first.
func checkpoints(dir string) ([]string, error) {
	entries, err := os.ReadDir(filepath.Join(dir, CheckpointsDir))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("checkpoints: %w", err)
	}
	type ck struct {
		step int
		path string
	}
	var cks []ck
	for _, e := range entries {
		s, ok := strings.CutPrefix(e.Name(), "step-")
		n, err := strconv.Atoi(s)
		if !ok || err != nil || !e.IsDir() {
			continue
		}
		cks = append(cks, ck{n, filepath.Join(dir, CheckpointsDir, e.Name())})
	}
	slices.SortFunc(cks, func(a, b ck) int { return a.step - b.step })
	out := make([]string, len(cks))
	for i, c := range cks {
		out[i] = c.path
	}
	return out, nil
}

// latestCheckpoint returns the newest checkpoint of the run in dir.
func latestCheckpoint(dir string) (string, error) {
	all, err := checkpoints(dir)
	if err != nil {
		return "", err
	}
	if len(all) == 0 {
		return "", fmt.Errorf("resume: %s has no checkpoint in %s/", dir, CheckpointsDir)
	}
	return all[len(all)-1], nil
}

// export writes the trained model or adapter.
func (r *run) export() error {
	if err := r.tuner.Save(r.dir, r.cfg.Output, &r.result); err != nil {
		return err
	}
	if r.result.Model != "" {
		return models.CopyTokenizerFiles(r.result.Model, r.cfg.Model.Path, r.cfg.Tokenizer.Path)
	}
	return nil
}

// writeSummary writes metrics.json with the run so far.
func (r *run) writeSummary(it *data.Iterator) error {
	r.fillResult(it)
	if err := train.WriteJSONAtomic(filepath.Join(r.dir, SummaryFile), r.result); err != nil {
		return fmt.Errorf("write %s: %w", SummaryFile, err)
	}
	return nil
}

func (r *run) fillResult(it *data.Iterator) {
	r.result.Steps = r.state.Step
	r.result.Epochs = it.Position().Epoch + 1
	if e := r.cfg.Training.Epochs; e > 0 && r.result.Epochs > e {
		r.result.Epochs = r.cfg.Training.Epochs
	}
	r.result.Tokens = r.state.Tokens
	r.result.Seconds = r.state.Seconds
	r.result.PeakMemoryBytes = memstat.PeakRSS()
	if r.state.BestEval != 0 {
		r.result.BestEvalLoss = r.state.BestEval
	}
}

// nonPadding counts the attended tokens of a batch.
func nonPadding(b *data.Batch) int64 {
	var n int64
	for _, m := range b.AttentionMask {
		n += int64(m)
	}
	return n
}

func ratesOf(r dropout.Rates) map[string]float64 {
	return map[string]float64{"attention": r.Attention, "residual": r.Residual, "embeddings": r.Embeddings,
		"penultimate": r.Penultimate, "layer_drop": r.LayerDrop, "mixout": r.Mixout, "tlm": r.TLM}
}

func evalNote(ev *train.EvalResult) string {
	if ev == nil {
		return ""
	}
	return fmt.Sprintf(", eval loss %.4f", ev.Loss)
}

func fmtInt(v float64) string {
	s := strconv.FormatInt(int64(math.Round(v)), 10)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

func fmtBytes(n int64) string {
	const mib = 1 << 20
	if n >= 1<<30 {
		return fmt.Sprintf("%.2f GiB", float64(n)/(1<<30))
	}
	return fmt.Sprintf("%.1f MiB", float64(n)/mib)
}
