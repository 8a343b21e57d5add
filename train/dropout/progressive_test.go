package dropout

import (
	"encoding/json"
	"math"
	"slices"
	"testing"

	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"

	"github.com/lethe-ml/lethe/data"
)

func sample(ids ...int32) data.Sample {
	return data.Sample{IDs: ids, Labels: ids}
}

// TestProgressiveDropsExactlyRight checks Progressive Data Dropout (S et al.
// 2025): after an epoch's observations, later epochs train exactly the
// examples not marked right (by each criterion), the revision epoch trains
// all again, an example seen wrong again comes back, and the state survives
// a JSON round trip.
func TestProgressiveDropsExactlyRight(t *testing.T) {
	samples := []data.Sample{sample(1, 2, 3), sample(4, 5), sample(6, 7, 8, 9), sample(10, 11), sample(12)}
	stats := []ExampleStat{
		{Key: Key(samples[0].IDs), Tokens: 2, Correct: 2, Loss: 0.2}, // all right, mean loss 0.1
		{Key: Key(samples[1].IDs), Tokens: 1, Correct: 0, Loss: 3},   // wrong
		{Key: Key(samples[2].IDs), Tokens: 3, Correct: 2, Loss: 0.6}, // 2/3 right, mean loss 0.2
		{Key: Key(samples[3].IDs), Tokens: 1, Correct: 1, Loss: 1.5}, // right by argmax, high loss
		// samples[4] was not observed
	}
	tests := []struct {
		cfg  ProgressiveConfig
		keep []int // indices of samples kept at epoch 1
	}{
		{ProgressiveConfig{Enabled: true}, []int{1, 2, 4}},
		{ProgressiveConfig{Enabled: true, Criterion: CriterionAccuracy, Threshold: 0.6}, []int{1, 4}},
		{ProgressiveConfig{Enabled: true, Criterion: CriterionLoss, Threshold: 0.25}, []int{1, 3, 4}},
		{ProgressiveConfig{Enabled: false}, []int{0, 1, 2, 3, 4}},
	}
	for _, tc := range tests {
		p, err := NewProgressive(tc.cfg, 0)
		if err != nil {
			t.Fatal(err)
		}
		if got := p.Filter(0, samples); len(got) != len(samples) {
			t.Errorf("%+v: epoch 0 kept %d of %d before any observation", tc.cfg, len(got), len(samples))
		}
		right := p.Observe(stats)
		var want []data.Sample
		for _, i := range tc.keep {
			want = append(want, samples[i])
		}
		got := p.Filter(1, samples)
		if !slices.EqualFunc(got, want, func(a, b data.Sample) bool { return slices.Equal(a.IDs, b.IDs) }) {
			t.Errorf("%+v: epoch 1 keeps %v, want %v", tc.cfg, got, want)
		}
		if tc.cfg.Enabled && right != 4-len(tc.keep)+1 {
			t.Errorf("%+v: Observe counted %d right", tc.cfg, right)
		}
	}
	p, _ := NewProgressive(ProgressiveConfig{Enabled: true, RevisionEpoch: 3}, 2)
	p.Observe([]ExampleStat{{Key: Key([]int32{1, 2}), Tokens: 1, Correct: 1}}) // the batch held samples[0] truncated to 2
	if p.Keep(2, samples[0].IDs) || !p.Keep(3, samples[0].IDs) || !p.Keep(2, samples[1].IDs) {
		t.Error("truncated keys or the revision epoch are wrong")
	}
	state, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	q, _ := NewProgressive(ProgressiveConfig{Enabled: true, RevisionEpoch: 3}, 2)
	if err := json.Unmarshal(state, q); err != nil {
		t.Fatal(err)
	}
	if q.Dropped() != 1 || q.Keep(1, samples[0].IDs) {
		t.Errorf("state %s did not round-trip", state)
	}
	q.Observe([]ExampleStat{{Key: Key([]int32{1, 2}), Tokens: 1, Correct: 0}})
	if !q.Keep(1, samples[0].IDs) || q.Dropped() != 0 {
		t.Error("an example seen wrong again stays dropped")
	}
}

