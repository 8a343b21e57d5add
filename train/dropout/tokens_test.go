package dropout

import (
	"math"
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"

	"github.com/lethe-ml/lethe/data"
)

// syntheticBatch is 64 rows of 128 tokens, each row two packed examples
// (a 10-token prompt without labels, then a completion with labels) and
// padding at the end.
func syntheticBatch(t testing.TB) *data.Batch {
	t.Helper()
	rng := rand.New(rand.NewPCG(1, 2))
	var rows [][]data.Sample
	for range 64 {
		var row []data.Sample
		for _, n := range []int{50, 60} {
			s := data.Sample{IDs: make([]int32, n), Labels: make([]int32, n)}
			for i := range n {
				s.IDs[i] = int32(3 + rng.IntN(300))
				s.Labels[i] = data.IgnoreIndex
				if i >= 10 {
					s.Labels[i] = s.IDs[i]
				}
			}
			row = append(row, s)
		}
		rows = append(rows, row)
	}
	b, err := data.NewBatch(rows, 64, 128, 0)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func cloneForCheck(b *data.Batch) *data.Batch { return cloneBatch(b) }

// TestMaskTokens checks token masking and Masked Thought (Chen et al. 2024)
// on a packed batch: only allowed tokens change (non-padding, not the first
// of an example; for Masked Thought only completion tokens, those with a
// label), the fraction masked is the rate within 5σ, labels and every other
// field stay as they were, and the input batch is not changed.
func TestMaskTokens(t *testing.T) {
	b := syntheticBatch(t)
	orig := cloneForCheck(b)
	tests := []struct {
		name    string
		rate    float64
		apply   func(b *data.Batch, rng *rand.Rand) *data.Batch
		allowed func(i int) bool
		field   func(b *data.Batch) []int32 // the field that changes
		masked  func(out *data.Batch, i int) bool
	}{
		{
			name: "replace", rate: 0.15,
			apply: func(b *data.Batch, rng *rand.Rand) *data.Batch {
				return MaskTokens(b, TokenMaskConfig{Rate: 0.15, MaskID: 999}, rng)
			},
			allowed: func(i int) bool { return b.AttentionMask[i] == 1 && b.PositionIDs[i] != 0 },
			field:   func(b *data.Batch) []int32 { return b.InputIDs },
			masked:  func(out *data.Batch, i int) bool { return out.InputIDs[i] == 999 },
		},
		{
			name: "attention", rate: 0.3,
			apply: func(b *data.Batch, rng *rand.Rand) *data.Batch {
				return MaskTokens(b, TokenMaskConfig{Rate: 0.3, Mode: MaskAttention}, rng)
			},
			allowed: func(i int) bool { return b.AttentionMask[i] == 1 && b.PositionIDs[i] != 0 },
			field:   func(b *data.Batch) []int32 { return b.AttentionMask },
			masked:  func(out *data.Batch, i int) bool { return out.AttentionMask[i] != b.AttentionMask[i] },
		},
		{
			name: "masked thought", rate: 0.4,
			apply: func(b *data.Batch, rng *rand.Rand) *data.Batch {
				return MaskThought(b, MaskedThoughtConfig{Rate: 0.4, MaskID: 999}, rng)
			},
			allowed: func(i int) bool { return b.Labels[i] != data.IgnoreIndex },
			field:   func(b *data.Batch) []int32 { return b.InputIDs },
			masked:  func(out *data.Batch, i int) bool { return out.InputIDs[i] == 999 },
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out := tc.apply(b, rand.New(rand.NewPCG(5, 6)))
			if !reflect.DeepEqual(b, orig) {
				t.Fatal("the input batch was changed")
			}
			eligible, masked := 0, 0
			for i := range b.InputIDs {
				if tc.masked(out, i) {
					if !tc.allowed(i) {
						t.Fatalf("token %d (position %d, label %d) masked but not allowed", i, b.PositionIDs[i], b.Labels[i])
					}
					masked++
				}
				if tc.allowed(i) {
					eligible++
				}
			}
			frac := float64(masked) / float64(eligible)
			sd := math.Sqrt(tc.rate * (1 - tc.rate) / float64(eligible))
			t.Logf("%d of %d eligible tokens masked (%.4f, rate %g ± %.4f)", masked, eligible, frac, tc.rate, 5*sd)
			if math.Abs(frac-tc.rate) > 5*sd {
				t.Errorf("masked %.4f of the eligible tokens, want %g ± %.4f", frac, tc.rate, 5*sd)
			}
			// Everything but the masked field is as it was.
			check := cloneForCheck(out)
			copy(tc.field(check), tc.field(b))
			if !reflect.DeepEqual(check, orig) {
				t.Error("a field other than the masked one changed (labels must never change)")
			}
			if !slices.Equal(out.Labels, b.Labels) {
				t.Error("labels changed")
			}
		})
	}
	if out := MaskThought(b, MaskedThoughtConfig{Rate: 0, MaskID: 999}, rand.New(rand.NewPCG(1, 1))); !reflect.DeepEqual(out, b) {
		t.Error("rate 0 changed the batch")
	}
	reg, err := New(loadModel(t, "llama"), Config{MaskedThought: MaskedThoughtConfig{Rate: 1, MaskID: 7}})
	if err != nil {
		t.Fatal(err)
	}
	out := reg.MaskBatch(b, rand.New(rand.NewPCG(1, 1)))
	for i, l := range b.Labels {
		want := b.InputIDs[i]
		if l != data.IgnoreIndex {
			want = 7
		}
		if out.InputIDs[i] != want {
			t.Fatalf("rate 1: token %d (label %d) is %d, want %d", i, l, out.InputIDs[i], want)
		}
	}
}
