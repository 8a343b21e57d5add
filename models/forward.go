package models

import (
	"fmt"
	"math"
	"slices"

	"github.com/gomlx/compute/dtypes"
	. "github.com/gomlx/gomlx/core/graph"
)

// Inputs are the graph inputs of a forward pass.
type Inputs struct {
	// IDs are the token ids [B, T] (any integer dtype).
	IDs *Node
	// Positions [B, T] are the position ids; nil means Start+0..T-1.
	Positions *Node
	// Mask [B, S] is 1 for real tokens and 0 for padding, over key slots:
	// S = T without a cache, the cache length with one. nil means no
	// padding.
	Mask *Node
	// Cache, when set, holds the keys and values of earlier slots; the T new
	// tokens are written to slots [Start, Start+T) and attend to all slots
	// up to theirs.
	Cache *Cache
	// Start is the slot of the first token, a scalar int32 (needed with a
	// Cache; nil means 0).
	Start *Node
	// Hidden, with Options.StartLayer > 0, is the input [B, T, H] of layer
	// StartLayer (the raw output of the layer before it, as
	// Outputs.Hidden[StartLayer] of a full pass holds it), used in place of
	// the embeddings; IDs may then be nil.
	Hidden *Node
	// Labels [B, T], when set, gives Outputs.Loss (transformers'
	// causal-LM loss: shifted inside, -100 ignored).
	Labels *Node
	// SegmentIDs [B, T], for packed rows (no cache): tokens attend only to
	// tokens with the same segment id (data.Batch numbers the examples of a
	// row 1, 2, ... and padding 0). Give Positions restarting per example.
	SegmentIDs *Node
}

// Cache is the key/value cache of a forward pass: per layer, keys and
// values [B, K, S, D] for S slots (transformers' layout, which attention
// reads without a transpose). It has NumLayers entries; those of layers a
// pass does not run (Options.StartLayer, Options.ExitLayer) may be nil and
// are returned as they came.
type Cache struct {
	Keys, Values []*Node
}

// Outputs are the results of a forward pass.
type Outputs struct {
	// Logits [B, T, V], or [B, 1, V] with Options.LastTokenOnly.
	Logits *Node
	// Hidden holds NumLayers+1 states [B, T, H] as transformers'
	// output_hidden_states: the embeddings, the output of every layer but
	// the last, and the last after the final norm. With Options.ExitLayer
	// E (and StartLayer s) it holds E−s+1: the input (embeddings or
	// Inputs.Hidden), the outputs of layers s+1..E−1 and that of layer E
	// after the final norm (when no layer runs, s = E: the input and the
	// input after the final norm).
	Hidden []*Node
	// LayerLogits are the logits [B, T, V] (or [B, 1, V] with
	// LastTokenOnly) of Options.LayerLogits, in its order: the final norm
	// and the LM head applied to the output of each listed layer.
	LayerLogits []*Node
	// Cache is the updated cache (nil without one).
	Cache *Cache
	// Loss and LossTokens are set when Inputs.Labels is.
	Loss, LossTokens *Node
}

// Options change how a forward pass is built.
type Options struct {
	// Hooks are where training injects dropout and adapters.
	Hooks Hooks
	// LastTokenOnly computes the LM head on the last position only
	// (generation).
	LastTokenOnly bool
	// HeadSamples > 1 runs the LM head on that many samples of the
	// Penultimate hook (multi-sample dropout): Loss is the mean of their
	// losses and Logits the mean of their logits.
	HeadSamples int
	// ExitLayer, when > 0, runs only the first ExitLayer decoder layers and
	// then the final norm and the LM head on their output (LayerSkip's
	// early exit); 0 runs them all. With a Cache only those layers' caches
	// are read and updated.
	ExitLayer int
	// StartLayer, when > 0, starts the pass at layer StartLayer (0-based)
	// from Inputs.Hidden instead of the embeddings: the rest of a pass
	// whose first layers ran elsewhere (self-speculative verification).
	StartLayer int
	// LayerLogits lists layers whose output also goes through the final
	// norm and the LM head (Outputs.LayerLogits, e.g. DoLa's premature
	// layers or the early-exit loss): l in [StartLayer, ExitLayer] is the
	// state after l layers, l = StartLayer the pass's input (the
	// embeddings when 0), the last one the state Logits come from. The
	// Penultimate hook does not apply to them.
	LayerLogits []int
}

