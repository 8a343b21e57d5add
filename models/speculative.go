package models

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/gomlx/compute"
	"github.com/gomlx/compute/dtypes"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"

	"github.com/lethe-ml/lethe/decoding"
)

// SpeculativeOptions configure GenerateSpeculative.
type SpeculativeOptions struct {
	// Config holds the decoding settings as for Generate. Only greedy
	// decoding is supported (DoSample must be false); the logits processors
	// of greedy decoding (repetition penalty, minimum lengths) apply to
	// the draft and to the verification alike, so the output is Generate's.
	Config decoding.GenerationConfig
	// ExitLayer is the number of layers that draft, 1..NumLayers.
	ExitLayer int
	// Draft is the number of tokens drafted per round [4].
	Draft int
	// OnToken, when set, is called after every round with the tokens it
	// added to sequence seq (streaming). Returning an error stops
	// generation.
	OnToken func(seq int, tokens []int) error
}

// SpeculativeStats count the work of GenerateSpeculative (over all its
// prompts).
type SpeculativeStats struct {
	// Tokens is the number of tokens generated.
	Tokens int `json:"tokens"`
	// Drafted is the number of tokens the early exit proposed; Accepted
	// how many of them the full model confirmed; AcceptanceRate their
	// ratio (1 when nothing was drafted).
	Drafted        int     `json:"drafted"`
	Accepted       int     `json:"accepted"`
	AcceptanceRate float64 `json:"acceptance_rate"`
	// DraftPasses counts the one-token passes through the first ExitLayer
	// layers; VerifyPasses the passes through the remaining layers over a
	// round's drafts; PromptPasses the full passes over the prompts.
	DraftPasses  int `json:"draft_passes"`
	VerifyPasses int `json:"verify_passes"`
	PromptPasses int `json:"prompt_passes"`
}

// specExecs are the compiled graphs of GenerateSpeculative, rebuilt when
// the weights change: a draft step per exit layer and a verification per
// exit layer and draft length.
type specExecs struct {
	version uint64
	draft   map[int]*model.Exec
	verify  map[[2]int]*model.Exec
}

