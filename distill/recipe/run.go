package recipe

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"

	"github.com/gomlx/compute"
	"github.com/gomlx/compute/dtypes"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/ml/model"
	"go.yaml.in/yaml/v3"

	"github.com/lethe-ml/lethe/data"
	"github.com/lethe-ml/lethe/decoding"
	"github.com/lethe-ml/lethe/distill"
	"github.com/lethe-ml/lethe/distill/hints"
	"github.com/lethe-ml/lethe/distill/topk"
	"github.com/lethe-ml/lethe/models"
	"github.com/lethe-ml/lethe/train"
	"github.com/lethe-ml/lethe/train/finetune"
)

// Options are the settings of a run that are not part of the recipe.
type Options struct {
	// Log receives progress lines [io.Discard].
	Log io.Writer
	// Resume continues the run in output.dir from its latest checkpoint.
	Resume bool
	// Backend is used instead of the one model.backend names.
	Backend compute.Backend
}

// BeforeFile, in the run folder, keeps the measurements before training
// for --resume.
const BeforeFile = "distill_before.json"

// Result is finetune's summary of the run plus the distillation numbers;
// Run writes it to the run folder's metrics.json.
type Result struct {
	finetune.Result
	// KLBefore and KLAfter are the student-teacher forward KL(p_t || p_s)
	// at temperature 1, per held-out predicted token (data.eval), before
	// and after training; with several teachers, their weighted mean;
	// against a cached top-k teacher, over its k tokens (exact for k =
	// vocabulary).
	KLBefore float64 `json:"kl_before"`
	KLAfter  float64 `json:"kl_after"`
	// KLReduction is 1 − KLAfter/KLBefore.
	KLReduction float64 `json:"kl_reduction"`
	// CEBefore and CEAfter are the student's cross-entropy on the held-out
	// labels; TeacherCE the (first, live) teacher's.
	CEBefore  float64  `json:"ce_before"`
	CEAfter   float64  `json:"ce_after"`
	TeacherCE *float64 `json:"teacher_ce,omitempty"`
	// Loss names the distillation loss.
	Loss string `json:"loss"`
	// Rounds summarise Noisy Student's rounds (mode.rounds > 1); the
	// other fields are then the last round's.
	Rounds []RoundResult `json:"rounds,omitempty"`
}

// teacher is a teacher in the student's graphs: a frozen copy in the
// student's store, or a top-k cache.
type teacher struct {
	cfg   TeacherConfig
	m     *models.Model
	cache *topk.Cache
	name  string // side-input prefix of a cached teacher
	hints *hints.Hints
}

// Run distills as cfg says and writes the run folder. With
// mode.noisy_student and mode.rounds > 1 it runs the rounds of Noisy
// Student in round-N subfolders, each round's student becoming the next
// round's teacher, and writes their summary to the run folder.
func Run(ctx context.Context, cfg Config, opts Options) (*Result, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Mode.Rounds <= 1 {
		return runOnce(ctx, cfg, opts)
	}
	if opts.Resume {
		return nil, errors.New("mode.rounds: --resume continues one round; resume the unfinished round-N folder with mode.rounds=1")
	}
	log := opts.Log
	if log == nil {
		log = io.Discard
	}
	var res *Result
	var rounds []RoundResult
	for r := 1; r <= cfg.Mode.Rounds; r++ {
		rc := cfg
		rc.Output.Dir = filepath.Join(cfg.Output.Dir, fmt.Sprintf("round-%d", r))
		rc.Mode.Rounds = 1
		if r > 1 {
			t := cfg.TeacherList()[0]
			t.Path, t.Cache, t.Weight = res.Model, "", 1
			rc.Teacher, rc.Teachers = &t, nil
		}
		if cfg.Student != nil {
			st := *cfg.Student
			st.Seed += uint64(r - 1)
			rc.Student = &st
			rc.Model.Path = filepath.Join(rc.Output.Dir, StudentInitDir)
			if rc.Tokenizer.Path == cfg.Model.Path {
				rc.Tokenizer.Path = rc.Model.Path
			}
		}
		fmt.Fprintf(log, "lethe: noisy student round %d of %d: teacher %s\n", r, cfg.Mode.Rounds, rc.TeacherList()[0].Path)
		var err error
		if res, err = runOnce(ctx, rc, opts); err != nil {
			return nil, fmt.Errorf("round %d: %w", r, err)
		}
		if res.Model == "" {
			return nil, fmt.Errorf("round %d: the student was not exported (output.save_model / peft adapters): the next round needs it as its teacher", r)
		}
		rounds = append(rounds, RoundResult{Round: r, Teacher: rc.TeacherList()[0].Path, Student: res.Model, KLBefore: res.KLBefore, KLAfter: res.KLAfter, CEAfter: res.CEAfter,
			FirstTrainLoss: res.FirstTrainLoss, TrainLoss: res.TrainLoss})
	}
	res.Rounds = rounds
	return res, train.WriteJSONAtomic(filepath.Join(cfg.Output.Dir, finetune.SummaryFile), res)
}

