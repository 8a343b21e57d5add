package dropout

import (
	"fmt"

	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/shapes"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/ml/model"
)

// TokenLevelMask is Token-Level Masking (Wu et al. 2023, "TLM: Token-Level
// Masking for Transformers") of one layer's attention probabilities probs
// [B, K, G, T, S] (T = S: training graphs have no cache). Each token is
// masked with probability rate (a float32 scalar node), drawn anew per
// layer; then no other token attends to a masked token, and a masked token
// attends
//
//   - siblings-masking: only to itself;
//   - self-masking: to the others but not to itself;
//
// mode "both" choosing one of the two at random per masked token, as the
// authors' code does. Masking a connection after the softmax and
// renormalising each row is exactly masking its score before the softmax
// (softmax restricted to the kept keys). A row left with nothing to attend
// to (self-masking of the first token of a sequence) keeps its
// probabilities. Rate 0 is exactly the identity.
func TokenLevelMask(store *model.Store, probs, rate *Node, mode string) *Node {
	g := probs.Graph()
	dims := probs.Shape().Dimensions
	if len(dims) != 5 || dims[3] != dims[4] {
		panic(fmt.Errorf("dropout: token-level masking needs attention probabilities [B, K, G, T, T] (no cache), got %s", probs.Shape()))
	}
	B, T := dims[0], dims[3]
	rate = ConvertDType(rate, dtypes.Float32)
	masked := LessThan(store.RandomUniform(g, shapes.Make(dtypes.Float32, B, T)), rate) // [B, T]
	var siblings *Node
	switch mode {
	case TLMSiblings:
		siblings = BroadcastToDims(Const(g, true), B, T)
	case TLMSelf:
		siblings = BroadcastToDims(Const(g, false), B, T)
	default:
		half := Scalar(g, dtypes.Float32, 0.5)
		siblings = LessThan(store.RandomUniform(g, shapes.Make(dtypes.Float32, B, T)), half)
	}
	return Where(GreaterThan(rate, ZerosLike(rate)), MaskConnections(probs, masked, siblings), probs)
}

// MaskConnections applies a token-level mask to attention probabilities
// probs [B, K, G, T, T]: masked [B, T] marks the masked tokens and siblings
// [B, T] picks siblings-masking (true) or self-masking (false) for each;
// see TokenLevelMask.
func MaskConnections(probs, masked, siblings *Node) *Node {
	g := probs.Graph()
	dims := probs.Shape().Dimensions
	B, T := dims[0], dims[3]
	eye := Equal(Iota(g, shapes.Make(dtypes.Int32, T, T), 0), Iota(g, shapes.Make(dtypes.Int32, T, T), 1))
	eye = BroadcastToDims(InsertAxes(eye, 0), B, T, T)           // [B, T, S]: key is the query
	query := BroadcastToDims(InsertAxes(masked, -1), B, T, T)    // [B, T, S]: the query is masked
	sib := BroadcastToDims(InsertAxes(siblings, -1), B, T, T)    // [B, T, S]: ... by siblings-masking
	key := BroadcastToDims(InsertAxes(masked, 1), B, T, T)       // [B, T, S]: the key is masked
	keepMasked := Where(sib, eye, LogicalNot(eye))               // a masked query's keys
	keep := Where(query, keepMasked, LogicalNot(key))            // [B, T, S]
	keepF := InsertAxes(ConvertDType(keep, probs.DType()), 1, 1) // [B, 1, 1, T, S]
	kept := Mul(probs, keepF)                                    // [B, K, G, T, S]
	sum := ReduceAndKeep(kept, ReduceSum, -1)                    // [B, K, G, T, 1]
	ok := GreaterThan(sum, ZerosLike(sum))                       // the row kept something
	renorm := Div(kept, Where(ok, sum, OnesLike(sum)))           // never divides by 0
	return Where(BroadcastToDims(ok, dims...), renorm, probs)
}