// TestExampleStats checks per-token hits and losses against hand-made
// logits, and their grouping by the examples of a packed row.
func TestExampleStats(t *testing.T) {
	// One row of 6: example A = ids [5, 1, 2] labels [-, 1, 2], example B =
	// ids [7, 3] labels [-, 3], padding.
	b := &data.Batch{Size: 1, Length: 6,
		InputIDs:      []int32{5, 1, 2, 7, 3, 0},
		Labels:        []int32{-100, 1, 2, -100, 3, -100},
		AttentionMask: []int32{1, 1, 1, 1, 1, 0},
		PositionIDs:   []int32{0, 1, 2, 0, 1, 0},
		SegmentIDs:    []int32{1, 1, 1, 2, 2, 0},
	}
	const V = 4
	logits := make([]float32, 6*V)
	argmax := []int{1, 3, 0, 3, 0, 0} // position t-1 predicts label t: right at t=1, wrong at t=2, right at t=4
	for t := range 6 {
		logits[t*V+argmax[t]] = 2
	}
	out, err := model.CallOnce(testBackend(t), model.NewStore(), func(_ *model.Scope, lg, lb *Node) *Node {
		hit, nll := TokenStats(lg, lb)
		return Concatenate([]*Node{hit, nll}, 0) // [2, 6]
	}, tensors.FromFlatDataAndDimensions(logits, 1, 6, V), tensors.FromFlatDataAndDimensions(b.Labels, 1, 6))
	if err != nil {
		t.Fatal(err)
	}
	both := flat(t, out)
	hit, nll := both[:6], both[6:]
	high, low := math.Log(math.Exp(2)+3)-2, math.Log(math.Exp(2)+3) // -log p of the argmax / another token
	wantHit := []float32{0, 1, 0, 0, 1, 0}
	wantNLL := []float64{0, high, low, 0, high, 0}
	for i := range hit {
		if hit[i] != wantHit[i] || math.Abs(float64(nll[i])-wantNLL[i]) > 1e-5 {
			t.Errorf("position %d: hit %g loss %g, want %g %g", i, hit[i], nll[i], wantHit[i], wantNLL[i])
		}
	}
	stats, err := ExampleStats(b, hit, nll)
	if err != nil {
		t.Fatal(err)
	}
	want := []ExampleStat{
		{Key: Key([]int32{5, 1, 2}), Tokens: 2, Correct: 1, Loss: high + low},
		{Key: Key([]int32{7, 3}), Tokens: 1, Correct: 1, Loss: high},
	}
	if len(stats) != 2 {
		t.Fatalf("stats %+v", stats)
	}
	for i := range want {
		if stats[i].Key != want[i].Key || stats[i].Tokens != want[i].Tokens || stats[i].Correct != want[i].Correct || math.Abs(stats[i].Loss-want[i].Loss) > 1e-5 {
			t.Errorf("example %d: %+v, want %+v", i, stats[i], want[i])
		}
	}
}

// TestScorer checks the Scorer on the llama fixture: one stat per example,
// with its loss tokens, and token losses whose mean is the model's loss.
func TestScorer(t *testing.T) {
	m := loadModel(t, "llama")
	b := fixtureBatch(t, "llama")
	_, loss := plainLogits(t, m, b)
	stats, err := NewScorer(testBackend(t), m).Score(b)
	if err != nil {
		t.Fatal(err)
	}
	if len(stats) != 2 {
		t.Fatalf("%d stats for 2 examples", len(stats))
	}
	sum, tokens := 0.0, 0
	for i, s := range stats {
		if s.Key != Key(b.At(b.InputIDs, i)) || s.Tokens != 11 {
			t.Errorf("example %d: %+v", i, s)
		}
		sum += s.Loss
		tokens += s.Tokens
	}
	if math.Abs(sum/float64(tokens)-float64(loss)) > 1e-5 {
		t.Errorf("mean token loss %.6f, model loss %.6f", sum/float64(tokens), loss)
	}
}
