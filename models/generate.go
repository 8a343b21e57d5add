package models

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"

	"github.com/gomlx/compute"
	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/shapes"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"

	"github.com/lethe-ml/lethe/decoding"
)

// Generator decodes with a key/value cache. It compiles two graphs per
// shape bucket — the prompt pass and the one-token step — never one per
// token: prompts are left-padded to a bucket length and the cache holds a
// bucket number of slots (powers of two), with padding masked out, which
// gives the same tokens as transformers' generate.
//
// The cache is a fixed buffer [B, K, S, D] per layer updated in place with
// DynamicUpdateSlice, so it runs on every backend, the pure-Go one
// included. Backends that embed weights in compiled graphs (GoMLX's Go
// backend does, which makes inference much faster) see the weights of the
// moment of compilation: after changing weights, call Model.WeightsChanged
// and the Generator recompiles. A Generator is safe for concurrent use.
type Generator struct {
	// ShareWeights binds the weights as parameters of the compiled graphs
	// instead of letting the backend embed copies (GoMLX's Go backend
	// embeds them: ~15% faster decoding, one extra copy of the weights per
	// compiled graph, two per shape bucket). Set it before the first
	// Generate for large models on the CPU.
	ShareWeights bool
	// Hooks apply to every forward pass: adapters (peft) or inference-time
	// dropout. Set them before the first Generate.
	Hooks Hooks
	// Passes are further forward passes run at every step in the same
	// graphs as the model's own, each with its own KV cache: the amateur
	// of contrastive decoding (another model in the same store, see
	// Model.FrozenIn, or the model itself with dropout hooks), the
	// dropout samples of an MC-dropout ensemble. GenerateOptions.Combine
	// turns their logits and the model's into the scores each step
	// decodes from. Set them before the first Generate.
	Passes []Pass
	// LayerLogits lists layers whose early-exit logits (the final norm
	// and the LM head on their output, Options.LayerLogits) come with the
	// model's at every step: DoLa's premature layers. Set before the
	// first Generate.
	LayerLogits []int

	m       *Model
	backend compute.Backend

	mu            sync.Mutex // serialises compilation and executions
	prefill, step *model.Exec
	version       uint64    // Model.version the execs were built for
	spec          specExecs // GenerateSpeculative's graphs
}

// Pass is a forward pass a Generator runs next to its model's.
type Pass struct {
	// Model is the pass's model [the generator's]; it must live in the
	// generator model's store (Model.FrozenIn) and share its vocabulary.
	Model *Model
	// Hooks apply to the pass (dropout for a dropout amateur).
	Hooks Hooks
}

// NewGenerator returns a generator for m on backend.
func NewGenerator(m *Model, backend compute.Backend) *Generator {
	return &Generator{m: m, backend: backend}
}

// GenerateOptions configure one call of Generate.
type GenerateOptions struct {
	// Config holds the decoding settings: greedy or sampling, the logits
	// processors, the length limits and the end-of-sequence ids (see
	// decoding.GenerationConfig; models.LoadGenerationConfig reads a
	// checkpoint's generation_config.json).
	Config decoding.GenerationConfig
	// Seed makes sampling reproducible.
	Seed uint64
	// OnStep, when set, is called after every step with the token each
	// sequence produced (pad for finished ones) and whether it has
	// finished; streaming uses it. Returning an error stops generation.
	OnStep func(step int, tokens []int, finished []bool) error
	// Combine, with Generator.Passes or LayerLogits, turns sequence seq's
	// logits at a step into the scores the processors and the sampler
	// see: main is the model's row, to be written in place; passes and
	// layers hold the passes' rows and the early-exit rows, in order.
	Combine func(seq, step int, main []float32, passes, layers [][]float32) error
	// PassPrompts, when set, gives pass p's prompt for sequence seq in
	// place of the sequence's own (DCD's amateur prompt); every pass then
	// continues with the tokens the sequence generates.
	PassPrompts func(pass, seq int, prompt []int) []int
	// Processors run after the ones Config makes (e.g. Antislop's bans,
	// frequency and presence penalties).
	Processors []decoding.Processor
}

// Generation is the result of Generate.
type Generation struct {
	// Tokens are the new tokens of each sequence, up to and including its
	// end-of-sequence token.
	Tokens [][]int
	// Reasons say why each sequence stopped.
	Reasons []decoding.StopReason
	// Steps is the number of decoding steps run (the longest sequence).
	Steps int
}

// shareWeights makes graph g read the weights as parameters when share is
// set. GoMLX embeds them as constants in inference graphs on backends that
// prefer it unless the graph is marked as training; lethe's layers never
// read that flag (dropout comes through Hooks), so the mark only changes
// how weights are bound.
func shareWeights(scope *model.Scope, g *Graph, share bool) {
	if share {
		scope.SetTraining(g, true)
	}
}