// GenerateSpeculative decodes greedily with LayerSkip's self-speculative
// decoding (Elhoushi et al. 2024): each round, the first ExitLayer layers
// followed by the final norm and the LM head (an early exit) draft up to
// Draft tokens one at a time; then one pass of the remaining layers over
// those tokens, started from the exit layer's hidden states that drafting
// computed, gives the full model's greedy token at every position. The
// longest prefix of drafts the full model agrees with is kept, followed by
// the full model's own token at the first disagreement, so the output is
// exactly the greedy output of Generate (up to floating-point ties).
//
// Draft and verification share one key/value cache: drafting writes the
// first ExitLayer layers' keys and values of the tokens it feeds,
// verification the remaining layers' of the same tokens, so no layer runs
// twice for a token. After a disagreement the slots past the accepted
// tokens hold stale entries; they are never read (a token attends only to
// slots up to its own, and the next round writes from the first stale slot
// on) and get overwritten. Verification feeds the round's last accepted
// token and the first Draft−1 drafts (Draft tokens: the full model's
// prediction after each checks the next draft); when every draft is kept
// the last one is fed, through all layers, in the next round. The graphs
// have fixed shapes — a one-token draft step and a Draft-token
// verification per cache bucket — so nothing recompiles per round.
//
// Prompts decode one at a time (batch size 1), each exactly as Generate
// decodes it alone; EOS, stop ids and the token budget work as in
// Generate. Sampling (speculative rejection sampling) is not implemented:
// Config.DoSample is an error.
func (gen *Generator) GenerateSpeculative(ctx context.Context, prompts [][]int, opts SpeculativeOptions) (*Generation, *SpeculativeStats, error) {
	c := gen.m.Config
	cfg := opts.Config
	if cfg.DoSample {
		return nil, nil, errors.New("speculative generation: only greedy decoding is supported (do_sample is set)")
	}
	if len(gen.Passes) > 0 || len(gen.LayerLogits) > 0 {
		return nil, nil, errors.New("speculative generation: the generator has passes or layer logits; use a plain Generator")
	}
	L, d := opts.ExitLayer, opts.Draft
	if d == 0 {
		d = 4
	}
	if L < 1 || L > c.NumLayers {
		return nil, nil, fmt.Errorf("speculative generation: exit layer %d is not in [1, %d]", L, c.NumLayers)
	}
	if d < 1 {
		return nil, nil, fmt.Errorf("speculative generation: draft length %d, want >= 1", d)
	}
	chain, err := decoding.NewChain(cfg, c.VocabSize)
	if err != nil {
		return nil, nil, fmt.Errorf("speculative generation: %w", err)
	}
	for i, p := range prompts {
		if len(p) == 0 {
			return nil, nil, fmt.Errorf("speculative generation: prompt %d is empty", i)
		}
		for _, id := range p {
			if id < 0 || id >= c.VocabSize {
				return nil, nil, fmt.Errorf("speculative generation: prompt %d has token id %d outside the vocabulary (size %d)", i, id, c.VocabSize)
			}
		}
	}
	gen.mu.Lock()
	defer gen.mu.Unlock()
	if err := gen.compile(); err != nil {
		return nil, nil, fmt.Errorf("speculative generation: %w", err)
	}
	draft, verify, err := gen.specCompile(L, d)
	if err != nil {
		return nil, nil, fmt.Errorf("speculative generation: %w", err)
	}
	stats := &SpeculativeStats{}
	out := &Generation{Tokens: make([][]int, len(prompts)), Reasons: make([]decoding.StopReason, len(prompts))}
	r := &specRun{gen: gen, cfg: cfg, chain: chain, L: L, d: d, draft: draft, verify: verify, stats: stats, onToken: opts.OnToken}
	for i, p := range prompts {
		toks, reason, err := r.decode(ctx, i, p)
		if err != nil {
			return nil, nil, err
		}
		out.Tokens[i], out.Reasons[i] = toks, reason
		out.Steps = max(out.Steps, len(toks))
	}
	stats.AcceptanceRate = 1
	if stats.Drafted > 0 {
		stats.AcceptanceRate = float64(stats.Accepted) / float64(stats.Drafted)
	}
	return out, stats, nil
}

// specCompile returns the draft step of exit layer L and the verification
// of d tokens after it, building them if needed. Called with gen.mu held,
// after gen.compile.
func (gen *Generator) specCompile(L, d int) (draft, verify *model.Exec, err error) {
	sp := &gen.spec
	if sp.draft == nil || sp.version != gen.version {
		for _, e := range sp.draft {
			e.Finalize()
		}
		for _, e := range sp.verify {
			e.Finalize()
		}
		*sp = specExecs{version: gen.version, draft: map[int]*model.Exec{}, verify: map[[2]int]*model.Exec{}}
	}
	m := gen.m
	N := m.Config.NumLayers
	if draft = sp.draft[L]; draft == nil {
		// ids, positions [1, 1], mask [1, S], start, the first L layers'
		// caches -> logits [1, V], the exit layer's output [1, 1, H]
		// (float32), the updated caches.
		draft, err = model.NewExec(gen.backend, m.Store, func(scope *model.Scope, in []*Node) []*Node {
			ids, pos, mask, start := in[0], in[1], in[2], in[3]
			shareWeights(scope, ids.Graph(), gen.ShareWeights)
			cache := &Cache{Keys: make([]*Node, N), Values: make([]*Node, N)}
			copy(cache.Keys, in[4:4+L])
			copy(cache.Values, in[4+L:4+2*L])
			hooks := gen.Hooks
			var exit *Node
			user := hooks.Layer
			hooks.Layer = func(i int, x, y *Node) *Node {
				if user != nil {
					y = user(i, x, y)
				}
				if i == L-1 {
					exit = y
				}
				return y
			}
			o := m.Forward(Inputs{IDs: ids, Positions: pos, Mask: mask, Start: start, Cache: cache},
				Options{LastTokenOnly: true, ExitLayer: L, Hooks: hooks})
			res := []*Node{ConvertDType(o.Logits, dtypes.Float32), ConvertDType(exit, dtypes.Float32)}
			res = append(res, o.Cache.Keys[:L]...)
			return append(res, o.Cache.Values[:L]...)
		})
		if err != nil {
			return nil, nil, err
		}
		sp.draft[L] = draft
	}
	if verify = sp.verify[[2]int{L, d}]; verify == nil {
		// hidden [1, d, H] (float32), positions [1, d], mask [1, S], start,
		// the caches of layers L.. -> logits [1, d, V], the updated caches.
		verify, err = model.NewExec(gen.backend, m.Store, func(scope *model.Scope, in []*Node) []*Node {
			hidden, pos, mask, start := in[0], in[1], in[2], in[3]
			shareWeights(scope, hidden.Graph(), gen.ShareWeights)
			opts := Options{StartLayer: L, Hooks: gen.Hooks}
			if L == N { // nothing left to run: the head on the exit states
				o := m.Forward(Inputs{Hidden: hidden}, opts)
				return []*Node{ConvertDType(o.Logits, dtypes.Float32)}
			}
			cache := &Cache{Keys: make([]*Node, N), Values: make([]*Node, N)}
			copy(cache.Keys[L:], in[4:4+N-L])
			copy(cache.Values[L:], in[4+N-L:4+2*(N-L)])
			o := m.Forward(Inputs{Hidden: hidden, Positions: pos, Mask: mask, Start: start, Cache: cache}, opts)
			res := []*Node{ConvertDType(o.Logits, dtypes.Float32)}
			res = append(res, o.Cache.Keys[L:]...)
			return append(res, o.Cache.Values[L:]...)
		})
		if err != nil {
			return nil, nil, err
		}
		sp.verify[[2]int{L, d}] = verify
	}
	return draft, verify, nil
}