// Hooks are the points where fine-tuning changes a forward pass (dropout of
// several kinds, adapters, layer dropping). Nil hooks leave it unchanged,
// which is how inference runs.
type Hooks struct {
	// Embeddings sees the input embeddings [B, T, H] (after scaling and,
	// for GPT-2, positions).
	Embeddings func(x *Node) *Node
	// AttentionProbs sees a layer's attention probabilities [B, K, G, T, S]
	// (float32).
	AttentionProbs func(layer int, probs *Node) *Node
	// Residual sees a branch ("attn" or "mlp") of a layer before it is added
	// to the residual stream.
	Residual func(layer int, branch string, x *Node) *Node
	// Layer sees a whole layer: in is its input, out its output; returning
	// in drops the layer (LayerDrop).
	Layer func(layer int, in, out *Node) *Node
	// Linear sees every projection: name is the module's Hugging Face name
	// ("model.layers.0.self_attn.q_proj"), x its input and y its output.
	// Adapters (LoRA, DoRA) return y plus their update.
	Linear func(name string, x, y *Node) *Node
	// Penultimate sees the final hidden states [B, T, H] (after the final
	// norm) before the LM head; sample numbers the head samples of
	// Options.HeadSamples (0 otherwise).
	Penultimate func(sample int, x *Node) *Node
	// Weight sees every projection weight as the layer reads it (name is
	// the tensor's Hugging Face name; Linear weights are [in, out], see
	// Model.Param): Mixout swaps entries for their pretrained values here.
	Weight func(name string, w *Node) *Node
}

// passState is what the layers of one forward pass share.
type passState struct {
	m     *Model
	opts  *Options
	cos   *Node // [B, T, D] (nil without RoPE)
	sin   *Node
	bias  *Node // [B, 1, 1, T, S] additive attention mask
	start *Node // scalar int32
	cache *Cache
	out   *Cache // updated cache
}

// Forward builds a forward pass in the graph of in.IDs (of in.Hidden with
// Options.StartLayer). It panics on malformed inputs (as graph building
// does); Exec turns panics into errors.
func (m *Model) Forward(in Inputs, opts Options) Outputs {
	c := m.Config
	first, exit := opts.StartLayer, opts.ExitLayer
	if exit == 0 {
		exit = c.NumLayers
	}
	if exit < 0 || exit > c.NumLayers || first < 0 || first > exit {
		panic(fmt.Errorf("layers [%d, %d) are not a range of the model's %d layers", first, exit, c.NumLayers))
	}
	var g *Graph
	var ids *Node
	var B, T int
	if first > 0 {
		if in.Hidden == nil {
			panic(fmt.Errorf("a pass starting at layer %d needs the hidden states of its input", first))
		}
		dims := in.Hidden.Shape().Dimensions
		if len(dims) != 3 || dims[2] != c.HiddenSize {
			panic(fmt.Errorf("input hidden states must be [batch, tokens, %d], got shape %s", c.HiddenSize, in.Hidden.Shape()))
		}
		g, B, T = in.Hidden.Graph(), dims[0], dims[1]
	} else {
		g = in.IDs.Graph()
		dims := in.IDs.Shape().Dimensions
		if len(dims) != 2 {
			panic(fmt.Errorf("input ids must be [batch, tokens], got shape %s", in.IDs.Shape()))
		}
		B, T = dims[0], dims[1]
		ids = ConvertDType(in.IDs, dtypes.Int32)
	}
	start := in.Start
	if start == nil {
		start = Scalar(g, dtypes.Int32, 0)
	}
	start = ConvertDType(start, dtypes.Int32)
	positions := in.Positions
	if positions == nil {
		positions = Add(Iota(g, shapesInt32(B, T), 1), start)
	}
	positions = ConvertDType(positions, dtypes.Int32)
	S := T
	if in.Cache != nil {
		if len(in.Cache.Keys) != c.NumLayers || len(in.Cache.Values) != c.NumLayers {
			panic(fmt.Errorf("cache has %d/%d layers, the model %d", len(in.Cache.Keys), len(in.Cache.Values), c.NumLayers))
		}
		for i := first; i < exit; i++ {
			if in.Cache.Keys[i] == nil || in.Cache.Values[i] == nil {
				panic(fmt.Errorf("the cache of layer %d is missing", i))
			}
		}
		for _, k := range in.Cache.Keys {
			if k != nil {
				S = k.Shape().Dimensions[2]
				break
			}
		}
	}
	mask := in.Mask
	if mask == nil {
		mask = OnesLike(Iota(g, shapesInt32(B, S), 1))
	}
	if md := mask.Shape().Dimensions; len(md) != 2 || md[0] != B || md[1] != S {
		panic(fmt.Errorf("attention mask must be [%d, %d], got %s", B, S, mask.Shape()))
	}
	st := &passState{m: m, opts: &opts, start: start, cache: in.Cache}
	if in.SegmentIDs != nil && in.Cache != nil {
		panic(fmt.Errorf("segment ids (packed rows) cannot be combined with a KV cache"))
	}
	st.bias = attentionBias(start, mask, in.SegmentIDs, T, c.SlidingWindow)
	if c.Rope != nil {
		st.cos, st.sin = ropeCosSin(positions, ropeInvFreq(c.Rope, c.HeadDim))
	}
	if in.Cache != nil {
		st.out = &Cache{Keys: slices.Clone(in.Cache.Keys), Values: slices.Clone(in.Cache.Values)}
	}
	arch := m.arch()
	var x *Node
	if first > 0 {
		x = ConvertDType(in.Hidden, m.DType)
	} else {
		x = arch.embed(st, ids, positions)
		if h := opts.Hooks.Embeddings; h != nil {
			x = h(x)
		}
	}
	hidden := []*Node{x}
	raw := map[int]*Node{first: x} // the state after l layers, un-normed
	for i := first; i < exit; i++ {
		out := arch.layer(st, i, x)
		if h := opts.Hooks.Layer; h != nil {
			out = h(i, x, out)
		}
		x = out
		raw[i+1] = x
		if i < exit-1 {
			hidden = append(hidden, x)
		}
	}
	x = arch.norm(st, x)
	hidden = append(hidden, x)
	if opts.LastTokenOnly {
		x = SliceAxis(x, 1, AxisElem(T-1))
	}
	out := Outputs{Hidden: hidden, Cache: st.out}
	for _, l := range opts.LayerLogits {
		h, ok := raw[l]
		if !ok {
			panic(fmt.Errorf("layer logits of layer %d: the pass runs layers [%d, %d)", l, first, exit))
		}
		if opts.LastTokenOnly {
			h = SliceAxis(h, 1, AxisElem(T-1))
		}
		out.LayerLogits = append(out.LayerLogits, arch.head(st, arch.norm(st, h)))
	}
	samples := max(opts.HeadSamples, 1)
	for k := range samples {
		h := x
		if hook := opts.Hooks.Penultimate; hook != nil {
			h = hook(k, h)
		}
		logits := arch.head(st, h)
		if in.Labels != nil {
			loss, n := causalLMLoss(logits, in.Labels)
			if out.Loss == nil {
				out.Loss, out.LossTokens = loss, n
			} else {
				out.Loss = Add(out.Loss, loss)
			}
		}
		if out.Logits == nil {
			out.Logits = logits
		} else {
			out.Logits = Add(out.Logits, logits)
		}
	}
	if samples > 1 {
		out.Logits = DivScalar(out.Logits, float64(samples))
		if out.Loss != nil {
			out.Loss = DivScalar(out.Loss, float64(samples))
		}
	}
	return out
}