// bucket rounds n up to a power of two, at least min.
func bucket(n, min int) int {
	b := min
	for b < n {
		b *= 2
	}
	return b
}

const (
	minPromptBucket = 8
	minCacheBucket  = 32
)

// stream is one forward pass of a step: the model's own (stream 0) or a
// Pass.
type stream struct {
	m     *Model
	hooks Hooks
}

// streams lists the generator's forward passes, the model's first.
func (gen *Generator) streams() ([]stream, error) {
	out := []stream{{gen.m, gen.Hooks}}
	for i, p := range gen.Passes {
		m := p.Model
		if m == nil {
			m = gen.m
		}
		if m.Store != gen.m.Store {
			return nil, fmt.Errorf("pass %d: its model is not in the generator model's store (copy it there with Model.FrozenIn)", i)
		}
		if m.Config.VocabSize != gen.m.Config.VocabSize {
			return nil, fmt.Errorf("pass %d: vocabulary %d, the model's %d", i, m.Config.VocabSize, gen.m.Config.VocabSize)
		}
		out = append(out, stream{m, p.Hooks})
	}
	return out, nil
}

// cacheDims are the per-layer cache dimensions [K, D] of a model.
func cacheDims(m *Model) (K, D int) {
	K, D = m.Config.NumKVHeads, m.Config.HeadDim
	if m.Config.Family == FamilyGPT2 {
		D = m.Config.HiddenSize / m.Config.NumHeads
	}
	return K, D
}

// compile builds the executors, again when the weights changed. It is
// called with gen.mu held.
//
// The prompt pass takes, per stream, ids and positions [B, T] and the mask
// [B, S]; a step takes the new ids [B, 1] and the slot, then per stream
// positions [B, 1] and the mask, then every stream's caches. Both return
// the streams' last logits [B, 1, V], the early-exit logits of
// LayerLogits, then every stream's keys and values.
func (gen *Generator) compile() error {
	m := gen.m
	if v := m.version.Load(); gen.prefill == nil || gen.version != v {
		if gen.prefill != nil {
			gen.prefill.Finalize()
			gen.step.Finalize()
		}
		gen.version = v
	} else {
		return nil
	}
	streams, err := gen.streams()
	if err != nil {
		return err
	}
	outputs := func(outs []Outputs) []*Node {
		var res []*Node
		for _, o := range outs {
			res = append(res, ConvertDType(o.Logits, dtypes.Float32))
		}
		for _, l := range outs[0].LayerLogits {
			res = append(res, ConvertDType(l, dtypes.Float32))
		}
		for _, o := range outs {
			res = append(res, o.Cache.Keys...)
			res = append(res, o.Cache.Values...)
		}
		return res
	}
	options := func(i int, st stream) Options {
		o := Options{LastTokenOnly: true, Hooks: st.hooks}
		if i == 0 {
			o.LayerLogits = gen.LayerLogits
		}
		return o
	}
	gen.prefill, err = model.NewExec(gen.backend, m.Store, func(scope *model.Scope, in []*Node) []*Node {
		g := in[0].Graph()
		shareWeights(scope, g, gen.ShareWeights)
		var outs []Outputs
		for i, st := range streams {
			ids, pos, mask := in[3*i], in[3*i+1], in[3*i+2]
			B, S := mask.Shape().Dimensions[0], mask.Shape().Dimensions[1]
			K, D := cacheDims(st.m)
			cache := &Cache{}
			for range st.m.Config.NumLayers {
				z := Zeros(g, shapes.Make(st.m.DType, B, K, S, D))
				cache.Keys = append(cache.Keys, z)
				cache.Values = append(cache.Values, z)
			}
			outs = append(outs, st.m.Forward(Inputs{IDs: ids, Positions: pos, Mask: mask, Cache: cache}, options(i, st)))
		}
		return outputs(outs)
	})
	if err != nil {
		gen.prefill = nil
		return err
	}
	gen.step, err = model.NewExec(gen.backend, m.Store, func(scope *model.Scope, in []*Node) []*Node {
		ids, start := in[0], in[1]
		shareWeights(scope, ids.Graph(), gen.ShareWeights)
		at := 2 + 2*len(streams)
		var outs []Outputs
		for i, st := range streams {
			pos, mask := in[2+2*i], in[3+2*i]
			L := st.m.Config.NumLayers
			cache := &Cache{Keys: in[at : at+L], Values: in[at+L : at+2*L]}
			at += 2 * L
			outs = append(outs, st.m.Forward(Inputs{IDs: ids, Positions: pos, Mask: mask, Start: start, Cache: cache}, options(i, st)))
		}
		return outputs(outs)
	})
	if err != nil {
		gen.prefill = nil
		return err
	}
	return nil
}