// RoundResult summarises one round of Noisy Student: the KL is against that
// round's teacher (the previous round's student after the first).
type RoundResult struct {
	Round    int     `json:"round"`
	Teacher  string  `json:"teacher"`
	Student  string  `json:"student"`
	KLBefore float64 `json:"kl_before"`
	KLAfter  float64 `json:"kl_after"`
	CEAfter  float64 `json:"ce_after"`
	// FirstTrainLoss and TrainLoss are the round's first and last
	// training losses.
	FirstTrainLoss float64 `json:"first_train_loss"`
	TrainLoss      float64 `json:"train_loss"`
}

// runOnce is one distillation run.
func runOnce(ctx context.Context, cfg Config, opts Options) (*Result, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	log := opts.Log
	if log == nil {
		log = io.Discard
	}
	res := &Result{Loss: cfg.Loss.Name}
	var teachers []*teacher
	defer func() {
		for _, t := range teachers {
			if t.cache != nil {
				t.cache.Close()
			}
		}
	}()
	before := filepath.Join(cfg.Output.Dir, BeforeFile)
	if opts.Resume {
		// kl_before was measured at the start of the run.
		raw, err := os.ReadFile(before)
		if err != nil {
			return nil, fmt.Errorf("resume: %w", err)
		}
		if err := json.Unmarshal(raw, res); err != nil {
			return nil, fmt.Errorf("resume: %s: %w", before, err)
		}
	} else if _, err := os.Stat(filepath.Join(cfg.Output.Dir, finetune.SummaryFile)); err == nil && !cfg.Output.Overwrite {
		return nil, fmt.Errorf("output.dir: %s holds a previous run; continue it with --resume, or set output.overwrite=true to replace it", cfg.Output.Dir)
	}
	if st := cfg.Student; st != nil && !opts.Resume {
		t := cfg.TeacherList()[0]
		if _, err := InitStudent(t.Path, cfg.Model.Path, StudentShape{Layers: st.Layers, Hidden: st.Hidden,
			Intermediate: st.Intermediate, Heads: st.Heads, KVHeads: st.KVHeads}, st.Seed); err != nil {
			return nil, fmt.Errorf("student: %w", err)
		}
		fmt.Fprintf(log, "lethe: new student in %s\n", cfg.Model.Path)
	}
	var o *objective
	build := func(info finetune.ObjectiveInfo) (*finetune.Objective, error) {
		var err error
		o, err = newObjective(ctx, cfg, info, &teachers)
		if err != nil {
			return nil, err
		}
		if !opts.Resume {
			m, err := o.measure()
			if err != nil {
				return nil, fmt.Errorf("kl_before: %w", err)
			}
			res.KLBefore, res.CEBefore, res.TeacherCE = m.kl, m.ce, m.teacherCE
			fmt.Fprintf(log, "lethe: before distillation: KL(teacher || student) %.4f, student CE %.4f%s\n", m.kl, m.ce, teacherNote(m.teacherCE))
			if err := train.WriteJSONAtomic(before, res); err != nil {
				return nil, err
			}
		}
		return o.finetuneObjective(res, log), nil
	}
	fres, err := finetune.Run(ctx, cfg.Config, finetune.Options{Log: log, Resume: opts.Resume, Backend: opts.Backend, Objective: build})
	if err != nil {
		return nil, err
	}
	res.Result = *fres
	// finetune recorded its own part of the recipe; record all of it.
	if err := writeConfig(filepath.Join(cfg.Output.Dir, finetune.ConfigFile), cfg); err != nil {
		return nil, err
	}
	if res.KLBefore > 0 {
		res.KLReduction = 1 - res.KLAfter/res.KLBefore
	}
	fmt.Fprintf(log, "lethe: distillation: KL %.4f -> %.4f (%.1f%% less), student CE %.4f -> %.4f\n",
		res.KLBefore, res.KLAfter, 100*res.KLReduction, res.CEBefore, res.CEAfter)
	return res, train.WriteJSONAtomic(filepath.Join(cfg.Output.Dir, finetune.SummaryFile), res)
}

