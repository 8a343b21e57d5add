package models

import (
	"fmt"

	"github.com/gomlx/compute/dtypes"
	. "github.com/gomlx/gomlx/core/graph"
)

// Mixtral is the Llama layout with a sparse mixture of experts in place of
// the MLP (Hub key layout block_sparse_moe.gate and experts.N.w1/w2/w3):
//
//	p = softmax(gate(h)) in float32; keep the top k experts, renormalise
//	out = Σₖ pₖ · w2(silu(w1 h) · w3 h)
//
// lethe evaluates every expert and weights the unselected ones by zero:
// exact, and simple to differentiate, at E/k times the MLP cost.
var mixtralFamily = family{
	embed: llamaFamily.embed,
	layer: func(st *passState, i int, x *Node) *Node {
		return decoderLayer(st, i, x, false, func(h *Node) *Node {
			return sparseMoE(st, fmt.Sprintf("model.layers.%d.block_sparse_moe.", i), h)
		})
	},
	norm: llamaFamily.norm,
	head: lmHead,
}

func mixtralWeights(c *Config) []weightSpec {
	H, F, E := c.HiddenSize, c.IntermediateSize, c.NumExperts
	return decoderWeights(c, "ones", func(p string) []weightSpec {
		w := []weightSpec{{p + "block_sparse_moe.gate.weight", []int{E, H}, "linear"}}
		for e := 0; e < E; e++ {
			q := fmt.Sprintf("%sblock_sparse_moe.experts.%d.", p, e)
			w = append(w,
				weightSpec{q + "w1.weight", []int{F, H}, "linear"},
				weightSpec{q + "w2.weight", []int{H, F}, "linear"},
				weightSpec{q + "w3.weight", []int{F, H}, "linear"})
		}
		return w
	})
}

// sparseMoE is Mixtral's block_sparse_moe on h [B, T, H].
func sparseMoE(st *passState, p string, h *Node) *Node {
	c := st.m.Config
	E, k := c.NumExperts, c.ExpertsPerToken
	logits := upcast(st.linear(p+"gate", h, false)) // [B, T, E]
	probs := Softmax(logits, -1)
	weights := topKRenormalized(probs, k) // [B, T, E], zero outside the top k
	weights = ConvertDType(weights, h.DType())
	act := activations[c.Activation]
	var out *Node
	for e := 0; e < E; e++ {
		q := fmt.Sprintf("%sexperts.%d.", p, e)
		y := st.linear(q+"w2", Mul(act(st.linear(q+"w1", h, false)), st.linear(q+"w3", h, false)), false) // [B, T, H]
		y = Mul(y, SliceAxis(weights, -1, AxisElem(e)))
		if out == nil {
			out = y
		} else {
			out = Add(out, y)
		}
	}
	return out
}

// topKRenormalized keeps the k largest probabilities of each row of p
// [..., E] (ties: the lower index first, as torch.topk on CPU) and divides
// them by their sum; the others become zero.
func topKRenormalized(p *Node, k int) *Node {
	E := p.Shape().Dimensions[p.Rank()-1]
	pe := InsertAxes(p, -1) // [..., E, 1]: expert e
	pj := InsertAxes(p, -2) // [..., 1, E]: competitor j
	g := p.Graph()
	// j beats e when p_j > p_e, or p_j == p_e and j < e.
	jIdx := Iota(g, shapesInt32(E, E), 1)
	eIdx := Iota(g, shapesInt32(E, E), 0)
	earlier := ExpandLeftToRank(LessThan(jIdx, eIdx), pe.Rank())
	beats := Or(GreaterThan(pj, pe), And(Equal(pj, pe), earlier)) // [..., E, E]
	rank := ReduceSum(ConvertDType(beats, dtypes.Int32), -1)      // [..., E]
	keep := ConvertDType(LessThan(rank, Scalar(g, dtypes.Int32, k)), p.DType())
	kept := Mul(p, keep)
	return Div(kept, ReduceAndKeep(kept, ReduceSum, -1))
}
