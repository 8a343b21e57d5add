package train

import (
	"math"
	"path/filepath"
	"slices"
	"testing"

	"github.com/gomlx/compute/dtypes"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"

	"github.com/lethe-ml/lethe/data"
	"github.com/lethe-ml/lethe/models"
	"github.com/lethe-ml/lethe/models/safetensors"
)

const fixtures = "../models/testdata/hf"

// fixtureBatch is the fixtures' input_ids [2, 12] as a training batch
// (labels = ids, no padding).
func fixtureBatch(t testing.TB, arch string) *data.Batch {
	t.Helper()
	f, err := safetensors.Open(filepath.Join(fixtures, arch, "expected.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	ids64, err := f.Int64("input_ids")
	if err != nil {
		t.Fatal(err)
	}
	b := &data.Batch{Size: 2, Length: 12}
	for i, id := range ids64 {
		b.InputIDs = append(b.InputIDs, int32(id))
		b.Labels = append(b.Labels, int32(id))
		b.AttentionMask = append(b.AttentionMask, 1)
		b.PositionIDs = append(b.PositionIDs, int32(i%12))
		b.SegmentIDs = append(b.SegmentIDs, 1)
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

// halves splits a batch into its two rows.
func halves(b *data.Batch) []*data.Batch {
	var out []*data.Batch
	for r := 0; r < b.Size; r++ {
		L := b.Length
		out = append(out, &data.Batch{Size: 1, Length: L,
			InputIDs: b.InputIDs[r*L : (r+1)*L], Labels: b.Labels[r*L : (r+1)*L], AttentionMask: b.AttentionMask[r*L : (r+1)*L],
			PositionIDs: b.PositionIDs[r*L : (r+1)*L], SegmentIDs: b.SegmentIDs[r*L : (r+1)*L]})
	}
	return out
}

func paramValues(t testing.TB, m *models.Model) [][]float32 {
	t.Helper()
	var out [][]float32
	for _, name := range m.ParamNames() {
		v, _ := m.Param(name)
		var vals []float32
		v.MustValue().MustConstFlatData(func(f any) { vals = append(vals, f.([]float32)...) })
		out = append(out, vals)
	}
	return out
}

// TestFullFineTuneLearns trains every weight of the llama fixture on one
// batch and checks the loss falls, the first loss equals transformers', and
// evaluation agrees with the trained loss.
func TestFullFineTuneLearns(t *testing.T) {
	m := loadModel(t, "llama")
	b := fixtureBatch(t, "llama")
	tr, err := NewTrainer(m, testBackend(t), TrainerOptions{Params: m.ParamNames(), Optimizer: OptimizerConfig{LR: 1e-3}})
	if err != nil {
		t.Fatal(err)
	}
	var losses []float64
	for range 5 {
		r, err := tr.Step([]*data.Batch{b}, 1e-3)
		if err != nil {
			t.Fatal(err)
		}
		losses = append(losses, r.Loss)
	}
	if math.Abs(losses[0]-6.170798) > 1e-5 {
		t.Errorf("first loss %.6f, transformers' 6.170798", losses[0])
	}
	if !(losses[4] < losses[0]-0.5) {
		t.Errorf("losses %v did not fall", losses)
	}
	ev, err := tr.Evaluate([]*data.Batch{b})
	if err != nil {
		t.Fatal(err)
	}
	if ev.Tokens != 22 || !(ev.Loss < losses[4]) || math.Abs(ev.Perplexity-math.Exp(ev.Loss)) > 1e-9 || ev.TokenAccuracy <= 0 {
		t.Errorf("eval %+v after losses %v", ev, losses)
	}
}

// TestGradAccumEqualsBigBatch checks that two micro-batches of one row each
// give the same update as one batch of both rows (token-weighted mean).
// It uses SGD: Adam divides by the root of the second moment, which turns
// rounding differences in near-zero gradients into O(lr) updates.
func TestGradAccumEqualsBigBatch(t *testing.T) {
	b := fixtureBatch(t, "gpt2")
	run := func(accum int) [][]float32 {
		m := loadModel(t, "gpt2")
		tr, err := NewTrainer(m, testBackend(t), TrainerOptions{Params: m.ParamNames(), Optimizer: OptimizerConfig{Name: "sgd", LR: 1e-2, MaxGradNorm: 1}, GradAccum: accum})
		if err != nil {
			t.Fatal(err)
		}
		batches := []*data.Batch{b}
		if accum == 2 {
			batches = halves(b)
		}
		for range 2 {
			if _, err := tr.Step(batches, 1e-2); err != nil {
				t.Fatal(err)
			}
		}
		return paramValues(t, m)
	}
	one, two := run(1), run(2)
	worst := 0.0
	for i := range one {
		for j := range one[i] {
			worst = math.Max(worst, math.Abs(float64(one[i][j]-two[i][j])))
		}
	}
	if worst > 2e-6 {
		t.Errorf("accumulated update differs from the big batch's by %g", worst)
	}
}

// TestResumeIsExact: 6 steps equal 3 steps, a checkpoint, a fresh model and
// trainer loading it, and 3 more steps, bit for bit (with dropout drawing
// from the checkpointed random generator).
func TestResumeIsExact(t *testing.T) {
	b := fixtureBatch(t, "qwen3")
	newTrainer := func(m *models.Model) *Trainer {
		hooks := models.Hooks{Residual: func(layer int, branch string, x *Node) *Node {
			keep := m.Store.RandomBernoulli(ScalarLike(x, 0.9), x.Shape())
			return Div(Mul(x, ConvertDType(keep, x.DType())), ScalarLike(x, 0.9))
		}}
		tr, err := NewTrainer(m, testBackend(t), TrainerOptions{Params: m.ParamNames(), Seed: 7,
			Optimizer: OptimizerConfig{LR: 5e-3, WeightDecay: 0.01}, Loss: CausalLM(m, hooks, models.Hooks{}, 0)})
		if err != nil {
			t.Fatal(err)
		}
		return tr
	}
	steps := func(tr *Trainer, from, n int) []float64 {
		var losses []float64
		for s := from; s < from+n; s++ {
			r, err := tr.Step([]*data.Batch{b}, 5e-3*float64(6-s)/6)
			if err != nil {
				t.Fatal(err)
			}
			losses = append(losses, r.Loss)
		}
		return losses
	}
	mA := loadModel(t, "qwen3")
	lossA := steps(newTrainer(mA), 0, 6)
	mB := loadModel(t, "qwen3")
	trB := newTrainer(mB)
	lossB := steps(trB, 0, 3)
	dir := filepath.Join(t.TempDir(), "ckpt")
	if err := trB.SaveCheckpoint(dir, TrainerState{Step: 3}); err != nil {
		t.Fatal(err)
	}
	mC := loadModel(t, "qwen3")
	trC := newTrainer(mC)
	st, err := trC.LoadCheckpoint(dir)
	if err != nil {
		t.Fatal(err)
	}
	if st.Step != 3 {
		t.Fatalf("state %+v", st)
	}
	lossB = append(lossB, steps(trC, 3, 3)...)
	if !slices.Equal(lossA, lossB) {
		t.Errorf("losses differ:\n straight %v\n resumed  %v", lossA, lossB)
	}
	a, c := paramValues(t, mA), paramValues(t, mC)
	for i := range a {
		if !slices.Equal(a[i], c[i]) {
			t.Fatalf("parameter %s differs after resuming", mA.ParamNames()[i])
		}
	}
	_ = dtypes.Float32
}

// TestBFloat16ComputeWithFloat32MasterWeights: a model loaded with bfloat16
// compute and float32 stored weights starts at transformers' loss within
// bfloat16's precision, keeps its weights in float32, and applies updates
// far below bfloat16's resolution (a stored bfloat16 weight of magnitude
// 0.02 moves in steps of 2⁻⁸·0.02 ≈ 8e-5; these are below 1e-5) that agree with
// the float32 run's.
func TestBFloat16ComputeWithFloat32MasterWeights(t *testing.T) {
	b := fixtureBatch(t, "llama")
	deltas := map[bool][]float64{}
	for _, bf16 := range []bool{false, true} {
		opts := models.LoadOptions{}
		if bf16 {
			opts = models.LoadOptions{DType: dtypes.BFloat16, WeightDType: dtypes.Float32}
		}
		m, err := models.Load(filepath.Join(fixtures, "llama"), opts)
		if err != nil {
			t.Fatal(err)
		}
		before := paramValues(t, m) // fails unless the stored weights are float32
		tr, err := NewTrainer(m, testBackend(t), TrainerOptions{Params: m.ParamNames(), Optimizer: OptimizerConfig{Name: "sgd", LR: 1e-5}})
		if err != nil {
			t.Fatal(err)
		}
		r, err := tr.Step([]*data.Batch{b}, 1e-5)
		if err != nil {
			t.Fatal(err)
		}
		if d := math.Abs(r.Loss - 6.170798); d > 2e-2 || (!bf16 && d > 1e-5) {
			t.Errorf("bf16=%v: first loss %.6f, transformers' 6.170798", bf16, r.Loss)
		}
		after := paramValues(t, m)
		for i := range before {
			for j := range before[i] {
				deltas[bf16] = append(deltas[bf16], float64(after[i][j])-float64(before[i][j]))
			}
		}
	}
	var dot, n32, n16, maxAbs float64
	changed := 0
	for i, d := range deltas[true] {
		e := deltas[false][i]
		dot, n32, n16 = dot+d*e, n32+e*e, n16+d*d
		maxAbs = math.Max(maxAbs, math.Abs(d))
		if d != 0 {
			changed++
		}
	}
	cos := dot / math.Sqrt(n32*n16)
	t.Logf("bf16 update: %d of %d weights changed, max |Δ| %.3g, cosine to the float32 update %.4f", changed, len(deltas[true]), maxAbs, cos)
	if maxAbs == 0 || maxAbs > 1e-5 || float64(changed) < 0.5*float64(len(deltas[true])) {
		t.Errorf("bf16 master weights: %d of %d changed, max |Δ| %.3g", changed, len(deltas[true]), maxAbs)
	}
	if cos < 0.99 {
		t.Errorf("bf16 update's cosine to the float32 update is %.4f", cos)
	}
}

// TestGradMasksAndGradients: Gradients equals the update of one SGD step
// with lr 1 (w − w' = g); entries with a zero gradient mask never change
// under AdamW, the others do.
func TestGradMasksAndGradients(t *testing.T) {
	b := fixtureBatch(t, "llama")
	m := loadModel(t, "llama")
	name := "model.layers.0.mlp.up_proj.weight"
	tr, err := NewTrainer(m, testBackend(t), TrainerOptions{Params: []string{name}, Optimizer: OptimizerConfig{Name: "sgd", LR: 1}})
	if err != nil {
		t.Fatal(err)
	}
	v, _ := m.Param(name)
	before := paramOf(t, v)
	grads, err := tr.Gradients(b)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tr.Step([]*data.Batch{b}, 1); err != nil {
		t.Fatal(err)
	}
	after := paramOf(t, v)
	maxDiff, maxG := 0.0, 0.0
	for i := range before {
		maxDiff = math.Max(maxDiff, math.Abs(float64(before[i]-after[i]-grads[name][i])))
		maxG = math.Max(maxG, math.Abs(float64(grads[name][i])))
	}
	if maxDiff > 1e-6 || maxG == 0 {
		t.Errorf("Gradients vs the SGD update: max difference %.3g (max gradient %.3g)", maxDiff, maxG)
	}

	m = loadModel(t, "llama")
	v, _ = m.Param(name)
	n := v.Shape().Size()
	mask := make([]float32, n)
	for i := range mask {
		mask[i] = float32(i % 2)
	}
	mv, err := m.Store.RootScope().In("masks").CreateVariable("up", tensors.FromFlatDataAndDimensions(mask, v.Shape().Dimensions...))
	if err != nil {
		t.Fatal(err)
	}
	tr, err = NewTrainer(m, testBackend(t), TrainerOptions{Params: []string{name}, Optimizer: OptimizerConfig{LR: 1e-2},
		GradMasks: map[string]*model.Variable{name: mv}})
	if err != nil {
		t.Fatal(err)
	}
	before = paramOf(t, v)
	for range 3 {
		if _, err := tr.Step([]*data.Batch{b}, 1e-2); err != nil {
			t.Fatal(err)
		}
	}
	after = paramOf(t, v)
	frozenMoved, trainedMoved := 0, 0
	for i := range before {
		if before[i] != after[i] {
			if mask[i] == 0 {
				frozenMoved++
			} else {
				trainedMoved++
			}
		}
	}
	if frozenMoved != 0 || trainedMoved < n/2-n/20 {
		t.Errorf("masked entries moved: %d; trained entries moved: %d of %d", frozenMoved, trainedMoved, n/2)
	}
	if _, err := NewTrainer(m, testBackend(t), TrainerOptions{Params: []string{name}, Optimizer: OptimizerConfig{LR: 1},
		GradMasks: map[string]*model.Variable{"lm_head.weight": mv}}); err == nil {
		t.Error("a mask for an untrained parameter: no error")
	}
}

func paramOf(t testing.TB, v *model.Variable) []float32 {
	t.Helper()
	var out []float32
	v.MustValue().MustConstFlatData(func(f any) { out = append(out, f.([]float32)...) })
	return out
}

// TestBatchExtraInputs: a batch's side inputs reach the loss as nodes of
// shape [B, T, K], in training steps, accumulation and evaluation; a batch
// with other side inputs is refused.
func TestBatchExtraInputs(t *testing.T) {
	m := loadModel(t, "llama")
	b := fixtureBatch(t, "llama")
	const K = 3
	var w []float32
	var sum float64
	for i := range b.Size * b.Length * K {
		v := float32(i%7) / 10
		w, sum = append(w, v), sum+float64(v)
	}
	b.Extra = []data.Extra{{Name: "w", K: K, Float32: w}}
	base := CausalLM(m, models.Hooks{}, models.Hooks{}, 0)
	loss := func(in Inputs, train bool) models.Outputs {
		out := base(in, train)
		x := in.Extra["w"]
		if d := x.Shape().Dimensions; !slices.Equal(d, []int{b.Size, b.Length, K}) {
			panic("extra input shape")
		}
		out.Loss = Add(out.Loss, ReduceAllSum(x))
		return out
	}
	be := testBackend(t)
	plain, err := NewTrainer(m, be, TrainerOptions{Params: m.ParamNames(), Optimizer: OptimizerConfig{LR: 1e-9}})
	if err != nil {
		t.Fatal(err)
	}
	ref, err := plain.Evaluate([]*data.Batch{{Size: b.Size, Length: b.Length, InputIDs: b.InputIDs, Labels: b.Labels,
		AttentionMask: b.AttentionMask, PositionIDs: b.PositionIDs, SegmentIDs: b.SegmentIDs}})
	if err != nil {
		t.Fatal(err)
	}
	tr, err := NewTrainer(m, be, TrainerOptions{Params: m.ParamNames(), Optimizer: OptimizerConfig{LR: 1e-9}, Loss: loss})
	if err != nil {
		t.Fatal(err)
	}
	ev, err := tr.Evaluate([]*data.Batch{b})
	if err != nil {
		t.Fatal(err)
	}
	if math.Abs(ev.Loss-(ref.Loss+sum)) > 1e-4 {
		t.Errorf("evaluation loss %.6f, want %.6f + %.6f", ev.Loss, ref.Loss, sum)
	}
	st, err := tr.Step([]*data.Batch{b}, 1e-9)
	if err != nil {
		t.Fatal(err)
	}
	if math.Abs(st.Loss-(ref.Loss+sum)) > 1e-4 {
		t.Errorf("step loss %.6f, want %.6f", st.Loss, ref.Loss+sum)
	}
	plainBatch := *b
	plainBatch.Extra = nil
	if _, err := tr.Step([]*data.Batch{&plainBatch}, 1e-9); err == nil {
		t.Error("a batch without the side input was accepted")
	}
}