// specRun is one GenerateSpeculative call.
type specRun struct {
	gen           *Generator
	cfg           decoding.GenerationConfig
	chain         *decoding.Chain
	L, d          int
	draft, verify *model.Exec
	stats         *SpeculativeStats
	onToken       func(seq int, tokens []int) error
}

// decode generates the continuation of one prompt.
func (r *specRun) decode(ctx context.Context, seq int, prompt []int) ([]int, decoding.StopReason, error) {
	m := r.gen.m
	c := m.Config
	N, L, d, H, V := c.NumLayers, r.L, r.d, c.HiddenSize, c.VocabSize
	fail := func(format string, args ...any) ([]int, decoding.StopReason, error) {
		return nil, decoding.Running, fmt.Errorf("speculative generation: sequence %d: "+format, append([]any{seq}, args...)...)
	}
	n := len(prompt)
	maxNew, err := r.cfg.MaxNewTokensFor(n, c.MaxPositions)
	if err != nil {
		return fail("%w", err)
	}
	stopper, err := decoding.NewStopper(r.cfg, []int{maxNew})
	if err != nil {
		return fail("%w", err)
	}
	pad, _ := r.cfg.PadID()
	T := bucket(n, minPromptBucket)
	// Verification writes d slots from the last accepted token's on.
	S := bucket(T+maxNew+d, minCacheBucket)

	// Slots [T-n, T) hold the prompt (left-padded), slot T+g the g-th new
	// token; every slot from T on is unmasked from the start, since a token
	// sees only slots up to its own and those are always written first.
	mask := make([]int32, S)
	ids := make([]int32, T)
	pos := make([]int32, T)
	for j := range T {
		ids[j], pos[j] = int32(max(pad, 0)), 1
	}
	for j, tok := range prompt {
		ids[T-n+j], pos[T-n+j], mask[T-n+j] = int32(tok), int32(j), 1
	}
	for j := T; j < S; j++ {
		mask[j] = 1
	}
	maskT := func() *tensors.Tensor { return tensors.FromFlatDataAndDimensions(mask, 1, S) }
	res, err := r.gen.prefill.Call(tensors.FromFlatDataAndDimensions(ids, 1, T), tensors.FromFlatDataAndDimensions(pos, 1, T), maskT())
	if err != nil {
		return fail("prompt pass: %w", err)
	}
	r.stats.PromptPasses++
	keys := slices.Clone(res[1 : 1+N])
	values := slices.Clone(res[1+N : 1+2*N])
	defer func() {
		for _, t := range slices.Concat(keys, values) {
			t.FinalizeAll()
		}
	}()
	// replace swaps the caches of layers [from, from+k) for the outputs of
	// a call.
	replace := func(from int, outs []*tensors.Tensor) {
		k := len(outs) / 2
		for i := range k {
			keys[from+i].FinalizeAll()
			values[from+i].FinalizeAll()
			keys[from+i], values[from+i] = outs[i], outs[k+i]
		}
	}

	history := slices.Clone(prompt)
	var out []int
	// pick is the greedy token of a logits row after the processors, with
	// hist the ids before it and step the number of new ids among them.
	pick := func(row []float32, hist []int, step int) (int, error) {
		if err := r.chain.Process(row, hist, step); err != nil {
			return 0, err
		}
		return decoding.Argmax(row), nil
	}
	// emit appends a token the full model chose.
	emit := func(tok int) (bool, error) {
		toks := []int{tok}
		done, err := stopper.Update(toks)
		out = append(out, tok)
		history = append(history, tok)
		r.stats.Tokens++
		return done, err
	}
	isEnd := func(tok int) bool {
		return slices.Contains(r.cfg.EOSTokenIDs, tok) || slices.Contains(r.cfg.StopTokenIDs, tok)
	}
	report := func(from int) error {
		if r.onToken == nil || from == len(out) {
			return nil
		}
		return r.onToken(seq, slices.Clone(out[from:]))
	}

	tok, err := pick(flatFloat32(res[0]), history, 0)
	res[0].FinalizeAll()
	if err != nil {
		return fail("step 0: %w", err)
	}
	done, err := emit(tok)
	if err != nil {
		return fail("%w", err)
	}
	if err := report(0); err != nil {
		return nil, decoding.Running, err
	}
	hidden := make([]float32, d*H)
	vpos := make([]int32, d)
	for !done {
		if err := ctx.Err(); err != nil {
			return nil, decoding.Running, err
		}
		g := len(out) // the pending token out[g-1] goes to slot T+g-1
		k := min(d, maxNew-g)
		drafts := make([]int, 0, k)
		feed := out[g-1]
		clear(hidden)
		for j := range k {
			slot, p := T+g-1+j, n+g-1+j
			args := []any{
				tensors.FromFlatDataAndDimensions([]int32{int32(feed)}, 1, 1),
				tensors.FromFlatDataAndDimensions([]int32{int32(p)}, 1, 1),
				maskT(), tensors.FromScalar(int32(slot)),
			}
			for _, t := range slices.Concat(keys[:L], values[:L]) {
				args = append(args, t)
			}
			o, err := r.draft.Call(args...)
			if err != nil {
				return fail("draft: %w", err)
			}
			r.stats.DraftPasses++
			replace(0, o[2:])
			logits := flatFloat32(o[0])
			copy(hidden[j*H:(j+1)*H], flatFloat32(o[1]))
			o[0].FinalizeAll()
			o[1].FinalizeAll()
			y, err := pick(logits, append(slices.Clone(history), drafts...), g+j)
			if err != nil {
				return fail("draft: %w", err)
			}
			drafts = append(drafts, y)
			feed = y
			if isEnd(y) {
				break // nothing follows an end token
			}
		}
		k = len(drafts)
		r.stats.Drafted += k

		// Verify: layers L.. over the pending token and the first k-1 drafts
		// (rows past k are padding, written to slots no token has reached).
		for j := range d {
			vpos[j] = int32(n + g - 1 + j)
		}
		args := []any{
			tensors.FromFlatDataAndDimensions(hidden, 1, d, H),
			tensors.FromFlatDataAndDimensions(vpos, 1, d),
			maskT(), tensors.FromScalar(int32(T + g - 1)),
		}
		for _, t := range slices.Concat(keys[L:], values[L:]) {
			args = append(args, t)
		}
		o, err := r.verify.Call(args...)
		if err != nil {
			return fail("verify: %w", err)
		}
		r.stats.VerifyPasses++
		replace(L, o[1:])
		logits := flatFloat32(o[0]) // [d, V]
		o[0].FinalizeAll()
		for j := range k {
			f, err := pick(logits[j*V:(j+1)*V], history, g+j)
			if err != nil {
				return fail("verify: %w", err)
			}
			if done, err = emit(f); err != nil {
				return fail("%w", err)
			}
			if f != drafts[j] {
				break // the full model's token replaces the rejected draft
			}
			r.stats.Accepted++
			if done {
				break
			}
		}
		if err := report(g); err != nil {
			return nil, decoding.Running, err
		}
	}
	if l := stopper.Length(0); l < len(out) {
		out = out[:l]
	}
	return out, stopper.Reason(0), nil
}

