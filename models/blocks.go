package models

import (
	"math"
	"sort"

	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/shapes"
	. "github.com/gomlx/gomlx/core/graph"
)

func shapesInt32(dims ...int) shapes.Shape { return shapes.Make(dtypes.Int32, dims...) }

// upcast converts x to float32 for the numerically delicate parts (norms,
// softmax, loss), leaving float64 as it is (gradient checks run in float64).
func upcast(x *Node) *Node {
	if x.DType() == dtypes.Float64 {
		return x
	}
	return ConvertDType(x, dtypes.Float32)
}

// Dimension letters used in shape comments:
//
//	B batch, T query tokens, S key slots (T without a cache), H hidden size,
//	N query heads, K key/value heads, G = N/K query heads per K head,
//	D head dim, F intermediate size, V vocabulary, E experts.

// linearT is a torch Linear: x @ W^T (+ b) with W [out, in].
func linearT(x, w, b *Node) *Node {
	y := DotGeneral(x, []int{x.Rank() - 1}, nil, w, []int{1}, nil) // [..., out]
	if b != nil {
		y = Add(y, ExpandLeftToRank(b, y.Rank()))
	}
	return y
}

// conv1D is GPT-2's Conv1D: x @ W (+ b) with W [in, out].
func conv1D(x, w, b *Node) *Node {
	y := DotGeneral(x, []int{x.Rank() - 1}, nil, w, []int{0}, nil) // [..., out]
	if b != nil {
		y = Add(y, ExpandLeftToRank(b, y.Rank()))
	}
	return y
}

// rmsNorm is Llama's RMSNorm, computed in float32 as transformers does:
// x / sqrt(mean(x²) + eps), cast back, then times w (or 1 + w for Gemma,
// whose product is taken in float32).
func rmsNorm(x, w *Node, eps float64, onePlus bool) *Node {
	dt := x.DType()
	x32 := upcast(x)
	variance := ReduceAndKeep(Square(x32), ReduceMean, -1)
	// 1/sqrt rather than Rsqrt, which has no gradient in GoMLX's Go backend.
	normed := Div(x32, Sqrt(AddScalar(variance, eps)))
	if onePlus {
		scale := OnePlus(ConvertDType(w, x32.DType()))
		return ConvertDType(Mul(normed, ExpandLeftToRank(scale, normed.Rank())), dt)
	}
	normed = ConvertDType(normed, dt)
	return Mul(normed, ExpandLeftToRank(w, normed.Rank()))
}

// layerNorm is torch's LayerNorm over the last axis (biased variance),
// computed in float32.
func layerNorm(x, w, b *Node, eps float64) *Node {
	dt := x.DType()
	x32 := upcast(x)
	mean := ReduceAndKeep(x32, ReduceMean, -1)
	centered := Sub(x32, mean)
	variance := ReduceAndKeep(Square(centered), ReduceMean, -1)
	normed := ConvertDType(Div(centered, Sqrt(AddScalar(variance, eps))), dt)
	y := Mul(normed, ExpandLeftToRank(w, normed.Rank()))
	return Add(y, ExpandLeftToRank(b, y.Rank()))
}

// activations maps config names to functions.
var activations = map[string]func(*Node) *Node{
	"silu":              silu,
	"swish":             silu,
	"gelu":              geluErf,
	"gelu_new":          geluTanh,
	"gelu_pytorch_tanh": geluTanh,
	"gelu_fast":         geluTanh,
	"relu":              func(x *Node) *Node { return Max(x, ZerosLike(x)) },
}