// writeConfig writes the resolved recipe as YAML, atomically.
func writeConfig(path string, cfg Config) error {
	y, err := yaml.Marshal(cfg)
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	return train.WriteFileAtomic(path, y)
}

func teacherNote(ce *float64) string {
	if ce == nil {
		return ""
	}
	return fmt.Sprintf(" (teacher CE %.4f)", *ce)
}

// Load loads the teacher's checkpoint in its compute dtype (bfloat16
// weights too: the teacher is never trained).
func (tc TeacherConfig) Load() (*models.Model, error) {
	lo := models.LoadOptions{}
	if d := strings.ToLower(tc.DType); d == "bfloat16" || d == "bf16" {
		lo.DType, lo.WeightDType = dtypes.BFloat16, dtypes.BFloat16
	}
	return models.Load(tc.Path, lo)
}

// objective is the distillation objective of a run.
type objective struct {
	cfg      Config
	info     finetune.ObjectiveInfo
	student  *models.Model
	teachers []*teacher
	weights  []float64
	params   []string
	vars     map[string]*model.Variable
	tail     distill.TailMode
	eval     []*data.Batch // held-out batches, with the cached teachers' side inputs

	gen, teacherGen *models.Generator
	seqKD           map[string][]int32 // prompt → the teacher's greedy completion
}

func newObjective(ctx context.Context, cfg Config, info finetune.ObjectiveInfo, out *[]*teacher) (*objective, error) {
	o := &objective{cfg: cfg, info: info, student: info.Model, vars: map[string]*model.Variable{}, seqKD: map[string][]int32{}}
	var err error
	if o.tail, err = tailMode(cfg.Loss.Tail); err != nil {
		return nil, fmt.Errorf("loss.tail: %w", err)
	}
	sc := o.student.Config
	for i, tc := range cfg.TeacherList() {
		key := "teacher"
		if cfg.Teacher == nil {
			key = fmt.Sprintf("teachers[%d]", i)
		}
		t := &teacher{cfg: tc, name: fmt.Sprintf("teacher%d", i)}
		*out = append(*out, t)
		if tc.Cache != "" {
			if t.cache, err = topk.Open(tc.Cache); err != nil {
				return nil, fmt.Errorf("%s.cache: %w", key, err)
			}
			if v := t.cache.Vocab(); v != sc.VocabSize {
				return nil, fmt.Errorf("%s.cache: %s holds a teacher of vocabulary %d, the student has %d", key, tc.Cache, v, sc.VocabSize)
			}
		} else {
			tm, err := tc.Load()
			if err != nil {
				return nil, fmt.Errorf("%s.path: %w", key, err)
			}
			if tm.Config.VocabSize != sc.VocabSize {
				return nil, fmt.Errorf("%s.path: the teacher's vocabulary (%d) is not the student's (%d): distillation needs a shared tokenizer", key, tm.Config.VocabSize, sc.VocabSize)
			}
			if t.m, err = tm.FrozenIn(o.student.Store, t.name); err != nil {
				return nil, fmt.Errorf("%s.path: %w", key, err)
			}
			if h := cfg.Hints; h != nil {
				hc := hints.Config{Kind: h.Kind, Loss: h.Loss, Name: t.name, Seed: uint64(cfg.Training.Seed) + uint64(i)}
				if h.Kind == hints.KindVkD {
					hc.Normalize = h.Normalize
				}
				for _, p := range h.Pairs {
					hc.Pairs = append(hc.Pairs, hints.Pair{Student: p[0], Teacher: p[1]})
				}
				if t.hints, err = hints.New(o.student.Store, hc, hints.SideOf(sc), hints.SideOf(tm.Config)); err != nil {
					return nil, fmt.Errorf("hints: %w", err)
				}
				o.params = append(o.params, t.hints.Params()...)
				for k, v := range t.hints.Vars() {
					o.vars[k] = v
				}
			}
		}
		o.teachers = append(o.teachers, t)
		o.weights = append(o.weights, tc.Weight)
	}
	for _, b := range info.EvalBatches {
		eb, err := o.withTargets(b)
		if err != nil {
			return nil, fmt.Errorf("data.eval: %w", err)
		}
		o.eval = append(o.eval, eb)
	}
	m := cfg.Mode
	if m.OnPolicy > 0 {
		o.gen = models.NewGenerator(o.student, info.Backend)
		o.gen.ShareWeights, o.gen.Hooks = true, info.EvalHooks
	}
	if m.SequenceKD {
		if o.teachers[0].m == nil {
			return nil, errors.New("mode.sequence_kd: the first teacher must run live (no cache)")
		}
		o.teacherGen = models.NewGenerator(o.teachers[0].m, info.Backend)
		o.teacherGen.ShareWeights = true
	}
	return o, nil
}

