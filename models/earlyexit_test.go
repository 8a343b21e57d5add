package models

import (
	"testing"

	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/shapes"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"
)

// TestExitLayer checks, for every fixture, that ExitLayer = NumLayers is
// the full forward exactly, that ExitLayer = L gives the final norm and the
// LM head applied to the raw output of layer L (Hidden[L] of the full pass
// exactly, transformers' hidden_states.L within 1e-4), that LayerLogits
// reads the same logits off one pass, and that StartLayer = L resumed from
// Hidden[L] finishes the full pass.
func TestExitLayer(t *testing.T) {
	b := testBackend(t)
	for _, arch := range fixtureArchs {
		t.Run(arch, func(t *testing.T) {
			m := loadFixture(t, arch)
			exp := loadExpected(t, arch)
			ids, shape := exp.ints(t, "input_ids")
			N := m.Config.NumLayers
			all := make([]int, N+1)
			for l := range all {
				all[l] = l
			}
			exec, err := model.NewExec(b, m.Store, func(_ *model.Scope, ids *Node) []*Node {
				full := m.Forward(Inputs{IDs: ids}, Options{})
				res := []*Node{full.Logits}
				for L := 1; L <= N; L++ {
					res = append(res, m.Forward(Inputs{IDs: ids}, Options{ExitLayer: L}).Logits) // 1..N
				}
				for L := 1; L < N; L++ {
					res = append(res, m.Logits(full.Hidden[L], Hooks{})) // N+1..2N-1
				}
				one := m.Forward(Inputs{IDs: ids}, Options{LayerLogits: all})
				res = append(res, one.LayerLogits...) // 2N..3N
				for L := 1; L < N; L++ {
					res = append(res, m.Forward(Inputs{Hidden: full.Hidden[L]}, Options{StartLayer: L}).Logits) // 3N+1..
				}
				return res
			})
			if err != nil {
				t.Fatal(err)
			}
			outs, err := exec.Call(tensors.FromFlatDataAndDimensions(ids, shape...))
			if err != nil {
				t.Fatal(err)
			}
			full := flat(t, outs[0])
			exit := func(L int) []float32 { return flat(t, outs[L]) }
			if d := maxAbsDiff(exit(N), full); d != 0 {
				t.Errorf("ExitLayer = NumLayers differs from the full pass by %g", d)
			}
			for L := 1; L < N; L++ {
				if d := maxAbsDiff(exit(L), flat(t, outs[N+L])); d != 0 {
					t.Errorf("ExitLayer %d differs from head(norm(Hidden[%d])) by %g", L, L, d)
				}
				if d := maxAbsDiff(exit(L), full); d == 0 {
					t.Errorf("ExitLayer %d gives the full logits", L)
				}
				if d := maxAbsDiff(flat(t, outs[3*N+L]), full); d > 1e-5 {
					t.Errorf("StartLayer %d from Hidden[%d] differs from the full pass by %g", L, L, d)
				}
			}
			for L := 1; L <= N; L++ {
				if d := maxAbsDiff(flat(t, outs[2*N+L]), exit(L)); d != 0 {
					t.Errorf("LayerLogits[%d] differs from ExitLayer %d by %g", L, L, d)
				}
			}
			// Against transformers' hidden states: head(norm(hidden_states.L)).
			for L := 0; L < N; L++ {
				h := exp.floats(t, "hidden_states."+string(rune('0'+L)))
				hT := tensors.FromFlatDataAndDimensions(h, shape[0], shape[1], m.Config.HiddenSize)
				got, err := model.CallOnce(b, m.Store, func(_ *model.Scope, h *Node) *Node { return m.Logits(h, Hooks{}) }, hT)
				if err != nil {
					t.Fatal(err)
				}
				want := flat(t, outs[2*N+L])
				if d := maxAbsDiff(flat(t, got), want); d > 1e-4 {
					t.Errorf("layer %d logits differ from head(norm(transformers' hidden_states.%d)) by %g", L, L, d)
				}
			}
		})
	}
}

// TestExitLayerCache checks that an early exit with a cache reads and
// updates only the first layers' caches (the others may be nil and come
// back as given), gives the logits of the pass without a cache, and that
// LayerLogits follows LastTokenOnly.
func TestExitLayerCache(t *testing.T) {
	b := testBackend(t)
	m := loadFixture(t, "qwen2")
	exp := loadExpected(t, "qwen2")
	ids, shape := exp.ints(t, "input_ids")
	B, T := shape[0], shape[1]
	K, D := m.Config.NumKVHeads, m.Config.HeadDim
	exec, err := model.NewExec(b, m.Store, func(_ *model.Scope, ids *Node) []*Node {
		g := ids.Graph()
		z := Zeros(g, shapes.Make(dtypes.Float32, B, K, T, D))
		cache := &Cache{Keys: []*Node{z, nil}, Values: []*Node{z, nil}}
		out := m.Forward(Inputs{IDs: ids, Cache: cache}, Options{ExitLayer: 1, LastTokenOnly: true, LayerLogits: []int{0, 1}})
		if out.Cache.Keys[1] != nil || out.Cache.Values[1] != nil || out.Cache.Keys[0] == z {
			panic("cache entries are not those of the layers run")
		}
		plain := m.Forward(Inputs{IDs: ids}, Options{ExitLayer: 1, LastTokenOnly: true})
		return []*Node{out.Logits, plain.Logits, out.LayerLogits[1], out.LayerLogits[0]}
	})
	if err != nil {
		t.Fatal(err)
	}
	outs, err := exec.Call(tensors.FromFlatDataAndDimensions(ids, shape...))
	if err != nil {
		t.Fatal(err)
	}
	if d := maxAbsDiff(flat(t, outs[0]), flat(t, outs[1])); d > 1e-5 {
		t.Errorf("early exit with a cache differs from without by %g", d)
	}
	if d := maxAbsDiff(flat(t, outs[0]), flat(t, outs[2])); d != 0 {
		t.Errorf("LayerLogits[1] differs from the exit logits by %g", d)
	}
	if got := outs[3].Shape().Dimensions; len(got) != 3 || got[1] != 1 || got[2] != m.Config.VocabSize {
		t.Errorf("LayerLogits with LastTokenOnly has shape %v", got)
	}
}
