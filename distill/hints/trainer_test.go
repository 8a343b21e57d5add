package hints

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/gomlx/compute/dtypes"
	. "github.com/gomlx/gomlx/core/graph"

	"github.com/lethe-ml/lethe/data"
	"github.com/lethe-ml/lethe/models"
	"github.com/lethe-ml/lethe/train"
)

// TestTrainer trains a tiny student and its V_kD projections with lethe's
// trainer against a frozen copy of the student's first weights, through
// Params and Vars: the hint loss falls and the projection stays
// orthogonal.
func TestTrainer(t *testing.T) {
	cfg, err := models.ParseConfig([]byte(`{"model_type": "llama", "vocab_size": 32, "hidden_size": 8,
		"intermediate_size": 16, "num_hidden_layers": 2, "num_attention_heads": 2, "num_key_value_heads": 1,
		"max_position_embeddings": 32}`))
	if err != nil {
		t.Fatal(err)
	}
	student, err := models.New(cfg, models.LoadOptions{}, 1)
	if err != nil {
		t.Fatal(err)
	}
	teacher, err := student.Frozen("teacher")
	if err != nil {
		t.Fatal(err)
	}
	h, err := New(student.Store, Config{Kind: KindVkD, Pairs: []Pair{{1, 2}, {2, 1}}, Seed: 3}, SideOf(cfg), SideOf(cfg))
	if err != nil {
		t.Fatal(err)
	}
	loss := func(in train.Inputs, training bool) models.Outputs {
		out := student.Forward(in.ModelInputs(), models.Options{})
		ref := teacher.Forward(in.ModelInputs(), models.Options{})
		out.Loss = h.Loss(out.Hidden, ref.Hidden, in.Mask)
		out.LossTokens = ReduceAllSum(ConvertDType(in.Mask, dtypes.Float32))
		return out
	}
	tr, err := train.NewTrainer(student, testBackend(t), train.TrainerOptions{
		Params: append(student.ParamNames(), h.Params()...), Vars: h.Vars(), Loss: loss,
		Optimizer: train.OptimizerConfig{LR: 1e-2}})
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 1))
	b := &data.Batch{Size: 2, Length: 6}
	for i := range b.Size * b.Length {
		b.InputIDs = append(b.InputIDs, int32(rng.IntN(cfg.VocabSize)))
		b.Labels = append(b.Labels, -100)
		mask := int32(1)
		if i%b.Length == b.Length-1 && i < b.Length { // one padded token
			mask = 0
		}
		b.AttentionMask = append(b.AttentionMask, mask)
		b.PositionIDs = append(b.PositionIDs, int32(i%b.Length))
		b.SegmentIDs = append(b.SegmentIDs, mask)
	}
	var first, last float64
	for i := range 30 {
		r, err := tr.Step([]*data.Batch{b}, 1e-2)
		if err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			first = r.Loss
		}
		last = r.Loss
	}
	t.Logf("V_kD hint loss %.4f → %.4f in 30 steps", first, last)
	if !(last < 0.5*first) {
		t.Errorf("hint loss %.4f → %.4f: want it halved", first, last)
	}
	skew := flat(h.pairs[0].skew.MustValue())
	moved := 0.0
	for _, v := range skew {
		moved = math.Max(moved, math.Abs(v))
	}
	if moved == 0 {
		t.Errorf("the trainer did not update the projection")
	}
	p := &mat{8, 8, run(t, student.Store, func(g *Graph) []*Node { return []*Node{h.Projection(g, 0)} })[0]}
	if e := orthoError(p); e > 1e-5 {
		t.Errorf("projection after training orthogonal only to %.2g", e)
	}
}
