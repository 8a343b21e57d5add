package lora

import (
	"bytes"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gomlx/compute"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"

	"github.com/lethe-ml/lethe/data"
	"github.com/lethe-ml/lethe/internal/backend"
	"github.com/lethe-ml/lethe/models"
	"github.com/lethe-ml/lethe/models/safetensors"
	"github.com/lethe-ml/lethe/peft/internal/host"
	"github.com/lethe-ml/lethe/peft/internal/jsonfile"
	"github.com/lethe-ml/lethe/train"
)

const fixtures = "../../models/testdata/hf"

// fixtureAdapters are the PEFT 0.21 adapters of testdata/hf: LoRA for every
// architecture, DoRA and rsLoRA for llama.
var fixtureAdapters = []struct{ arch, variant string }{
	{"llama", "lora"}, {"llama", "dora"}, {"llama", "rslora"},
	{"llama3_rope", "lora"}, {"qwen2", "lora"}, {"qwen3", "lora"}, {"mistral", "lora"},
	{"gemma", "lora"}, {"mixtral", "lora"}, {"gpt2", "lora"},
}

func testBackend(t testing.TB) compute.Backend {
	t.Helper()
	spec := os.Getenv("LETHE_TEST_BACKEND")
	if spec == "" {
		spec = "go:ops_sequential"
	}
	b, _, err := backend.New(spec)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func loadModel(t testing.TB, arch string) *models.Model {
	t.Helper()
	m, err := models.Load(filepath.Join(fixtures, arch), models.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

type expectedFile struct{ f *safetensors.File }

func openExpected(t testing.TB, path string) expectedFile {
	t.Helper()
	f, err := safetensors.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return expectedFile{f}
}

func (e expectedFile) floats(t testing.TB, name string) []float32 {
	t.Helper()
	v, err := e.f.Float32(name)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func (e expectedFile) has(name string) bool {
	_, ok := e.f.Info(name)
	return ok
}

// fixtureIDs returns the fixtures' input_ids [2, 12].
func fixtureIDs(t testing.TB, arch string) []int32 {
	t.Helper()
	e := openExpected(t, filepath.Join(fixtures, arch, "expected.safetensors"))
	v, err := e.f.Int64("input_ids")
	if err != nil {
		t.Fatal(err)
	}
	out := make([]int32, len(v))
	for i, x := range v {
		out[i] = int32(x)
	}
	return out
}

// fixtureBatch is input_ids as a training batch: labels = ids, no padding.
func fixtureBatch(ids []int32) *data.Batch {
	b := &data.Batch{Size: 2, Length: 12}
	for i, id := range ids {
		b.InputIDs = append(b.InputIDs, id)
		b.Labels = append(b.Labels, id)
		b.AttentionMask = append(b.AttentionMask, 1)
		b.PositionIDs = append(b.PositionIDs, int32(i%12))
		b.SegmentIDs = append(b.SegmentIDs, 1)
	}
	return b
}

func flat(t testing.TB, x *tensors.Tensor) []float32 {
	t.Helper()
	v, _, err := host.Float32s(x)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func maxAbsDiff(a, b []float32) float64 {
	if len(a) != len(b) {
		return math.Inf(1)
	}
	d := 0.0
	for i := range a {
		d = math.Max(d, math.Abs(float64(a[i])-float64(b[i])))
	}
	return d
}

func maxAbs(a []float32) float64 {
	d := 0.0
	for _, v := range a {
		d = math.Max(d, math.Abs(float64(v)))
	}
	return d
}

// forward returns the logits and loss of ids with hooks.
func forward(t testing.TB, b compute.Backend, m *models.Model, ids []int32, hooks models.Hooks) ([]float32, float32) {
	t.Helper()
	outs, err := model.CallOnceN(b, m.Store, func(_ *model.Scope, ids *Node) []*Node {
		out := m.Forward(models.Inputs{IDs: ids, Labels: ids}, models.Options{Hooks: hooks})
		return []*Node{out.Logits, out.Loss}
	}, tensors.FromFlatDataAndDimensions(ids, 2, 12))
	if err != nil {
		t.Fatal(err)
	}
	return flat(t, outs[0]), flat(t, outs[1])[0]
}

// fileLayout returns a variable's value as the adapter file holds it.
func fileLayout(t testing.TB, vals []float32, dims []int, transpose bool) []float32 {
	if !transpose {
		return vals
	}
	return (&host.Matrix{Rows: dims[0], Cols: dims[1], Data: vals}).T().Data
}

// expectedKey maps an adapter file key to the fixture's name for its
// gradient or trained value (the DoRA magnitude gets PEFT's ".weight").
func expectedKey(prefix, key string) string {
	if strings.HasSuffix(key, ".lora_magnitude_vector") {
		key += ".weight"
	}
	return prefix + key
}

// TestFixtures checks every PEFT fixture adapter against the reference:
// logits and loss with the adapter, the gradient of every adapter tensor,
// three AdamW steps through train.Trainer, merged logits, unmerge, and a
// byte-identical save.
func TestFixtures(t *testing.T) {
	b := testBackend(t)
	for _, fx := range fixtureAdapters {
		t.Run(fx.arch+"/"+fx.variant, func(t *testing.T) {
			dir := filepath.Join(fixtures, fx.arch, fx.variant)
			exp := openExpected(t, filepath.Join(dir, "expected.safetensors"))
			ids := fixtureIDs(t, fx.arch)
			m := loadModel(t, fx.arch)
			a, err := Load(m, dir, "default")
			if err != nil {
				t.Fatal(err)
			}
			if w := a.Warnings(); len(w) > 0 {
				t.Errorf("warnings: %q", w)
			}

			// Logits and loss with the adapter.
			logits, loss := forward(t, b, m, ids, a.Hooks(false))
			dl := maxAbsDiff(logits, exp.floats(t, "logits"))
			dloss := math.Abs(float64(loss - exp.floats(t, "loss")[0]))
			if dl > 1e-4 || dloss > 1e-4 {
				t.Errorf("logits differ by %.3g, loss by %.3g", dl, dloss)
			}

			// Gradients of the mean causal-LM loss.
			tensorsByKey := a.Tensors()
			keys := sortedKeys(tensorsByKey)
			grads, err := model.CallOnceN(b, m.Store, func(scope *model.Scope, ids *Node) []*Node {
				g := ids.Graph()
				scope.SetTraining(g, true)
				out := m.Forward(models.Inputs{IDs: ids, Labels: ids}, models.Options{Hooks: a.Hooks(true)})
				var nodes []*Node
				for _, k := range keys {
					nodes = append(nodes, tensorsByKey[k].NodeValue(g))
				}
				return Gradient(out.Loss, nodes...)
			}, tensors.FromFlatDataAndDimensions(ids, 2, 12))
			if err != nil {
				t.Fatal(err)
			}
			worstGrad := 0.0
			for i, k := range keys {
				got := fileLayout(t, flat(t, grads[i]), grads[i].Shape().Dimensions, a.Transposed(k))
				want := exp.floats(t, expectedKey("grad.", k))
				rel := maxAbsDiff(got, want) / math.Max(maxAbs(want), 1e-12)
				worstGrad = math.Max(worstGrad, rel)
				if rel > 1e-4 {
					t.Errorf("grad %s differs by %.3g of its max", k, rel)
				}
			}

			// Save reproduces the files.
			out := t.TempDir()
			if err := a.Save(out); err != nil {
				t.Fatal(err)
			}
			for _, name := range []string{"adapter_model.safetensors", "adapter_config.json"} {
				got, _ := os.ReadFile(filepath.Join(out, name))
				want, _ := os.ReadFile(filepath.Join(dir, name))
				if !bytes.Equal(got, want) {
					t.Errorf("saved %s differs from PEFT's (%d vs %d bytes)", name, len(got), len(want))
				}
			}
			gotCfg, _ := os.ReadFile(filepath.Join(out, "adapter_config.json"))
			wantCfg, _ := os.ReadFile(filepath.Join(dir, "adapter_config.json"))
			gv, _ := jsonfile.Decode(gotCfg)
			wv, _ := jsonfile.Decode(wantCfg)
			if !jsonfile.Equal(gv, wv) {
				t.Errorf("saved config is not the same JSON object:\n%s", gotCfg)
			}

			// Merge, plain forward, unmerge.
			if err := a.Merge(); err != nil {
				t.Fatal(err)
			}
			merged, _ := forward(t, b, m, ids, models.Hooks{})
			dm := maxAbsDiff(merged, exp.floats(t, "merged_logits"))
			if dm > 1e-4 {
				t.Errorf("merged logits differ by %.3g", dm)
			}
			if err := a.Unmerge(); err != nil {
				t.Fatal(err)
			}
			base, _ := forward(t, b, m, ids, models.Hooks{})
			baseExp := openExpected(t, filepath.Join(fixtures, fx.arch, "expected.safetensors"))
			du := maxAbsDiff(base, baseExp.floats(t, "logits"))
			if du > 1e-4 {
				t.Errorf("logits after unmerge differ from the base model's by %.3g", du)
			}
			if d := maxAbsDiff(base, logits); d < 1e-2 {
				t.Errorf("the adapter changes the logits by only %.3g: the checks above are vacuous", d)
			}

			// Three AdamW steps on a fresh copy.
			m2 := loadModel(t, fx.arch)
			a2, err := Load(m2, dir, "default")
			if err != nil {
				t.Fatal(err)
			}
			tr, err := train.NewTrainer(m2, b, train.TrainerOptions{
				Params: a2.Params(), Vars: a2.Vars(),
				Optimizer: train.OptimizerConfig{LR: 1e-2, Betas: []float64{0.9, 0.999}, Eps: 1e-8, WeightDecay: 0.01, DecayNormsAndBiases: true},
				Loss:      train.CausalLM(m2, a2.Hooks(true), a2.Hooks(false), 0),
			})
			if err != nil {
				t.Fatal(err)
			}
			batch := fixtureBatch(ids)
			wantLosses := exp.floats(t, "adamw_losses")
			worstLoss := 0.0
			for step := range 3 {
				r, err := tr.Step([]*data.Batch{batch}, 1e-2)
				if err != nil {
					t.Fatal(err)
				}
				d := math.Abs(r.Loss - float64(wantLosses[step]))
				worstLoss = math.Max(worstLoss, d)
				if d > 1e-4 {
					t.Errorf("step %d loss %.6f, PEFT %.6f", step, r.Loss, wantLosses[step])
				}
			}
			worstAfter := 0.0
			t2 := a2.Tensors()
			for _, k := range sortedKeys(t2) {
				vals, dims, err := host.Read(t2[k])
				if err != nil {
					t.Fatal(err)
				}
				got := fileLayout(t, vals, dims, a2.Transposed(k))
				d := maxAbsDiff(got, exp.floats(t, expectedKey("after3.", k)))
				worstAfter = math.Max(worstAfter, d)
				if d > 1e-4 {
					t.Errorf("%s after 3 steps differs by %.3g", k, d)
				}
			}
			t.Logf("max diffs: logits %.2g, loss %.2g, grads %.2g (rel), merged %.2g, unmerged %.2g, adamw losses %.2g, after3 %.2g",
				dl, dloss, worstGrad, dm, du, worstLoss, worstAfter)
		})
	}
}