func activationNames() []string {
	out := make([]string, 0, len(activations))
	for k := range activations {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func silu(x *Node) *Node { return Mul(x, Sigmoid(x)) }

// geluErf is the exact GELU: x/2 · (1 + erf(x/√2)).
func geluErf(x *Node) *Node {
	return Mul(MulScalar(x, 0.5), OnePlus(Erf(MulScalar(x, 1/math.Sqrt2))))
}

// geluTanh is the tanh approximation (GPT-2's gelu_new, torch's
// gelu(approximate="tanh")).
func geluTanh(x *Node) *Node {
	inner := MulScalar(Add(x, MulScalar(Mul(x, Square(x)), 0.044715)), math.Sqrt(2/math.Pi))
	return Mul(MulScalar(x, 0.5), OnePlus(Tanh(inner)))
}

// ropeInvFreq returns the rotary inverse frequencies (D/2 values) with the
// scaling of cfg (default, linear or llama3), in float64.
func ropeInvFreq(rc *RopeConfig, headDim int) []float64 {
	half := headDim / 2
	inv := make([]float64, half)
	for i := range inv {
		inv[i] = 1 / math.Pow(rc.Theta, float64(2*i)/float64(headDim))
	}
	switch rc.Type {
	case "linear":
		for i := range inv {
			inv[i] /= rc.Factor
		}
	case "llama3":
		old := float64(rc.OriginalMaxPositions)
		lowWavelen := old / rc.LowFreqFactor
		highWavelen := old / rc.HighFreqFactor
		for i, f := range inv {
			wavelen := 2 * math.Pi / f
			switch {
			case wavelen > lowWavelen:
				inv[i] = f / rc.Factor
			case wavelen < highWavelen:
				inv[i] = f
			default:
				smooth := (old/wavelen - rc.LowFreqFactor) / (rc.HighFreqFactor - rc.LowFreqFactor)
				inv[i] = (1-smooth)*f/rc.Factor + smooth*f
			}
		}
	}
	return inv
}

// ropeCosSin returns cos and sin [B, T, D] for positions [B, T], as
// transformers computes them: freqs = pos · inv_freq, emb = [freqs, freqs],
// in float32.
func ropeCosSin(positions *Node, invFreq []float64) (cos, sin *Node) {
	g := positions.Graph()
	inv32 := make([]float32, len(invFreq))
	for i, f := range invFreq {
		inv32[i] = float32(f)
	}
	pos := ConvertDType(positions, dtypes.Float32)                          // [B, T]
	freqs := Mul(InsertAxes(pos, -1), ExpandLeftToRank(Const(g, inv32), 3)) // [B, T, D/2]
	emb := Concatenate([]*Node{freqs, freqs}, -1)                           // [B, T, D]
	return Cos(emb), Sin(emb)
}

// applyRope rotates x [B, T, heads, D] with cos, sin [B, T, D]:
// x·cos + rotate_half(x)·sin, rotate_half(x) = [-x₂, x₁].
func applyRope(x, cos, sin *Node) *Node {
	d := x.Shape().Dimensions[3]
	x1 := SliceAxis(x, 3, AxisRange(0, d/2))
	x2 := SliceAxis(x, 3, AxisRange(d/2, d))
	rot := Concatenate([]*Node{Neg(x2), x1}, 3)
	c := ConvertDType(InsertAxes(cos, 2), x.DType()) // [B, T, 1, D]
	s := ConvertDType(InsertAxes(sin, 2), x.DType())
	return Add(Mul(x, c), Mul(rot, s))
}

// attentionBias builds the additive mask [B, 1, 1, T, S] in float32: 0 where
// query slot q may see key slot s (s ≤ q, the key is not padding, and within
// the sliding window when window > 0), the lowest float32 elsewhere (as
// transformers does, so fully masked rows stay finite).
//
// start is the slot of the first query (a scalar int32 node); keyMask [B, S]
// is 1 for real tokens. segments [B, T], when not nil (packed rows, T = S),
// numbers the examples of a row: a query sees only keys of its own example.
func attentionBias(start, keyMask, segments *Node, T int, window int) *Node {
	g := keyMask.Graph()
	S := keyMask.Shape().Dimensions[1]
	q := Add(Iota(g, shapesInt32(T, S), 0), ConvertDType(start, dtypes.Int32)) // [T, S] query slot
	s := Iota(g, shapesInt32(T, S), 1)                                         // [T, S] key slot
	allowed := LessOrEqual(s, q)
	if window > 0 {
		allowed = And(allowed, LessThan(Sub(q, s), Scalar(g, dtypes.Int32, window)))
	}
	keys := GreaterThan(ConvertDType(keyMask, dtypes.Int32), Scalar(g, dtypes.Int32, 0)) // [B, S]
	ok := And(InsertAxes(allowed, 0), InsertAxes(keys, 1))                               // [B, T, S]
	if segments != nil {
		seg := ConvertDType(segments, dtypes.Int32)
		ok = And(ok, Equal(InsertAxes(seg, 2), InsertAxes(seg, 1))) // same example
	}
	zero := ZerosLike(ConvertDType(ok, dtypes.Float32))
	low := AddScalar(zero, -math.MaxFloat32)
	return InsertAxes(Where(ok, zero, low), 1, 1) // [B, 1, 1, T, S]
}

// attend is eager scaled dot-product attention with grouped query heads.
// q [B, T, N, D]; k, v [B, K, S, D] (the cache layout); bias [B, 1, 1, T, S]. Scores and
// probabilities are float32 (softmax in bf16 is not available on every
// backend, and transformers upcasts too). probsHook, when set, sees the
// probabilities [B, K, G, T, S] (the dropout site). Returns [B, T, N·D].
func attend(q, k, v, bias *Node, scale float64, probsHook func(*Node) *Node) *Node {
	dims := q.Shape().Dimensions
	B, T, N, D := dims[0], dims[1], dims[2], dims[3]
	K := k.Shape().Dimensions[1]
	G := N / K
	dt := q.DType()
	qg := TransposeAllAxes(Reshape(q, B, T, K, G, D), 0, 2, 3, 1, 4)          // [B, K, G, T, D]
	scores := DotGeneral(qg, []int{4}, []int{0, 1}, k, []int{3}, []int{0, 1}) // [B, K, G, T, S]
	scores = upcast(scores)
	scores = Add(MulScalar(scores, scale), ConvertDType(bias, scores.DType()))
	probs := Softmax(scores, -1)
	if probsHook != nil {
		probs = probsHook(probs)
	}
	out := DotGeneral(ConvertDType(probs, dt), []int{4}, []int{0, 1}, v, []int{2}, []int{0, 1}) // [B, K, G, T, D]
	out = TransposeAllAxes(out, 0, 3, 1, 2, 4)                                                  // [B, T, K, G, D]
	return Reshape(out, B, T, N*D)
}

// causalLMLoss is transformers' loss: labels shifted inside (token t
// predicts t+1), -100 ignored, mean over the predicted tokens, in float32.
// It also returns the number of predicted tokens.
func causalLMLoss(logits, labels *Node) (loss, count *Node) {
	T := logits.Shape().Dimensions[1]
	g := logits.Graph()
	if T < 2 {
		z := Scalar(g, upcast(logits).DType(), 0)
		return z, z
	}
	pred := SliceAxis(logits, 1, AxisRange(0, T-1))                             // [B, T-1, V]
	target := ConvertDType(SliceAxis(labels, 1, AxisRange(1, T)), dtypes.Int32) // [B, T-1]
	nll, valid := tokenNLL(pred, target)
	count = ReduceAllSum(valid)
	loss = Div(ReduceAllSum(Mul(nll, valid)), Max(count, OnesLike(count)))
	return loss, count
}

// tokenNLL returns -log p(target) [B, T] for logits [B, T, V] and a validity
// mask (1 where target != -100) as float32.
func tokenNLL(logits, target *Node) (nll, valid *Node) {
	dims := logits.Shape().Dimensions
	B, T, V := dims[0], dims[1], dims[2]
	g := logits.Graph()
	logp := LogSoftmax(upcast(logits), -1) // [B, T, V]
	valid = ConvertDType(GreaterOrEqual(target, Scalar(g, dtypes.Int32, 0)), logp.DType())
	safe := Max(target, ZerosLike(target)) // -100 → 0, masked out below
	rows := Iota(g, shapesInt32(B*T), 0)
	flatIdx := Add(MulScalar(rows, V), Reshape(safe, B*T))
	picked := Gather(Reshape(logp, B*T*V), InsertAxes(flatIdx, -1)) // [B·T]
	return Neg(Reshape(picked, B, T)), valid
}

// TokenLogProbs returns log p(labels[:, t+1] | tokens ≤ t) [B, T-1] for
// logits [B, T, V] and labels [B, T] (the causal-LM shift, as the loss
// does), in float32, and a mask [B, T-1] that is 1 where the label is not
// IgnoreIndex (-100) and 0 where it is (the log-probability is 0 there).
func TokenLogProbs(logits, labels *Node) (logp, valid *Node) {
	T := logits.Shape().Dimensions[1]
	pred := SliceAxis(logits, 1, AxisRange(0, T-1))
	target := ConvertDType(SliceAxis(labels, 1, AxisRange(1, T)), dtypes.Int32)
	nll, valid := tokenNLL(pred, target)
	return Mul(Neg(nll), valid), valid
}