// withTargets returns b with the cached teachers' top-k as side inputs.
func (o *objective) withTargets(b *data.Batch) (*data.Batch, error) {
	out := *b
	out.Extra = nil
	for _, t := range o.teachers {
		if t.cache == nil {
			continue
		}
		tg, err := t.cache.ForBatch(b)
		if err != nil {
			return nil, fmt.Errorf("teacher cache %s: %w", t.cache.Path(), err)
		}
		out.Extra = append(out.Extra,
			data.Extra{Name: t.name + "_ids", K: tg.K, Int32: tg.IDs},
			data.Extra{Name: t.name + "_logprobs", K: tg.K, Float32: tg.LogProbs})
	}
	return &out, nil
}

// finetuneObjective is the objective finetune trains with.
func (o *objective) finetuneObjective(res *Result, log io.Writer) *finetune.Objective {
	return &finetune.Objective{
		Loss:   o.loss,
		Params: o.params,
		Vars:   o.vars,
		Prepare: func(ctx context.Context, b *data.Batch, step int) (*data.Batch, error) {
			var err error
			if o.cfg.Mode.SequenceKD {
				if b, err = o.teacherCompletions(ctx, b); err != nil {
					return nil, fmt.Errorf("sequence-level KD: %w", err)
				}
			}
			if p := o.cfg.Mode.OnPolicy; p > 0 {
				rng := rand.New(rand.NewPCG(uint64(o.cfg.Training.Seed), uint64(step)^0x6b64))
				if rng.Float64() < p {
					if b, err = o.studentCompletions(ctx, b, step); err != nil {
						return nil, fmt.Errorf("on-policy generation: %w", err)
					}
				}
			}
			return o.withTargets(b)
		},
		Finish: func(ctx context.Context) error {
			m, err := o.measure()
			if err != nil {
				return fmt.Errorf("kl_after: %w", err)
			}
			res.KLAfter, res.CEAfter = m.kl, m.ce
			return nil
		},
	}
}

// loss is (1−λ)·CE + λ·KD in training graphs and the student's CE in
// evaluation graphs.
func (o *objective) loss(in train.Inputs, training bool) models.Outputs {
	if !training {
		return o.student.Forward(in.ModelInputs(), models.Options{Hooks: o.info.EvalHooks})
	}
	out := o.student.Forward(in.ModelInputs(), models.Options{Hooks: o.info.Hooks, HeadSamples: o.info.HeadSamples})
	lambda := *o.cfg.Loss.Lambda
	if lambda == 0 {
		return out
	}
	kd := o.kd(in, out, true)
	out.Loss = distill.Combine(ConvertDType(out.Loss, dtypes.Float32), kd, lambda)
	return out
}

