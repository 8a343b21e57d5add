package dropout

import (
	"math"
	"testing"

	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"

	"github.com/lethe-ml/lethe/models"
)

// TestMaskConnections checks token-level masking (Wu et al. 2023) on causal
// attention [B=2, K=1, G=2, T=6]: with fixed masked tokens and modes, every
// row equals the softmax of its scores restricted to the connections TLM
// keeps (computed here in float64): unmasked queries drop masked keys,
// siblings-masked queries keep only themselves, self-masked queries drop
// themselves, and a row left empty keeps its probabilities.
func TestMaskConnections(t *testing.T) {
	const B, G, T = 2, 2, 6
	scores := make([]float64, B*G*T*T)
	for i := range scores {
		scores[i] = math.Sin(float64(i)*1.7) * 2
	}
	// Token 0 of row 0 is self-masked: it has no other key, so its row is kept.
	masked := [B][T]bool{{true, false, true, false, true, false}, {false, true, false, false, true, true}}
	sibling := [B][T]bool{{false, false, true, false, false, false}, {false, true, false, false, false, true}}
	probs := make([]float32, len(scores))
	want := make([]float32, len(scores))
	softmax := func(row []float64, allowed func(s int) bool, out []float32) {
		mx := math.Inf(-1)
		for s := range row {
			if allowed(s) {
				mx = math.Max(mx, row[s])
			}
		}
		sum := 0.0
		for s := range row {
			if allowed(s) {
				sum += math.Exp(row[s] - mx)
			}
		}
		for s := range row {
			out[s] = 0
			if allowed(s) {
				out[s] = float32(math.Exp(row[s]-mx) / sum)
			}
		}
	}
	for b := range B {
		for g := range G {
			for q := range T {
				o := ((b*G+g)*T + q) * T
				row := scores[o : o+T]
				softmax(row, func(s int) bool { return s <= q }, probs[o:o+T])
				keep := func(s int) bool {
					if s > q {
						return false
					}
					switch {
					case !masked[b][q]:
						return !masked[b][s]
					case sibling[b][q]:
						return s == q
					default:
						return s != q
					}
				}
				if q == 0 && masked[b][q] && !sibling[b][q] {
					keep = func(s int) bool { return s <= q } // nothing left: unchanged
				}
				softmax(row, keep, want[o:o+T])
			}
		}
	}
	toBool := func(m [B][T]bool) *tensors.Tensor {
		var v []bool
		for b := range B {
			v = append(v, m[b][:]...)
		}
		return tensors.FromFlatDataAndDimensions(v, B, T)
	}
	got, err := model.CallOnce(testBackend(t), model.NewStore(), func(_ *model.Scope, p, m, s *Node) *Node {
		return MaskConnections(p, m, s)
	}, tensors.FromFlatDataAndDimensions(probs, B, 1, G, T, T), toBool(masked), toBool(sibling))
	if err != nil {
		t.Fatal(err)
	}
	if d := maxAbsDiff(flat(t, got), want); d > 1e-6 {
		t.Errorf("masked attention differs from the masked softmax by %g", d)
	}
}

// TestTokenLevelMaskRate checks the in-graph draw: rate 0 is bitwise the
// identity; at rate 1 with siblings-masking every token attends only to
// itself, with self-masking every token but the first attends only to
// others; and the llama fixture's logits change with TLM on.
func TestTokenLevelMaskRate(t *testing.T) {
	const B, T = 3, 5
	probs := make([]float32, B*T*T)
	for b := range B {
		for q := range T {
			for s := 0; s <= q; s++ {
				probs[(b*T+q)*T+s] = 1 / float32(q+1)
			}
		}
	}
	store := model.NewStore()
	for _, tc := range []struct {
		rate float32
		mode string
		want func(q, s int) float32
	}{
		{0, TLMBoth, func(q, s int) float32 { return probs[q*T+s] }},
		{1, TLMSiblings, func(q, s int) float32 { return map[bool]float32{true: 1}[q == s] }},
		{1, TLMSelf, func(q, s int) float32 {
			switch {
			case q == 0:
				return map[bool]float32{true: 1}[s == 0]
			case s < q:
				return 1 / float32(q)
			}
			return 0
		}},
	} {
		got, err := model.CallOnce(testBackend(t), store, func(_ *model.Scope, p, rate *Node) *Node {
			return TokenLevelMask(store, p, rate, tc.mode)
		}, tensors.FromFlatDataAndDimensions(probs, B, 1, 1, T, T), tensors.FromScalar(tc.rate))
		if err != nil {
			t.Fatal(err)
		}
		vals := flat(t, got)
		for b := range B {
			for q := range T {
				for s := range T {
					if v, w := vals[(b*T+q)*T+s], tc.want(q, s); math.Abs(float64(v-w)) > 1e-6 {
						t.Fatalf("rate %g %s: row %d query %d key %d is %g, want %g", tc.rate, tc.mode, b, q, s, v, w)
					}
				}
			}
		}
	}
	m := loadModel(t, "llama")
	b := fixtureBatch(t, "llama")
	plain, _ := plainLogits(t, m, b)
	reg, err := New(m, Config{TLM: TLMConfig{Rate: 0.3}})
	if err != nil {
		t.Fatal(err)
	}
	out, _ := run(t, forwardExec(t, m, models.Options{Hooks: reg.Hooks()}), idsTensor(b))
	if d := maxAbsDiff(out[0], plain); d < 1e-3 {
		t.Errorf("TLM at 0.3 changed the logits by only %g", d)
	}
}
