package finetune

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gomlx/compute"

	"github.com/lethe-ml/lethe/internal/backend"
	"github.com/lethe-ml/lethe/train"
)

const (
	tinyModel = "../../models/testdata/tiny-chat"
	chatData  = "../../data/testdata/parquet/chat_snappy.parquet"
)

func testBackend(t testing.TB) compute.Backend {
	t.Helper()
	b, _, err := backend.New("go:ops_sequential")
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// tinyRecipe is a recipe for the tiny chat model on the arithmetic chats,
// with a held-out tenth for evaluation.
func tinyRecipe(t testing.TB, overrides ...string) Config {
	t.Helper()
	base := []string{
		"model.path=" + tinyModel,
		"data.train.files=[" + chatData + "]",
		"data.train.split={fraction: 0.1, part: train, seed: 1}",
		"data.eval.files=[" + chatData + "]",
		"data.eval.split={fraction: 0.1, part: eval, seed: 1}",
		"data.collate={batch_size: 8, max_length: 80}",
		"data.shuffle=true",
		"optimizer.lr=3e-3",
		"training.seed=1",
		"training.log_every=10",
		"output.dir=" + filepath.Join(t.TempDir(), "run"),
	}
	cfg, err := LoadConfig("", append(base, overrides...))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func readResult(t testing.TB, dir string) Result {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(dir, SummaryFile))
	if err != nil {
		t.Fatal(err)
	}
	var r Result
	if err := json.Unmarshal(raw, &r); err != nil {
		t.Fatal(err)
	}
	return r
}

// TestFullFineTuneRun: two epochs of full fine-tuning of the tiny chat
// model cut its held-out loss (assistant turns only) by more than half;
// the run folder holds a metrics log with a record per step and one per
// evaluation, a metrics.json equal to the returned Result, and a model/
// checkpoint that, reloaded, scores the held-out set exactly as the run's
// last evaluation did.
func TestFullFineTuneRun(t *testing.T) {
	cfg := tinyRecipe(t, "training.epochs=2", "training.eval_every=20", "training.eval_at_start=true")
	res, err := Run(context.Background(), cfg, Options{Backend: testBackend(t)})
	if err != nil {
		t.Fatal(err)
	}
	if res.InitialEval == nil || res.Eval == nil {
		t.Fatalf("no evaluation: %+v", res)
	}
	t.Logf("eval loss %.4f -> %.4f in %d steps, %.0f tokens/s", res.InitialEval.Loss, res.Eval.Loss, res.Steps, res.TokensPerSecond)
	if res.Eval.Loss > res.InitialEval.Loss/2 {
		t.Errorf("eval loss %.4f -> %.4f: not halved", res.InitialEval.Loss, res.Eval.Loss)
	}
	if res.Steps != res.TotalSteps || res.Epochs != 2 || res.Tokens == 0 || res.PeakMemoryBytes == 0 || res.Trainable != 127296 {
		t.Errorf("result %+v", res)
	}
	if got := readResult(t, cfg.Output.Dir); got.Eval == nil || got.Eval.Loss != res.Eval.Loss || got.Steps != res.Steps || got.Tokens != res.Tokens {
		t.Errorf("metrics.json %+v, result %+v", got, res)
	}
	recs, err := train.ReadMetrics(cfg.Output.Dir)
	if err != nil {
		t.Fatal(err)
	}
	evals := 1 + res.Steps/20
	if res.Steps%20 != 0 {
		evals++
	}
	var steps, withEval int
	for _, r := range recs {
		if _, ok := r.Values["loss"]; ok {
			steps++
		}
		if _, ok := r.Values["eval_loss"]; ok {
			withEval++
		}
	}
	if steps != res.Steps || withEval != evals {
		t.Errorf("metrics.jsonl: %d step records (want %d), %d with an evaluation (want %d)", steps, res.Steps, withEval, evals)
	}
	// The exported model, fine-tuned again for zero steps, evaluates the same.
	again := tinyRecipe(t, "model.path="+filepath.Join(cfg.Output.Dir, ModelDir), "training.max_steps=1",
		"training.eval_at_start=true")
	res2, err := Run(context.Background(), again, Options{Backend: testBackend(t)})
	if err != nil {
		t.Fatal(err)
	}
	if d := math.Abs(res2.InitialEval.Loss - res.Eval.Loss); d > 1e-6 {
		t.Errorf("the exported model evaluates to %.6f, the run ended at %.6f", res2.InitialEval.Loss, res.Eval.Loss)
	}
}

// TestLoRAFineTuneHalvesEvalLoss is the acceptance test of frozen-base
// LoRA: r=16 on every linear projection, with lm_head trained in full
// (modules_to_save, as PEFT users do for a new chat format; the tiny
// model's frozen random head bounds its logits, which keeps LoRA alone at
// about half the loss reduction). The adapter is saved in PEFT's format,
// and loading it back (peft.adapter) or the merged model/ reproduces the
// run's last evaluation.
func TestLoRAFineTuneHalvesEvalLoss(t *testing.T) {
	lora := []string{"peft.method=lora", "peft.r=16", "peft.lora_alpha=32", "peft.target_modules=all-linear",
		"peft.modules_to_save=[lm_head]", "optimizer.lr=5e-3", "schedule.name=cosine", "schedule.warmup_steps=10"}
	cfg := tinyRecipe(t, append(lora, "training.eval_every=20", "training.eval_at_start=true", "output.save_model=true")...)
	start := time.Now()
	res, err := Run(context.Background(), cfg, Options{Backend: testBackend(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("eval loss %.4f -> %.4f in %d steps, %s, %d trainable", res.InitialEval.Loss, res.Eval.Loss, res.Steps, time.Since(start).Round(time.Millisecond), res.Trainable)
	if res.Eval.Loss > res.InitialEval.Loss/2 {
		t.Errorf("eval loss %.4f -> %.4f: not halved", res.InitialEval.Loss, res.Eval.Loss)
	}
	// r·(in+out) for the 7 projections of 2 layers, plus lm_head 320×64.
	perLayer := 16 * ((64 + 64) + (64 + 32) + (64 + 32) + (64 + 64) + 2*(64+160) + (160 + 64))
	if want := int64(2*perLayer + 320*64); res.Trainable != want {
		t.Errorf("%d trainable parameters, want %d", res.Trainable, want)
	}
	for _, f := range []string{"adapter_config.json", "adapter_model.safetensors"} {
		if _, err := os.Stat(filepath.Join(res.Adapter, f)); err != nil {
			t.Error(err)
		}
	}
	check := func(what string, overrides ...string) {
		t.Helper()
		c := tinyRecipe(t, append(overrides, "training.max_steps=1", "training.eval_at_start=true")...)
		r, err := Run(context.Background(), c, Options{Backend: testBackend(t)})
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		if d := math.Abs(r.InitialEval.Loss - res.Eval.Loss); d > 1e-5 {
			t.Errorf("%s evaluates to %.6f, the run ended at %.6f", what, r.InitialEval.Loss, res.Eval.Loss)
		}
	}
	check("the saved adapter", "peft.method=lora", "peft.adapter="+res.Adapter)
	check("the merged model", "model.path="+res.Model)
}

// TestEarlyStopping: with a min_delta no evaluation can meet, the run
// stops after `patience` evaluations without improvement.
func TestEarlyStopping(t *testing.T) {
	cfg := tinyRecipe(t, "training.eval_every=5", "training.early_stopping={patience: 2, min_delta: 100}")
	res, err := Run(context.Background(), cfg, Options{Backend: testBackend(t)})
	if err != nil {
		t.Fatal(err)
	}
	if !res.StoppedEarly || res.Steps != 15 || res.BestStep != 5 {
		t.Errorf("stopped early %v at step %d (want 15), best step %d (want 5)", res.StoppedEarly, res.Steps, res.BestStep)
	}
}

// TestConfigErrors: bad recipes fail before any work with the key named.
func TestConfigErrors(t *testing.T) {
	dir := t.TempDir()
	base := []string{"model.path=m", "data.train.files=[x.parquet]", "data.collate={batch_size: 8, max_length: 64}", "optimizer.lr=1e-4", "output.dir=" + dir}
	for _, tc := range []struct {
		overrides []string
		want      string
	}{
		{[]string{"training.epoch=2"}, "epoch"},
		{[]string{"optimizer.lr=-1"}, "lr"},
		{[]string{"training.early_stopping.patience=2", "training.eval_every=5"}, "needs data.eval"},
		{[]string{"peft.method=lorax"}, "peft.method"},
		{[]string{"peft.r=8"}, "without peft.method"},
		{[]string{"peft.method=lora", "peft.lora_dropout=1.5"}, "peft.lora_dropout"},
		{[]string{"peft.method=lora", "peft.lora_dropout=0.1", "dropout.lora=0.2"}, "disagree"},
		{[]string{"peft.method=lora", "peft.init_lora_weights=olora"}, "peft.init_lora_weights"},
		{[]string{"peft.method=lora", "peft.adapter=a", "peft.r=8"}, "peft.r: set by peft.adapter"},
		{[]string{"peft.method=lora", "peft.target_modules=[1, 2]"}, "peft.target_modules"},
		{[]string{"model.dtype=int8"}, "model.dtype"},
	} {
		_, err := LoadConfig("", append(slices.Clone(base), tc.overrides...))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: error %v, want one naming %q", tc.overrides, err, tc.want)
		}
	}
	if _, err := LoadConfig("", base); err != nil {
		t.Errorf("valid recipe: %v", err)
	}
}

// cancelAt cancels a context when the progress line of a step is logged.
type cancelAt struct {
	line   string
	cancel context.CancelFunc
}

func (c cancelAt) Write(p []byte) (int, error) {
	if strings.Contains(string(p), c.line) {
		c.cancel()
	}
	return len(p), nil
}

// TestInterruptAndResumeIsExact: a run cancelled after step 30 writes a
// checkpoint; resuming it ends with the same weights, bit for bit, and
// the same losses as the run that was never interrupted (with residual
// dropout and shuffling, so the random generator and the data position
// must both be restored).
func TestInterruptAndResumeIsExact(t *testing.T) {
	b := testBackend(t)
	common := []string{"training.max_steps=50", "training.eval_every=25", "dropout.residual=0.1", "schedule.name=cosine", "schedule.warmup_steps=5"}
	straight := tinyRecipe(t, common...)
	want, err := Run(context.Background(), straight, Options{Backend: b})
	if err != nil {
		t.Fatal(err)
	}
	cut := tinyRecipe(t, common...)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	_, err = Run(ctx, cut, Options{Backend: b, Log: cancelAt{"step 30/50", cancel}})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("interrupted run: %v", err)
	}
	if _, err := os.Stat(filepath.Join(cut.Output.Dir, CheckpointsDir, "step-0000030")); err != nil {
		t.Fatalf("no checkpoint at the interruption: %v", err)
	}
	if _, err := Run(context.Background(), cut, Options{Backend: b}); err == nil || !strings.Contains(err.Error(), "--resume") {
		t.Errorf("a new run over an unfinished one: %v", err)
	}
	got, err := Run(context.Background(), cut, Options{Backend: b, Resume: true})
	if err != nil {
		t.Fatal(err)
	}
	if got.Steps != 50 || got.TrainLoss != want.TrainLoss || got.Eval.Loss != want.Eval.Loss || got.FirstTrainLoss != want.FirstTrainLoss {
		t.Errorf("resumed %+v\nstraight %+v", got, want)
	}
	a, _ := os.ReadFile(filepath.Join(straight.Output.Dir, ModelDir, "model.safetensors"))
	c, _ := os.ReadFile(filepath.Join(cut.Output.Dir, ModelDir, "model.safetensors"))
	if len(a) == 0 || !bytes.Equal(a, c) {
		t.Error("the resumed run's weights differ from the uninterrupted run's")
	}
	ra, _ := train.ReadMetrics(straight.Output.Dir)
	rc, _ := train.ReadMetrics(cut.Output.Dir)
	if len(ra) != len(rc) {
		t.Fatalf("metrics: %d records straight, %d resumed", len(ra), len(rc))
	}
	for i := range ra {
		if ra[i].Step != rc[i].Step || ra[i].Values["loss"] != rc[i].Values["loss"] || ra[i].Values["lr"] != rc[i].Values["lr"] {
			t.Errorf("record %d: straight %v, resumed %v", i, ra[i], rc[i])
		}
	}
}

// TestMoEFineTune trains a mixture of LoRA experts (SiRA: top-2 of 4, with
// capacity, expert dropout and the balance loss) and reloads the saved
// adapter, which must reproduce the run's last evaluation.
func TestMoEFineTune(t *testing.T) {
	cfg := tinyRecipe(t, "peft.method=moe", "peft.num_experts=4", "peft.top_k=2", "peft.r=8", "peft.lora_alpha=16",
		"peft.target_modules=all-linear", "peft.capacity_factor=1.5", "peft.expert_dropout=0.1",
		"optimizer.lr=5e-3", "training.max_steps=40", "training.eval_every=20", "training.eval_at_start=true")
	res, err := Run(context.Background(), cfg, Options{Backend: testBackend(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("eval loss %.4f -> %.4f, %d trainable", res.InitialEval.Loss, res.Eval.Loss, res.Trainable)
	if !(res.Eval.Loss < res.InitialEval.Loss-1) {
		t.Errorf("eval loss %.4f -> %.4f", res.InitialEval.Loss, res.Eval.Loss)
	}
	// Per module: router N·in, A N·r·in, B N·out·r; q, k, v, o, gate, up,
	// down of 2 layers with (in, out) as in TestBench.
	want := 0
	for _, io := range [][2]int{{64, 64}, {64, 32}, {64, 32}, {64, 64}, {64, 160}, {64, 160}, {160, 64}} {
		want += 4*io[0] + 4*8*io[0] + 4*io[1]*8
	}
	if res.Trainable != int64(2*want) {
		t.Errorf("%d trainable, want %d", res.Trainable, 2*want)
	}
	again := tinyRecipe(t, "peft.method=moe", "peft.adapter="+res.Adapter, "training.max_steps=1", "training.eval_at_start=true")
	r2, err := Run(context.Background(), again, Options{Backend: testBackend(t)})
	if err != nil {
		t.Fatal(err)
	}
	if d := math.Abs(r2.InitialEval.Loss - res.Eval.Loss); d > 1e-5 {
		t.Errorf("the saved adapter evaluates to %.6f, the run ended at %.6f", r2.InitialEval.Loss, res.Eval.Loss)
	}
	if _, err := LoadConfig("", []string{"model.path=m", "data.train.files=[x]", "data.collate={batch_size: 8, max_length: 64}",
		"optimizer.lr=1", "output.dir=o", "peft.method=moe", "output.save_model=true"}); err == nil || !strings.Contains(err.Error(), "output.save_model") {
		t.Errorf("moe with save_model: %v", err)
	}
}

// TestDatasetShapes fine-tunes on the other dataset shapes of package data:
// prompt/completion rows (loss on the completion; rows with a null are
// skipped) and plain text (loss on every token after the first).
func TestDatasetShapes(t *testing.T) {
	for _, tc := range []struct{ name, file string }{
		{"prompt_completion", "../../data/testdata/parquet/prompt_completion_gzip.parquet"},
		{"text", "../../data/testdata/parquet/text_plain_v1.parquet"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := tinyRecipe(t, "data.train.files=["+tc.file+"]", "data.eval.files=["+tc.file+"]",
				"training.max_steps=30", "training.eval_at_start=true", "training.eval_every=30")
			res, err := Run(context.Background(), cfg, Options{Backend: testBackend(t)})
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("eval loss %.4f -> %.4f on %d tokens", res.InitialEval.Loss, res.Eval.Loss, res.Eval.Tokens)
			if !(res.Eval.Loss < 0.7*res.InitialEval.Loss) || res.Eval.Tokens == 0 {
				t.Errorf("eval %+v, initial %+v", res.Eval, res.InitialEval)
			}
		})
	}
}

// TestEarlyExitRecipe: early_exit with all the weight on the last layer
// trains exactly as the plain recipe (same first loss and evaluation);
// LayerSkip's weights add the worse early exits to the first loss; an
// early-exit run still evaluates the last layer's loss.
func TestEarlyExitRecipe(t *testing.T) {
	b := testBackend(t)
	run := func(over ...string) *Result {
		t.Helper()
		res, err := Run(context.Background(), tinyRecipe(t, append([]string{"training.max_steps=3"}, over...)...), Options{Backend: b})
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	plain := run()
	last := run("early_exit={weights: [0, 1]}")
	layerskip := run("early_exit={scale: 1}")
	if math.Abs(plain.FirstTrainLoss-last.FirstTrainLoss) > 1e-6 || math.Abs(plain.Eval.Loss-last.Eval.Loss) > 1e-5 {
		t.Errorf("weights [0, 1]: first loss %.6f eval %.6f; plain %.6f %.6f", last.FirstTrainLoss, last.Eval.Loss, plain.FirstTrainLoss, plain.Eval.Loss)
	}
	if !(layerskip.FirstTrainLoss > plain.FirstTrainLoss) || layerskip.Eval == nil {
		t.Errorf("LayerSkip first loss %.4f, plain %.4f", layerskip.FirstTrainLoss, plain.FirstTrainLoss)
	}
	if _, err := LoadConfig("", []string{"model.path=x", "data.train.files=[y]", "output.dir=z", "early_exit={scale: 1, evry: 2}"}); err == nil || !strings.Contains(err.Error(), "evry") {
		t.Errorf("unknown early_exit key: %v", err)
	}
}