// kd is the distillation term against every teacher, weighted.
func (o *objective) kd(in train.Inputs, out models.Outputs, training bool) *Node {
	mask := distill.Mask(in.Labels)
	var terms []*Node
	for _, t := range o.teachers {
		var term *Node
		if t.cache != nil {
			sp := distill.Sparse{IDs: in.Extra[t.name+"_ids"], LogProbs: in.Extra[t.name+"_logprobs"]}
			term = o.sparseLoss(out.Logits, sp, in.Labels, mask)
		} else {
			mi := in.ModelInputs()
			mi.Labels = nil
			tout := t.m.Forward(mi, models.Options{})
			term = o.fullLoss(out.Logits, StopGradient(tout.Logits), in.Labels, mask)
			if training && t.hints != nil {
				th := make([]*Node, len(tout.Hidden))
				for i, h := range tout.Hidden {
					th[i] = StopGradient(h)
				}
				hl := t.hints.Loss(out.Hidden, th, in.Mask)
				term = Add(term, MulScalar(hl, o.cfg.Hints.Weight))
			}
		}
		terms = append(terms, term)
	}
	if len(terms) == 1 {
		return terms[0]
	}
	drop := hints.DropConfig{}
	if training { // evaluation weighs every teacher
		drop.Prob = o.cfg.Loss.TeacherDrop
	}
	mixed, _ := hints.Mix(terms, o.weights, drop, nil)
	return mixed
}

// fullLoss is the configured loss against a teacher's full logits.
func (o *objective) fullLoss(student, teacher, labels, mask *Node) *Node {
	l, T := o.cfg.Loss, o.cfg.Loss.Temperature
	switch l.Name {
	case "reverse_kl":
		return distill.ReverseKL(student, teacher, mask, T)
	case "symmetric_kl":
		return distill.SymmetricKL(student, teacher, mask, T)
	case "jsd":
		return distill.GeneralizedJSD(student, teacher, mask, *l.Beta, T)
	case "skew_forward_kl":
		return distill.SkewForwardKL(student, teacher, mask, l.Alpha, T)
	case "skew_reverse_kl":
		return distill.SkewReverseKL(student, teacher, mask, l.Alpha, T)
	case "tvd":
		return distill.TVD(student, teacher, mask, T)
	case "hinge_rank", "logistic_rank":
		return o.sparseLoss(student, topK(teacher, l.TopK), labels, mask)
	case "pld":
		return distill.SparsePLD(student, topK(teacher, l.TopK), distill.Targets(labels), mask, T)
	}
	return distill.ForwardKL(student, teacher, mask, T)
}

// topK is the teacher's k most likely tokens with their log-probabilities
// at temperature 1, by k rounds of ArgMax (O(k·V), any backend; GoMLX's
// TopK sorts with a closure the Go backend calls per comparison).
func topK(teacher *Node, k int) distill.Sparse {
	g := teacher.Graph()
	lp := LogSoftmax(ConvertDType(StopGradient(teacher), dtypes.Float32))
	V := lp.Shape().Dimensions[2]
	k = min(k, V)
	work := lp
	var ids, vals []*Node
	for range k {
		id := ArgMax(work, -1, dtypes.Int32) // [B, T]
		hot := OneHot(id, V, dtypes.Float32)
		vals = append(vals, ReduceSum(Mul(lp, hot), -1))
		ids = append(ids, id)
		work = Where(GreaterThan(hot, ScalarZero(g, dtypes.Float32)), BroadcastToShape(Scalar(g, dtypes.Float32, -1e30), work.Shape()), work)
	}
	return distill.Sparse{IDs: Stack(ids, -1), LogProbs: Stack(vals, -1)}
}

