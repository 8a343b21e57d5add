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

	m       *Model
	backend compute.Backend

	mu            sync.Mutex // serialises compilation and executions
	prefill, step *model.Exec
	version       uint64    // Model.version the execs were built for
	spec          specExecs // GenerateSpeculative's graphs
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

// compile builds the executors, again when the weights changed. It is
// called with gen.mu held.
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
	{
		var err error
		L := m.Config.NumLayers
		K, D := m.Config.NumKVHeads, m.Config.HeadDim
		if m.Config.Family == FamilyGPT2 {
			D = m.Config.HiddenSize / m.Config.NumHeads
		}
		// Prompt pass: ids, positions [B, T], mask [B, S] -> last logits,
		// caches.
		gen.prefill, err = model.NewExec(gen.backend, m.Store, func(scope *model.Scope, in []*Node) []*Node {
			ids, pos, mask := in[0], in[1], in[2]
			g := ids.Graph()
			shareWeights(scope, g, gen.ShareWeights)
			B, S := mask.Shape().Dimensions[0], mask.Shape().Dimensions[1]
			cache := &Cache{}
			for range L {
				z := Zeros(g, shapes.Make(m.DType, B, K, S, D))
				cache.Keys = append(cache.Keys, z)
				cache.Values = append(cache.Values, z)
			}
			out := m.Forward(Inputs{IDs: ids, Positions: pos, Mask: mask, Cache: cache}, Options{LastTokenOnly: true, Hooks: gen.Hooks})
			res := []*Node{ConvertDType(out.Logits, dtypes.Float32)}
			res = append(res, out.Cache.Keys...)
			return append(res, out.Cache.Values...)
		})
		if err != nil {
			gen.prefill = nil
			return err
		}
		// One step: ids, positions [B, 1], mask [B, S], start, caches ->
		// logits, caches.
		gen.step, err = model.NewExec(gen.backend, m.Store, func(scope *model.Scope, in []*Node) []*Node {
			ids, pos, mask, start := in[0], in[1], in[2], in[3]
			shareWeights(scope, ids.Graph(), gen.ShareWeights)
			cache := &Cache{Keys: in[4 : 4+L], Values: in[4+L : 4+2*L]}
			out := m.Forward(Inputs{IDs: ids, Positions: pos, Mask: mask, Start: start, Cache: cache}, Options{LastTokenOnly: true, Hooks: gen.Hooks})
			res := []*Node{ConvertDType(out.Logits, dtypes.Float32)}
			res = append(res, out.Cache.Keys...)
			return append(res, out.Cache.Values...)
		})
		if err != nil {
			gen.prefill = nil
			return err
		}
	}
	return nil
}

// Generate continues every prompt (token ids, without padding) and returns
// the new tokens. Prompts of different lengths are left-padded as
// transformers' generate does, with positions counted from the first real
// token.
func (gen *Generator) Generate(ctx context.Context, prompts [][]int, opts GenerateOptions) (*Generation, error) {
	if len(prompts) == 0 {
		return &Generation{}, nil
	}
	gen.mu.Lock()
	defer gen.mu.Unlock()
	if err := gen.compile(); err != nil {
		return nil, fmt.Errorf("generate: %w", err)
	}
	c := gen.m.Config
	cfg := opts.Config
	chain, err := decoding.NewChain(cfg, c.VocabSize)
	if err != nil {
		return nil, fmt.Errorf("generate: %w", err)
	}
	maxPrompt := 0
	for i, p := range prompts {
		if len(p) == 0 {
			return nil, fmt.Errorf("generate: prompt %d is empty", i)
		}
		for _, id := range p {
			if id < 0 || id >= c.VocabSize {
				return nil, fmt.Errorf("generate: prompt %d has token id %d outside the vocabulary (size %d)", i, id, c.VocabSize)
			}
		}
		maxPrompt = max(maxPrompt, len(p))
	}
	maxPositions := c.MaxPositions
	maxNew, err := cfg.MaxNewTokensFor(maxPrompt, maxPositions)
	if err != nil {
		return nil, fmt.Errorf("generate: %w", err)
	}
	B := len(prompts)
	pad, _ := cfg.PadID()
	padID := max(pad, 0)
	T := bucket(maxPrompt, minPromptBucket)
	S := bucket(T+maxNew, minCacheBucket)

	// Host state: the mask over slots, the last position of every row, the
	// history transformers' processors see (its padded input plus output).
	mask := make([]int32, B*S)
	ids := make([]int32, B*T)
	pos := make([]int32, B*T)
	last := make([]int32, B)
	history := make([][]int, B)
	for i, p := range prompts {
		off := T - len(p)
		for j := range T {
			ids[i*T+j] = int32(padID)
			pos[i*T+j] = 1 // transformers fills pad positions with 1
		}
		for j, tok := range p {
			ids[i*T+off+j] = int32(tok)
			mask[i*S+off+j] = 1
			pos[i*T+off+j] = int32(j)
		}
		last[i] = int32(len(p) - 1)
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
	streams := make([]*decoding.Stream, B)
	for i := range streams {
		streams[i] = sampler.Stream(uint64(i))
	}
	out := &Generation{Tokens: make([][]int, B)}

	res, err := gen.prefill.Call(
		tensors.FromFlatDataAndDimensions(ids, B, T),
		tensors.FromFlatDataAndDimensions(pos, B, T),
		tensors.FromFlatDataAndDimensions(mask, B, S))
	if err != nil {
		return nil, fmt.Errorf("generate: prompt pass: %w", err)
	}
	V := c.VocabSize
	tokens := make([]int, B)
	finished := make([]bool, B)
	for step := 0; step < maxNew; step++ {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		logits := flatFloat32(res[0]) // [B, V]
		caches := res[1:]
		for i := range B {
			if stopper.Finished(i) {
				tokens[i] = padID
				continue
			}
			row := logits[i*V : (i+1)*V]
			if err := chain.Process(row, history[i], step); err != nil {
				return nil, fmt.Errorf("generate: sequence %d step %d: %w", i, step, err)
			}
			tok, err := streams[i].Next(row)
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
		stepPos := make([]int32, B)
		for i := range B {
			stepIDs[i] = int32(tokens[i])
			last[i]++
			stepPos[i] = last[i]
			mask[i*S+slot] = 1
		}
		args := []any{
			tensors.FromFlatDataAndDimensions(stepIDs, B, 1),
			tensors.FromFlatDataAndDimensions(stepPos, B, 1),
			tensors.FromFlatDataAndDimensions(mask, B, S),
			tensors.FromScalar(int32(slot)),
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
