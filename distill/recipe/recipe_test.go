package recipe

import (
	"context"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gomlx/compute"

	"github.com/lethe-ml/lethe/data"
	"github.com/lethe-ml/lethe/distill/topk"
	"github.com/lethe-ml/lethe/internal/backend"
	"github.com/lethe-ml/lethe/models"
	"github.com/lethe-ml/lethe/train/finetune"
)

func testBackend(t testing.TB) compute.Backend {
	t.Helper()
	b, _, err := backend.New("go:ops_sequential")
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// smoke loads configs/distill/smoke.yaml with overrides, into a temporary
// run folder.
func smoke(t *testing.T, overrides ...string) Config {
	t.Helper()
	cfg, err := LoadConfig("configs/distill/smoke.yaml", append([]string{"output.dir=" + filepath.Join(t.TempDir(), "run")}, overrides...))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// TestDistillCutsKL is the acceptance test: distilling the fixture llama
// (models/testdata/tiny-chat, the fixture's weights with a tokenizer) into
// a new student of 1 layer and hidden 32 with forward KL cuts the held-out
// student-teacher KL by at least 80% from the student's initialisation;
// metrics.json has kl_before, kl_after and the CE losses.
func TestDistillCutsKL(t *testing.T) {
	t.Chdir("../..")
	cfg := smoke(t)
	res, err := Run(context.Background(), cfg, Options{Backend: testBackend(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("KL %.4f -> %.4f (%.1f%% less), CE %.4f -> %.4f, teacher CE %v, %d steps",
		res.KLBefore, res.KLAfter, 100*res.KLReduction, res.CEBefore, res.CEAfter, *res.TeacherCE, res.Steps)
	if res.KLReduction < 0.8 || res.KLAfter <= 0 {
		t.Errorf("KL %.4f -> %.4f: cut by %.1f%%, want at least 80%%", res.KLBefore, res.KLAfter, 100*res.KLReduction)
	}
	raw, err := os.ReadFile(filepath.Join(cfg.Output.Dir, "metrics.json"))
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"kl_before", "kl_after", "kl_reduction", "ce_before", "ce_after", "teacher_ce", "steps", "tokens_per_second"} {
		if _, ok := m[k].(float64); !ok {
			t.Errorf("metrics.json: %s = %v", k, m[k])
		}
	}
	// config.yaml is the whole recipe, teacher and loss included.
	if back, err := LoadConfig(filepath.Join(cfg.Output.Dir, "config.yaml"), nil); err != nil || back.Teacher == nil || back.Teacher.Path != cfg.Teacher.Path || back.Loss.Name != "forward_kl" {
		t.Errorf("config.yaml: %+v, %v", back.Teacher, err)
	}
	// The student was made from the teacher's configuration.
	sc, err := models.LoadConfig(filepath.Join(cfg.Output.Dir, StudentInitDir, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	if sc.NumLayers != 1 || sc.HiddenSize != 32 || sc.VocabSize != 320 {
		t.Errorf("student config %+v", sc)
	}
	if _, err := models.Load(filepath.Join(cfg.Output.Dir, "model"), models.LoadOptions{}); err != nil {
		t.Errorf("the distilled student: %v", err)
	}
}

// TestOfflineTopKMatchesOnline: with a cache of k = vocabulary the offline
// path gives the same loss (first step, before any update) and the same
// held-out KL as the teacher running live, for forward KL at T = 2.
func TestOfflineTopKMatchesOnline(t *testing.T) {
	t.Chdir("../..")
	b := testBackend(t)
	over := []string{"training.max_steps=2", "loss.temperature=2", "loss.lambda=0.7"}
	online, err := Run(context.Background(), smoke(t, over...), Options{Backend: b})
	if err != nil {
		t.Fatal(err)
	}
	cfg := smoke(t, over...)
	cache := filepath.Join(t.TempDir(), "teacher.parquet")
	writeCache(t, cfg, cache, 320, b)
	// The student is made from teacher.path's configuration, kept for that.
	offline, err := Run(context.Background(), smoke(t, append(over, "teacher.cache="+cache)...), Options{Backend: b})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("online: loss %.6f, KL %.6f; offline: loss %.6f, KL %.6f", online.FirstTrainLoss, online.KLBefore, offline.FirstTrainLoss, offline.KLBefore)
	if d := math.Abs(online.FirstTrainLoss - offline.FirstTrainLoss); d > 1e-4 {
		t.Errorf("first loss online %.6f, offline %.6f", online.FirstTrainLoss, offline.FirstTrainLoss)
	}
	if d := math.Abs(online.KLBefore - offline.KLBefore); d > 1e-4 {
		t.Errorf("kl_before online %.6f, offline %.6f", online.KLBefore, offline.KLBefore)
	}
	if d := math.Abs(online.KLAfter - offline.KLAfter); d > 1e-3 {
		t.Errorf("kl_after online %.6f, offline %.6f", online.KLAfter, offline.KLAfter)
	}
}

// writeCache runs the recipe's teacher over its data as `lethe distill
// cache-teacher` does.
func writeCache(t *testing.T, cfg Config, path string, k int, b compute.Backend) {
	t.Helper()
	ctx := context.Background()
	tm, err := models.Load(cfg.TeacherList()[0].Path, models.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	src, err := CacheSource(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	if err := topk.Write(ctx, path, tm, b, src, k, nil); err != nil {
		t.Fatal(err)
	}
}

// TestLosses: every loss, alone (λ = 1) for 15 steps, decreases during
// training, and the divergences cut the held-out KL by at least 20%. The
// ranking losses order the teacher's top 16 with a margin and PLD ranks
// the data's gold token first: neither matches the teacher's
// probabilities, so the KL is no measure of them.
func TestLosses(t *testing.T) {
	t.Chdir("../..")
	b := testBackend(t)
	for _, name := range Losses {
		t.Run(name, func(t *testing.T) {
			res, err := Run(context.Background(), smoke(t, "loss.name="+name, "training.max_steps=15", "training.log_every=5"), Options{Backend: b})
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("%s: loss %.4f -> %.4f, KL %.4f -> %.4f", name, res.FirstTrainLoss, res.TrainLoss, res.KLBefore, res.KLAfter)
			if !(res.TrainLoss < res.FirstTrainLoss) {
				t.Errorf("%s: training loss %.4f -> %.4f", name, res.FirstTrainLoss, res.TrainLoss)
			}
			if divergence := !strings.HasSuffix(name, "_rank") && name != "pld"; divergence && !(res.KLAfter < 0.8*res.KLBefore) {
				t.Errorf("%s: KL %.4f -> %.4f", name, res.KLBefore, res.KLAfter)
			}
		})
	}
}

// TestTeachersAndHints: two identical teachers weighted 1 and 3 give the
// loss of one; FitNets hints add trained projections and a positive term.
func TestTeachersAndHints(t *testing.T) {
	t.Chdir("../..")
	b := testBackend(t)
	one, err := Run(context.Background(), smoke(t, "training.max_steps=1"), Options{Backend: b})
	if err != nil {
		t.Fatal(err)
	}
	two, err := Run(context.Background(), smoke(t, "training.max_steps=1", "teacher=null",
		"teachers=[{path: models/testdata/tiny-chat, weight: 1}, {path: models/testdata/tiny-chat, weight: 3}]"), Options{Backend: b})
	if err != nil {
		t.Fatal(err)
	}
	if math.Abs(one.FirstTrainLoss-two.FirstTrainLoss) > 1e-5 || math.Abs(one.KLBefore-two.KLBefore) > 1e-5 {
		t.Errorf("one teacher: loss %.6f KL %.6f; the same teacher twice: loss %.6f KL %.6f", one.FirstTrainLoss, one.KLBefore, two.FirstTrainLoss, two.KLBefore)
	}
	hinted, err := Run(context.Background(), smoke(t, "training.max_steps=20", "hints={kind: fitnets, loss: mse, weight: 1}"), Options{Backend: b})
	if err != nil {
		t.Fatal(err)
	}
	// hints.Map(1, 2) pairs student states 0, 1 with teacher states 0, 2:
	// two projections [32, 64] (+ no bias).
	if got, want := hinted.Trainable-one.Trainable, int64(2*32*64); got != want {
		t.Errorf("hints add %d trained parameters, want %d", got, want)
	}
	if !(hinted.FirstTrainLoss > one.FirstTrainLoss) || !(hinted.KLAfter < hinted.KLBefore) {
		t.Errorf("with hints: first loss %.4f (without %.4f), KL %.4f -> %.4f", hinted.FirstTrainLoss, one.FirstTrainLoss, hinted.KLBefore, hinted.KLAfter)
	}
}

// TestSequenceLevelAndOnPolicy: sequence-level KD trains on the teacher's
// greedy completions: the rewritten rows hold exactly what a generator on
// the teacher checkpoint decodes (so the teacher's copy in the student's
// store is the teacher); on-policy batches hold the student's samples;
// training runs in both modes and lowers its loss; noisy student needs
// dropout and implies sequence-level KD.
func TestSequenceLevelAndOnPolicy(t *testing.T) {
	t.Chdir("../..")
	b := testBackend(t)
	ctx := context.Background()
	cfg := smoke(t, "mode.sequence_kd=true", "mode.max_new_tokens=6", "model.path=models/testdata/tiny-chat", "student=null")
	student, err := models.Load(cfg.Model.Path, models.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var teachers []*teacher
	o, err := newObjective(ctx, cfg, finetune.ObjectiveInfo{Model: student, Backend: b}, &teachers)
	if err != nil {
		t.Fatal(err)
	}
	batch := &data.Batch{Size: 2, Length: 12,
		InputIDs:      []int32{1, 40, 41, 42, 50, 51, 0, 0, 0, 0, 0, 0, 1, 60, 61, 62, 63, 64, 65, 0, 0, 0, 0, 0},
		Labels:        []int32{-100, -100, -100, -100, 50, 51, -100, -100, -100, -100, -100, -100, -100, -100, -100, 62, 63, 64, 65, -100, -100, -100, -100, -100},
		AttentionMask: []int32{1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0},
		PositionIDs:   make([]int32, 24), SegmentIDs: make([]int32, 24)}
	got, err := o.teacherCompletions(ctx, batch)
	if err != nil {
		t.Fatal(err)
	}
	tm, err := models.Load("models/testdata/tiny-chat", models.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	gen, err := models.NewGenerator(tm, b).Generate(ctx, [][]int{{1, 40, 41, 42}, {1, 60, 61}}, models.GenerateOptions{Config: o.generationConfig(false)})
	if err != nil {
		t.Fatal(err)
	}
	for r, p := range []int{4, 3} {
		for j, tok := range gen.Tokens[r] {
			if k := r*12 + p + j; k < (r+1)*12 && (got.InputIDs[k] != int32(tok) || got.Labels[k] != int32(tok)) {
				t.Errorf("row %d: ids %v labels %v, teacher's greedy continuation %v", r, got.At(got.InputIDs, r), got.At(got.Labels, r), gen.Tokens[r])
				break
			}
		}
	}
	for _, mode := range []string{"mode.sequence_kd=true", "mode.on_policy=0.5"} {
		res, err := Run(ctx, smoke(t, mode, "training.max_steps=20", "mode.max_new_tokens=16", "data.collate.batch_size=4", "training.log_every=5"), Options{Backend: b})
		if err != nil {
			t.Fatalf("%s: %v", mode, err)
		}
		t.Logf("%s: loss %.4f -> %.4f, KL %.4f -> %.4f", mode, res.FirstTrainLoss, res.TrainLoss, res.KLBefore, res.KLAfter)
		if !(res.TrainLoss < res.FirstTrainLoss) {
			t.Errorf("%s: loss %.4f -> %.4f", mode, res.FirstTrainLoss, res.TrainLoss)
		}
	}
	if _, err := LoadConfig("configs/distill/smoke.yaml", []string{"mode.noisy_student=true"}); err == nil || !strings.Contains(err.Error(), "mode.noisy_student") {
		t.Errorf("noisy student without dropout: %v", err)
	}
	ns := smoke(t, "mode.noisy_student=true", "dropout.residual=0.1", "training.max_steps=10", "mode.max_new_tokens=16", "data.collate.batch_size=4")
	if !ns.Mode.SequenceKD {
		t.Error("noisy student does not imply sequence-level KD")
	}
	if _, err := Run(ctx, ns, Options{Backend: b}); err != nil {
		t.Fatal(err)
	}
}

// TestCompletions: prompts and withCompletions rewrite a row's completion
// and its labels, keep the prompt, and truncate to the row length.
func TestCompletions(t *testing.T) {
	b := &data.Batch{Size: 2, Length: 6,
		InputIDs:      []int32{5, 6, 7, 8, 0, 0, 9, 9, 9, 9, 9, 9},
		Labels:        []int32{-100, -100, 7, 8, -100, -100, -100, 9, 9, 9, 9, 9},
		AttentionMask: []int32{1, 1, 1, 1, 0, 0, 1, 1, 1, 1, 1, 1},
		PositionIDs:   []int32{0, 1, 2, 3, 0, 0, 0, 1, 2, 3, 4, 5},
		SegmentIDs:    []int32{1, 1, 1, 1, 0, 0, 1, 1, 1, 1, 1, 1},
	}
	rows, ps := prompts(b)
	if len(rows) != 2 || len(ps[0]) != 2 || len(ps[1]) != 1 {
		t.Fatalf("prompts %v %v", rows, ps)
	}
	out := withCompletions(b, rows, ps, [][]int32{{40}, {41, 42, 43, 44, 45, 46, 47}})
	want := []int32{5, 6, 40, 0, 0, 0, 9, 41, 42, 43, 44, 45}
	wantL := []int32{-100, -100, 40, -100, -100, -100, -100, 41, 42, 43, 44, 45}
	for i := range want {
		if out.InputIDs[i] != want[i] || out.Labels[i] != wantL[i] {
			t.Fatalf("ids %v labels %v", out.InputIDs, out.Labels)
		}
	}
	if out.Tokens != 9 || out.LossTokens != 6 || b.InputIDs[2] != 7 {
		t.Errorf("tokens %d loss tokens %d (the input batch changed: %v)", out.Tokens, out.LossTokens, b.InputIDs)
	}
}

// TestConfigErrors: problems name their key.
func TestConfigErrors(t *testing.T) {
	t.Chdir("../..")
	for _, c := range []struct{ override, key string }{
		{"loss.name=kl", "loss.name"},
		{"loss.lambda=2", "loss.lambda"},
		{"loss.beta=-1", "loss.beta"},
		{"teacher.dtype=int8", "teacher.dtype"},
		{"teacher.weight=-1", "teacher.weight"},
		{"mode.on_policy=2", "mode.on_policy"},
		{"loss.tail=nope", "loss.tail"},
		{"loss.lamda=1", "lamda"},
	} {
		if _, err := LoadConfig("configs/distill/smoke.yaml", []string{c.override}); err == nil || !strings.Contains(err.Error(), c.key) {
			t.Errorf("%s: %v", c.override, err)
		}
	}
	if _, err := LoadConfig("configs/distill/smoke.yaml", []string{"teacher.cache=x.parquet", "loss.name=jsd"}); err == nil || !strings.Contains(err.Error(), "loss.name") {
		t.Errorf("jsd against a cache: %v", err)
	}
}

// TestRecipeFiles: every recipe in configs/distill/ loads and validates.
func TestRecipeFiles(t *testing.T) {
	t.Chdir("../..")
	paths, err := filepath.Glob("configs/distill/*.yaml")
	if err != nil || len(paths) < 3 {
		t.Fatalf("%v %v", paths, err)
	}
	for _, p := range paths {
		if _, err := LoadConfig(p, nil); err != nil {
			t.Errorf("%s: %v", p, err)
		}
	}
}

// TestTeacherDrop: UNIC's teacher dropping (probability 0.5) over two
// copies of one teacher leaves the objective of that teacher whichever
// term is dropped: the first loss equals the single teacher's.
func TestTeacherDrop(t *testing.T) {
	t.Chdir("../..")
	b := testBackend(t)
	one, err := Run(context.Background(), smoke(t, "training.max_steps=1"), Options{Backend: b})
	if err != nil {
		t.Fatal(err)
	}
	res, err := Run(context.Background(), smoke(t, "training.max_steps=5", "teacher=null", "loss.teacher_drop=0.5",
		"teachers=[{path: models/testdata/tiny-chat, weight: 1}, {path: models/testdata/tiny-chat, weight: 2}]"), Options{Backend: b})
	if err != nil {
		t.Fatal(err)
	}
	if math.Abs(res.FirstTrainLoss-one.FirstTrainLoss) > 1e-5 || !(res.KLAfter < res.KLBefore) {
		t.Errorf("first loss %.6f (one teacher %.6f), KL %.4f -> %.4f", res.FirstTrainLoss, one.FirstTrainLoss, res.KLBefore, res.KLAfter)
	}
}

// TestResumeKeepsKLBefore: a resumed run continues from its checkpoint
// and reports the KL measured before the first step, not at the resumption;
// a finished run folder is not overwritten unless asked.
func TestResumeKeepsKLBefore(t *testing.T) {
	t.Chdir("../..")
	b := testBackend(t)
	dir := filepath.Join(t.TempDir(), "run")
	first, err := Run(context.Background(), smoke(t, "training.max_steps=10", "output.dir="+dir), Options{Backend: b})
	if err != nil {
		t.Fatal(err)
	}
	more, err := Run(context.Background(), smoke(t, "training.max_steps=20", "output.dir="+dir), Options{Backend: b, Resume: true})
	if err != nil {
		t.Fatal(err)
	}
	if more.Steps != 20 || more.KLBefore != first.KLBefore || !(more.KLAfter < first.KLAfter) {
		t.Errorf("resumed: %d steps, KL %.4f -> %.4f; first run KL %.4f -> %.4f", more.Steps, more.KLBefore, more.KLAfter, first.KLBefore, first.KLAfter)
	}
	if _, err := Run(context.Background(), smoke(t, "output.dir="+dir, "output.overwrite=false"), Options{Backend: b}); err == nil || !strings.Contains(err.Error(), "output.dir") {
		t.Errorf("a finished run folder was overwritten: %v", err)
	}
}

// TestBFloat16Teacher: a teacher computing in bfloat16 gives the float32
// teacher's held-out KL within bfloat16's precision.
func TestBFloat16Teacher(t *testing.T) {
	t.Chdir("../..")
	b := testBackend(t)
	f32, err := Run(context.Background(), smoke(t, "training.max_steps=1"), Options{Backend: b})
	if err != nil {
		t.Fatal(err)
	}
	bf16, err := Run(context.Background(), smoke(t, "training.max_steps=1", "teacher.dtype=bfloat16"), Options{Backend: b})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("KL before: float32 teacher %.6f, bfloat16 teacher %.6f", f32.KLBefore, bf16.KLBefore)
	if d := math.Abs(f32.KLBefore - bf16.KLBefore); d > 0.02*f32.KLBefore || d == 0 {
		t.Errorf("KL before: float32 teacher %.6f, bfloat16 teacher %.6f", f32.KLBefore, bf16.KLBefore)
	}
}

// TestLoRAStudentWithVkD: a student trained through LoRA adapters (and
// its LM head, modules_to_save) with V_kD hints still cuts the KL, and
// the run folder holds the adapter in PEFT's format.
func TestLoRAStudentWithVkD(t *testing.T) {
	t.Chdir("../..")
	cfg := smoke(t, "training.max_steps=30", "hints={kind: vkd}",
		"peft={method: lora, r: 8, lora_alpha: 16, target_modules: all-linear, modules_to_save: [lm_head]}")
	res, err := Run(context.Background(), cfg, Options{Backend: testBackend(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("KL %.4f -> %.4f, %d trainable", res.KLBefore, res.KLAfter, res.Trainable)
	if res.KLReduction < 0.5 || res.Adapter == "" {
		t.Errorf("KL %.4f -> %.4f, adapter %q", res.KLBefore, res.KLAfter, res.Adapter)
	}
	if _, err := os.Stat(filepath.Join(res.Adapter, "adapter_config.json")); err != nil {
		t.Error(err)
	}
}

// TestNoisyStudentRounds: two rounds of Noisy Student; the second round's
// teacher is the first round's student, each round's training loss falls,
// and the run folder's summary lists both rounds. (The held-out KL is
// logged, not asserted: the students train on the teachers' greedy
// completions, not on the held-out chats it is measured on.)
func TestNoisyStudentRounds(t *testing.T) {
	t.Chdir("../..")
	cfg := smoke(t, "mode.noisy_student=true", "mode.rounds=2", "dropout.residual=0.1", "training.max_steps=15", "training.log_every=5",
		"mode.max_new_tokens=16", "data.collate.batch_size=4", "loss.lambda=0.9")
	res, err := Run(context.Background(), cfg, Options{Backend: testBackend(t)})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Rounds) != 2 || res.Rounds[1].Teacher != res.Rounds[0].Student || res.Rounds[0].Teacher != "models/testdata/tiny-chat" {
		t.Fatalf("rounds %+v", res.Rounds)
	}
	for _, r := range res.Rounds {
		t.Logf("round %d: loss %.4f -> %.4f, KL to %s %.4f -> %.4f", r.Round, r.FirstTrainLoss, r.TrainLoss, r.Teacher, r.KLBefore, r.KLAfter)
		if !(r.TrainLoss < r.FirstTrainLoss) {
			t.Errorf("round %d: training loss %.4f -> %.4f", r.Round, r.FirstTrainLoss, r.TrainLoss)
		}
	}
	raw, err := os.ReadFile(filepath.Join(cfg.Output.Dir, "metrics.json"))
	if err != nil || !strings.Contains(string(raw), `"rounds"`) {
		t.Errorf("summary: %v %s", err, raw)
	}
	if _, err := LoadConfig("configs/distill/smoke.yaml", []string{"mode.rounds=3"}); err == nil || !strings.Contains(err.Error(), "mode.rounds") {
		t.Errorf("rounds without noisy student: %v", err)
	}
}