// sparseLoss is the configured loss against a top-k teacher.
func (o *objective) sparseLoss(student *Node, teacher distill.Sparse, labels, mask *Node) *Node {
	l := o.cfg.Loss
	switch l.Name {
	case "pld":
		return distill.SparsePLD(student, teacher, distill.Targets(labels), mask, l.Temperature)
	case "hinge_rank":
		return distill.HingeRank(student, teacher, mask, l.Margin)
	case "logistic_rank":
		return distill.LogisticRank(student, teacher, mask)
	}
	return distill.SparseForwardKL(student, teacher, mask, l.Temperature, o.tail)
}

// measurement is a held-out evaluation of the student against the
// teachers.
type measurement struct {
	kl, ce    float64
	teacherCE *float64
}

// measure computes the forward KL at temperature 1 (per predicted token,
// teachers weighted), the student's CE and the first live teacher's CE on
// the held-out batches.
func (o *objective) measure() (measurement, error) {
	var sumW float64
	for _, w := range o.weights {
		sumW += w
	}
	var extra []string // the cached teachers' side inputs (withTargets)
	if len(o.eval) > 0 {
		for _, e := range o.eval[0].Extra {
			extra = append(extra, e.Name)
		}
	}
	exec, err := model.NewExec(o.info.Backend, o.student.Store, func(scope *model.Scope, in []*Node) []*Node {
		g := in[0].Graph()
		scope.SetTraining(g, true) // weights as parameters: they change
		bi := train.InputsOf(in, extra)
		out := o.student.Forward(bi.ModelInputs(), models.Options{Hooks: o.info.EvalHooks})
		mask := distill.Mask(bi.Labels)
		n := ReduceAllSum(ConvertDType(mask, dtypes.Float32))
		kl := ScalarZero(g, dtypes.Float32)
		teacherCE := ScalarZero(g, dtypes.Float32)
		live := false
		for j, t := range o.teachers {
			var term *Node
			if t.cache != nil {
				sp := distill.Sparse{IDs: bi.Extra[t.name+"_ids"], LogProbs: bi.Extra[t.name+"_logprobs"]}
				term = distill.SparseForwardKL(out.Logits, sp, mask, 1, distill.TailZero)
			} else {
				tout := t.m.Forward(bi.ModelInputs(), models.Options{})
				term = distill.ForwardKL(out.Logits, tout.Logits, mask, 1)
				if !live {
					teacherCE, live = ConvertDType(tout.Loss, dtypes.Float32), true
				}
			}
			kl = Add(kl, MulScalar(term, o.weights[j]/sumW))
		}
		return []*Node{Mul(kl, n), Mul(ConvertDType(out.Loss, dtypes.Float32), n), Mul(teacherCE, n), n}
	})
	if err != nil {
		return measurement{}, err
	}
	defer exec.Finalize()
	var kl, ce, tce, n float64
	for i, b := range o.eval {
		args := []any{}
		for _, a := range train.BatchTensors(b) {
			args = append(args, a)
		}
		res, err := exec.Call(args...)
		if err != nil {
			return measurement{}, fmt.Errorf("held-out batch %d: %w", i, err)
		}
		kl += scalar(res[0])
		ce += scalar(res[1])
		tce += scalar(res[2])
		n += scalar(res[3])
	}
	if n == 0 {
		return measurement{}, errors.New("no held-out token to measure")
	}
	m := measurement{kl: kl / n, ce: ce / n}
	for _, t := range o.teachers {
		if t.m != nil {
			v := tce / n
			m.teacherCE = &v
			break
		}
	}
	return m, nil
}

func scalar(t interface{ Value() any }) float64 {
	switch v := t.Value().(type) {
	case float32:
		return float64(v)
	case float64:
		return v
	}
	return math.NaN()
}

// prompts splits each non-empty row of b into its prompt: the tokens
// before its first label.
func prompts(b *data.Batch) (rows []int, ps [][]int) {
	for r := 0; r < b.Size; r++ {
		ids, labels, mask := b.At(b.InputIDs, r), b.At(b.Labels, r), b.At(b.AttentionMask, r)
		var p []int
		for j := range ids {
			if mask[j] == 0 || labels[j] != data.IgnoreIndex {
				break
			}
			p = append(p, int(ids[j]))
		}
		if len(p) == 0 {
			continue
		}
		rows, ps = append(rows, r), append(ps, p)
	}
	return rows, ps
}

