package peft

import (
	. "github.com/gomlx/gomlx/core/graph"

	"github.com/lethe-ml/lethe/models"
)

// ComposeHooks chains several sets of hooks into one: for every hook kind,
// the hooks that are set run in the order given, each seeing the previous
// one's result (for Linear, the output y so far; for Layer, the output so
// far, with the same layer input). A kind that no argument sets stays nil,
// so composing nothing gives the empty Hooks of plain inference.
func ComposeHooks(hs ...models.Hooks) models.Hooks {
	var out models.Hooks
	var emb []func(*Node) *Node
	var probs []func(int, *Node) *Node
	var res []func(int, string, *Node) *Node
	var layer []func(int, *Node, *Node) *Node
	var linear []func(string, *Node, *Node) *Node
	var pen []func(int, *Node) *Node
	var weight []func(string, *Node) *Node
	for _, h := range hs {
		if h.Embeddings != nil {
			emb = append(emb, h.Embeddings)
		}
		if h.AttentionProbs != nil {
			probs = append(probs, h.AttentionProbs)
		}
		if h.Residual != nil {
			res = append(res, h.Residual)
		}
		if h.Layer != nil {
			layer = append(layer, h.Layer)
		}
		if h.Linear != nil {
			linear = append(linear, h.Linear)
		}
		if h.Penultimate != nil {
			pen = append(pen, h.Penultimate)
		}
		if h.Weight != nil {
			weight = append(weight, h.Weight)
		}
	}
	if len(emb) > 0 {
		out.Embeddings = func(x *Node) *Node {
			for _, f := range emb {
				x = f(x)
			}
			return x
		}
	}
	if len(probs) > 0 {
		out.AttentionProbs = func(l int, p *Node) *Node {
			for _, f := range probs {
				p = f(l, p)
			}
			return p
		}
	}
	if len(res) > 0 {
		out.Residual = func(l int, branch string, x *Node) *Node {
			for _, f := range res {
				x = f(l, branch, x)
			}
			return x
		}
	}
	if len(layer) > 0 {
		out.Layer = func(l int, in, o *Node) *Node {
			for _, f := range layer {
				o = f(l, in, o)
			}
			return o
		}
	}
	if len(linear) > 0 {
		out.Linear = func(name string, x, y *Node) *Node {
			for _, f := range linear {
				y = f(name, x, y)
			}
			return y
		}
	}
	if len(pen) > 0 {
		out.Penultimate = func(s int, x *Node) *Node {
			for _, f := range pen {
				x = f(s, x)
			}
			return x
		}
	}
	if len(weight) > 0 {
		out.Weight = func(name string, w *Node) *Node {
			for _, f := range weight {
				w = f(name, w)
			}
			return w
		}
	}
	return out
}