// SpeculativeBenchOptions configure BenchSpeculative.
type SpeculativeBenchOptions struct {
	// PromptLen and NewTokens size the run (one prompt).
	PromptLen, NewTokens int
	// ExitLayer and Draft are GenerateSpeculative's.
	ExitLayer, Draft int
	// Repeats is how many timed runs to take the best of [3].
	Repeats int
	// Prompt, when set, is the prompt (PromptLen is then ignored).
	Prompt []int
}

// SpeculativeBenchResult compares plain greedy decoding with
// self-speculative decoding, in generated tokens per second over the
// whole call (prompt pass included).
type SpeculativeBenchResult struct {
	ExitLayer      int     `json:"exit_layer"`
	Draft          int     `json:"draft"`
	NewTokens      int     `json:"new_tokens"`
	Greedy         float64 `json:"greedy_tokens_per_s"`
	Speculative    float64 `json:"speculative_tokens_per_s"`
	Speedup        float64 `json:"speedup"`
	AcceptanceRate float64 `json:"acceptance_rate"`
	// Same reports whether both produced the same tokens.
	Same  bool             `json:"same"`
	Stats SpeculativeStats `json:"stats"`
}

// BenchSpeculative times greedy Generate and GenerateSpeculative on one
// prompt of m (end-of-sequence suppressed so both run NewTokens tokens),
// best of Repeats after a compiling run.
func BenchSpeculative(ctx context.Context, m *Model, backend compute.Backend, opts SpeculativeBenchOptions) (SpeculativeBenchResult, error) {
	if opts.Repeats <= 0 {
		opts.Repeats = 3
	}
	res := SpeculativeBenchResult{ExitLayer: opts.ExitLayer, Draft: opts.Draft, NewTokens: opts.NewTokens}
	prompt := opts.Prompt
	if prompt == nil {
		prompt = make([]int, opts.PromptLen)
		for j := range prompt {
			prompt[j] = 3 + (j*17)%(m.Config.VocabSize-3)
		}
	}
	cfg := decoding.Defaults()
	cfg.MaxNewTokens, cfg.MinNewTokens = opts.NewTokens, opts.NewTokens
	cfg.EOSTokenIDs = []int{0}
	gen := NewGenerator(m, backend)
	var greedy, spec *Generation
	var stats *SpeculativeStats
	best := func(run func() error) (time.Duration, error) {
		if err := run(); err != nil { // compiles
			return 0, err
		}
		b := time.Duration(1 << 62)
		for range opts.Repeats {
			start := time.Now()
			if err := run(); err != nil {
				return 0, err
			}
			b = min(b, time.Since(start))
		}
		return b, nil
	}
	tg, err := best(func() (err error) {
		greedy, err = gen.Generate(ctx, [][]int{prompt}, GenerateOptions{Config: cfg})
		return err
	})
	if err != nil {
		return res, err
	}
	ts, err := best(func() (err error) {
		spec, stats, err = gen.GenerateSpeculative(ctx, [][]int{prompt}, SpeculativeOptions{Config: cfg, ExitLayer: opts.ExitLayer, Draft: opts.Draft})
		return err
	})
	if err != nil {
		return res, err
	}
	res.Greedy = float64(len(greedy.Tokens[0])) / tg.Seconds()
	res.Speculative = float64(len(spec.Tokens[0])) / ts.Seconds()
	res.Speedup = res.Speculative / res.Greedy
	res.AcceptanceRate = stats.AcceptanceRate
	res.Stats = *stats
	res.Same = slices.Equal(greedy.Tokens[0], spec.Tokens[0])
	return res, nil
}