// withCompletions returns b with the completions of the given rows
// replaced: prompt, then the completion (labels on it), truncated to the
// batch length.
func withCompletions(b *data.Batch, rows []int, ps [][]int, completions [][]int32) *data.Batch {
	out := *b
	out.InputIDs = append([]int32(nil), b.InputIDs...)
	out.Labels = append([]int32(nil), b.Labels...)
	out.AttentionMask = append([]int32(nil), b.AttentionMask...)
	out.PositionIDs = append([]int32(nil), b.PositionIDs...)
	out.SegmentIDs = append([]int32(nil), b.SegmentIDs...)
	L := b.Length
	for i, r := range rows {
		for j := range L {
			k := r*L + j
			switch {
			case j < len(ps[i]):
				out.Labels[k] = data.IgnoreIndex
			case j-len(ps[i]) < len(completions[i]):
				tok := completions[i][j-len(ps[i])]
				out.InputIDs[k], out.Labels[k], out.AttentionMask[k] = tok, tok, 1
				out.PositionIDs[k], out.SegmentIDs[k] = int32(j), 1
			default:
				out.InputIDs[k], out.Labels[k], out.AttentionMask[k] = 0, data.IgnoreIndex, 0
				out.PositionIDs[k], out.SegmentIDs[k] = 0, 0
			}
		}
	}
	out.Tokens, out.LossTokens = 0, 0
	for k := range out.InputIDs {
		if out.AttentionMask[k] == 1 {
			out.Tokens++
		}
		if out.Labels[k] != data.IgnoreIndex {
			out.LossTokens++
		}
	}
	return &out
}

// generationConfig is the decoding of generated completions.
func (o *objective) generationConfig(sample bool) decoding.GenerationConfig {
	gc := decoding.GenerationConfig{MaxNewTokens: o.cfg.Mode.MaxNewTokens, DoSample: sample, Temperature: 1, TopP: 1, TypicalP: 1,
		RepetitionPenalty: 1, NumBeams: 1}
	if sample {
		gc.Temperature = o.cfg.Mode.GenTemperature
	}
	if id := o.student.Config.EOSTokenID; len(id) > 0 {
		gc.EOSTokenIDs = id
	}
	return gc
}

// studentCompletions replaces the completions of b by the student's
// samples (GKD's on-policy batches).
func (o *objective) studentCompletions(ctx context.Context, b *data.Batch, step int) (*data.Batch, error) {
	rows, ps := prompts(b)
	if len(rows) == 0 {
		return b, nil
	}
	o.student.WeightsChanged()
	g, err := o.gen.Generate(ctx, ps, models.GenerateOptions{Config: o.generationConfig(true), Seed: uint64(o.cfg.Training.Seed)<<20 + uint64(step)})
	if err != nil {
		return nil, err
	}
	return withCompletions(b, rows, ps, toInt32(g.Tokens)), nil
}

// teacherCompletions replaces the completions of b by the first teacher's
// greedy ones (computed once per prompt).
func (o *objective) teacherCompletions(ctx context.Context, b *data.Batch) (*data.Batch, error) {
	rows, ps := prompts(b)
	var todo [][]int
	for _, p := range ps {
		if _, ok := o.seqKD[key(p)]; !ok {
			todo = append(todo, p)
		}
	}
	if len(todo) > 0 {
		g, err := o.teacherGen.Generate(ctx, todo, models.GenerateOptions{Config: o.generationConfig(false)})
		if err != nil {
			return nil, err
		}
		for i, p := range todo {
			o.seqKD[key(p)] = toInt32(g.Tokens[i : i+1])[0]
		}
	}
	comps := make([][]int32, len(ps))
	for i, p := range ps {
		comps[i] = o.seqKD[key(p)]
	}
	return withCompletions(b, rows, ps, comps), nil
}

func key(p []int) string { return fmt.Sprint(p) }

func toInt32(xs [][]int) [][]int32 {
	out := make([][]int32, len(xs))
	for i, x := range xs {
		for _, v := range x {
			out[i] = append(out[i], int32(v))
		}
	}
	return out
}