// Generate continues every prompt (token ids, without padding) and returns
// the new tokens. Prompts of different lengths are left-padded as
// transformers' generate does, with positions counted from the first real
// token. With Passes or LayerLogits, opts.Combine turns each step's rows
// into the scores decoded from.
func (gen *Generator) Generate(ctx context.Context, prompts [][]int, opts GenerateOptions) (*Generation, error) {
	if len(prompts) == 0 {
		return &Generation{}, nil
	}
	gen.mu.Lock()
	defer gen.mu.Unlock()
	if err := gen.compile(); err != nil {
		return nil, fmt.Errorf("generate: %w", err)
	}
	extra := len(gen.Passes) + len(gen.LayerLogits)
	if extra > 0 && opts.Combine == nil {
		return nil, fmt.Errorf("generate: the generator has passes or layer logits but GenerateOptions.Combine is not set")
	}
	c := gen.m.Config
	cfg := opts.Config
	chain, err := decoding.NewChain(cfg, c.VocabSize)
	if err != nil {
		return nil, fmt.Errorf("generate: %w", err)
	}
	streams, err := gen.streams()
	if err != nil {
		return nil, fmt.Errorf("generate: %w", err)
	}
	// Every stream's prompts: the sequences' own, or PassPrompts'.
	streamPrompts := make([][][]int, len(streams))
	streamPrompts[0] = prompts
	for p := 1; p < len(streams); p++ {
		streamPrompts[p] = prompts
		if opts.PassPrompts != nil {
			streamPrompts[p] = make([][]int, len(prompts))
			for i, pr := range prompts {
				streamPrompts[p][i] = opts.PassPrompts(p-1, i, pr)
			}
		}
	}
	maxPrompt, maxAll := 0, 0
	for s, ps := range streamPrompts {
		for i, p := range ps {
			if len(p) == 0 {
				return nil, fmt.Errorf("generate: prompt %d is empty", i)
			}
			for _, id := range p {
				if id < 0 || id >= c.VocabSize {
					return nil, fmt.Errorf("generate: prompt %d has token id %d outside the vocabulary (size %d)", i, id, c.VocabSize)
				}
			}
			if s == 0 {
				maxPrompt = max(maxPrompt, len(p))
			}
			maxAll = max(maxAll, len(p))
		}
	}
	maxPositions := c.MaxPositions
	maxNew, err := cfg.MaxNewTokensFor(maxPrompt, maxPositions)
	if err != nil {
		return nil, fmt.Errorf("generate: %w", err)
	}
	B := len(prompts)
	pad, _ := cfg.PadID()
	padID := max(pad, 0)
	T := bucket(maxAll, minPromptBucket)
	S := bucket(T+maxNew, minCacheBucket)

	// Host state per stream: the mask over slots, the last position of
	// every row; and per sequence the history transformers' processors
	// see (its padded input plus output).
	type state struct {
		mask, ids, pos []int32
		last           []int32
	}
	sts := make([]state, len(streams))
	for si, ps := range streamPrompts {
		st := state{mask: make([]int32, B*S), ids: make([]int32, B*T), pos: make([]int32, B*T), last: make([]int32, B)}
		for i, p := range ps {
			off := T - len(p)
			for j := range T {
				st.ids[i*T+j] = int32(padID)
				st.pos[i*T+j] = 1 // transformers fills pad positions with 1
			}
			for j, tok := range p {
				st.ids[i*T+off+j] = int32(tok)
				st.mask[i*S+off+j] = 1
				st.pos[i*T+off+j] = int32(j)
			}
			st.last[i] = int32(len(p) - 1)
		}
		sts[si] = st
	}
	history := make([][]int, B)
	for i, p := range prompts {
		for range maxPrompt - len(p) {
			history[i] = append(history[i], padID)
		}
		history[i] = append(history[i], p...)
	}
	maxNews := make([]int, B)
	for i := range maxNews {
		maxNews[i] = maxNew
	}
	stopper, err := decoding.NewStopper(cfg, maxNews)
	if err != nil {
		return nil, fmt.Errorf("generate: %w", err)
	}
	sampler := decoding.NewSampler(cfg, opts.Seed)
	streamsRNG := make([]*decoding.Stream, B)
	for i := range streamsRNG {
		streamsRNG[i] = sampler.Stream(uint64(i))
	}
	out := &Generation{Tokens: make([][]int, B)}

	var args []any
	for _, st := range sts {
		args = append(args, tensors.FromFlatDataAndDimensions(st.ids, B, T), tensors.FromFlatDataAndDimensions(st.pos, B, T),
			tensors.FromFlatDataAndDimensions(st.mask, B, S))
	}
	res, err := gen.prefill.Call(args...)
	if err != nil {
		return nil, fmt.Errorf("generate: prompt pass: %w", err)
	}
	V := c.VocabSize
	nLogits := len(streams) + len(gen.LayerLogits)
	tokens := make([]int, B)
	finished := make([]bool, B)
	passRows := make([][]float32, len(streams)-1)
	layerRows := make([][]float32, len(gen.LayerLogits))
	for step := 0; step < maxNew; step++ {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		logits := make([][]float32, nLogits) // [B, V] each
		for k := range nLogits {
			logits[k] = flatFloat32(res[k])
		}
		caches := res[nLogits:]
		for i := range B {
			if stopper.Finished(i) {
				tokens[i] = padID
				continue
			}
			row := logits[0][i*V : (i+1)*V]
			if extra > 0 {
				for p := range passRows {
					passRows[p] = logits[1+p][i*V : (i+1)*V]
				}
				for l := range layerRows {
					layerRows[l] = logits[len(streams)+l][i*V : (i+1)*V]
				}
				if err := opts.Combine(i, step, row, passRows, layerRows); err != nil {
					return nil, fmt.Errorf("generate: sequence %d step %d: %w", i, step, err)
				}
			}
			if err := chain.Process(row, history[i], step); err != nil {
				return nil, fmt.Errorf("generate: sequence %d step %d: %w", i, step, err)
			}
			for _, p := range opts.Processors {
				p.Process(row, history[i], step)
			}
			tok, err := streamsRNG[i].Next(row)
			if err != nil {
				return nil, fmt.Errorf("generate: sequence %d step %d: %w", i, step, err)
			}
			tokens[i] = tok
		}
		done, err := stopper.Update(tokens) // finished rows become pad
		if err != nil {
			return nil, fmt.Errorf("generate: %w", err)
		}
		for i := range B {
			if !finished[i] {
				out.Tokens[i] = append(out.Tokens[i], tokens[i])
			}
			history[i] = append(history[i], tokens[i])
			finished[i] = stopper.Finished(i)
		}
		out.Steps = step + 1
		if opts.OnStep != nil {
			if err := opts.OnStep(step, tokens, finished); err != nil {
				return nil, err
			}
		}
		if done || step == maxNew-1 {
			break
		}
		// Feed the new tokens at slot T+step.
		slot := T + step
		stepIDs := make([]int32, B)
		for i := range B {
			stepIDs[i] = int32(tokens[i])
		}
		args := []any{tensors.FromFlatDataAndDimensions(stepIDs, B, 1), tensors.FromScalar(int32(slot))}
		for si := range sts {
			st := &sts[si]
			stepPos := make([]int32, B)
			for i := range B {
				st.last[i]++
				stepPos[i] = st.last[i]
				st.mask[i*S+slot] = 1
			}
			args = append(args, tensors.FromFlatDataAndDimensions(stepPos, B, 1), tensors.FromFlatDataAndDimensions(st.mask, B, S))
		}
		for _, t := range caches {
			args = append(args, t)
		}
		if res, err = gen.step.Call(args...); err != nil {
			return nil, fmt.Errorf("generate: step %d: %w", step, err)
		}
		for _, t := range caches {
			t.FinalizeAll()
		}
	}
	out.Reasons = make([]decoding.StopReason, B)
	for i := range B {
		out.Reasons[i] = stopper.Reason(i)
		if n := stopper.Length(i); n < len(out.Tokens[i]) {
			out.Tokens[i] = out.Tokens[i][:n]
		}
	}
	return out, nil
}

// flatFloat32 copies a float32 tensor's values.
func flatFloat32(t *tensors.Tensor) []float32 {
	var out []float32
	t.MustConstFlatData(func(flat any) { out = append(out, flat.([]float32)...) })
	return out
}

// LoadGenerationConfig reads the generation_config.json of a checkpoint
// folder as transformers does (defaults when absent: greedy), taking the
// end-of-sequence, padding and BOS ids from config.json when it lacks them.
func LoadGenerationConfig(dir string, cfg *Config) (decoding.GenerationConfig, error) {
	gc, err := decoding.LoadGenerationConfig(filepath.Join(dir, "generation_config.json"))
	if err != nil {
		return gc, err
	}
	if len(gc.EOSTokenIDs) == 0 {
		gc.EOSTokenIDs = append([]int(nil), cfg.EOSTokenID...)
	}
	if gc.PadTokenID == nil && len(cfg.PadTokenID) > 0 {
		p := cfg.PadTokenID[0]
		gc.PadTokenID = &p
	}
	if gc.BOSTokenID == nil && len(cfg.BOSTokenID) > 0 {
		b := cfg.BOSTokenID[0]
		gc.BOSTokenID = &b
	}
	return gc, nil
}