// family is one architecture's pieces; the forward loop is shared.
type family struct {
	embed func(st *passState, ids, positions *Node) *Node
	layer func(st *passState, i int, x *Node) *Node
	norm  func(st *passState, x *Node) *Node
	head  func(st *passState, x *Node) *Node
}

func (m *Model) arch() family {
	switch m.Config.Family {
	case FamilyGPT2:
		return gpt2Family
	case FamilyGemma:
		return gemmaFamily
	case FamilyMixtral:
		return mixtralFamily
	}
	return llamaFamily
}

// linear applies the projection named name (a torch Linear, stored
// [in, out] — see Model.Param —, GPT-2's Conv1D when conv is set, or a tied
// embedding table [V, H] used as the LM head) with its bias if the model
// has one, through the Linear hook.
func (st *passState) linear(name string, x *Node, conv bool) *Node {
	g := x.Graph()
	w := st.m.weight(g, name+".weight")
	if h := st.opts.Hooks.Weight; h != nil {
		w = h(name+".weight", w)
	}
	b := st.m.optWeight(g, name+".bias")
	var y *Node
	if conv || st.m.transposed[name+".weight"] {
		y = conv1D(x, w, b) // x·W with W [in, out]
	} else {
		y = linearT(x, w, b)
	}
	if h := st.opts.Hooks.Linear; h != nil {
		y = h(name, x, y)
	}
	return y
}

// residual passes a branch output through the Residual hook.
func (st *passState) residual(layer int, branch string, x *Node) *Node {
	if h := st.opts.Hooks.Residual; h != nil {
		return h(layer, branch, x)
	}
	return x
}

// attention runs grouped-query attention for layer i on q [B, T, N, D] and
// the new k, v [B, T, K, D], writing them to the cache when there is one.
func (st *passState) attention(i int, q, k, v *Node, scale float64) *Node {
	k = TransposeAllAxes(k, 0, 2, 1, 3) // [B, K, T, D]
	v = TransposeAllAxes(v, 0, 2, 1, 3)
	if st.cache != nil {
		zero := ScalarZero(q.Graph(), dtypes.Int32)
		at := []*Node{zero, zero, st.start, zero}
		k = DynamicUpdateSlice(st.cache.Keys[i], ConvertDType(k, st.cache.Keys[i].DType()), at)
		v = DynamicUpdateSlice(st.cache.Values[i], ConvertDType(v, st.cache.Values[i].DType()), at)
		st.out.Keys[i], st.out.Values[i] = k, v
		k, v = ConvertDType(k, q.DType()), ConvertDType(v, q.DType())
	}
	var hook func(*Node) *Node
	if h := st.opts.Hooks.AttentionProbs; h != nil {
		hook = func(p *Node) *Node { return h(i, p) }
	}
	return attend(q, k, v, st.bias, scale, hook)
}

// defaultScale is 1/√D.
func defaultScale(headDim int) float64 { return 1 / math.Sqrt(float64(headDim)) }

// splitHeads reshapes [B, T, n·D] into [B, T, n, D].
func splitHeads(x *Node, n, d int) *Node {
	dims := x.Shape().Dimensions
	return Reshape(x, dims[0], dims[1], n, d)
}
