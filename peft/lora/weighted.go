package lora

import (
	"cmp"
	"fmt"
	"math"
	"slices"

	"github.com/lethe-ml/lethe/peft"
	"github.com/lethe-ml/lethe/peft/internal/host"
)

// Combination is how AddWeighted combines adapters (PEFT's
// add_weighted_adapter combination_type).
type Combination string

// The combinations lethe implements; PEFT's SVD-based ones ("svd",
// "ties_svd", ...) and the random DARE ones are not.
const (
	// Linear: A = Σ √(wᵢ·sᵢ)·Aᵢ, B = Σ √(wᵢ·sᵢ)·Bᵢ (all ranks equal).
	Linear Combination = "linear"
	// Cat: A = [w₁s₁A₁; w₂s₂A₂; …], B = [B₁ B₂ …], rank Σ rᵢ, so that
	// B·A = Σ wᵢ·sᵢ·Bᵢ·Aᵢ exactly.
	Cat Combination = "cat"
	// TIES: for A and for B separately, each √(wᵢ·sᵢ)-weighted task tensor
	// keeps its top density fraction by magnitude, a majority sign is
	// elected per entry, and the agreeing entries are averaged.
	TIES Combination = "ties"
	// MagnitudePrune: magnitude pruning to density, then the linear sum.
	MagnitudePrune Combination = "magnitude_prune"
)

// WeightedOptions configures AddWeighted.
type WeightedOptions struct {
	// Combination is the combination type [Linear when there is one
	// adapter, else required].
	Combination Combination
	// Density is the fraction of entries TIES and MagnitudePrune keep.
	Density float64
	// MajoritySign is TIES's sign election: "total" (sign of the sum,
	// default) or "frequency" (sign of the count).
	MajoritySign string
}

// AddWeighted adds a new adapter called name that combines the named
// adapters with the given weights, as PEFT's add_weighted_adapter: its
// config is the first adapter's with r and lora_alpha set to the new rank
// (so its scale is 1, or √r with rsLoRA) and the union of the target
// modules; modules none of the adapters wrap get zero A and B. Adapters
// with DoRA or modules_to_save cannot be combined (PEFT recomputes or
// duplicates those inconsistently).
func (s *Set) AddWeighted(name string, adapters []string, weights []float64, opts WeightedOptions) (*Adapter, error) {
	if len(adapters) == 0 || len(adapters) != len(weights) {
		return nil, fmt.Errorf("lora: add weighted %q: %d adapters and %d weights", name, len(adapters), len(weights))
	}
	srcs := make([]*Adapter, len(adapters))
	for i, n := range adapters {
		a, ok := s.adapters[n]
		if !ok {
			return nil, fmt.Errorf("lora: add weighted %q: no adapter %q", name, n)
		}
		if a.cfg.UseDoRA || len(a.saved) > 0 {
			return nil, fmt.Errorf("lora: add weighted %q: adapter %q uses DoRA or modules_to_save, which cannot be combined", name, n)
		}
		srcs[i] = a
	}
	comb := opts.Combination
	if len(srcs) == 1 {
		comb = Linear
	}
	var rank int
	switch comb {
	case Linear, TIES, MagnitudePrune:
		for _, a := range srcs {
			for _, l := range a.layers {
				if rank == 0 {
					rank = l.r
				}
				if l.r != rank {
					return nil, fmt.Errorf("lora: add weighted %q: combination %q needs equal ranks, %q has %d and %d", name, comb, a.name, rank, l.r)
				}
			}
		}
	case Cat:
		for _, a := range srcs {
			rank += a.cfg.R
			for _, l := range a.layers {
				if l.r != a.cfg.R {
					return nil, fmt.Errorf("lora: add weighted %q: cat needs one rank per adapter, %q uses rank_pattern", name, a.name)
				}
			}
		}
	case "":
		return nil, fmt.Errorf("lora: add weighted %q: WeightedOptions.Combination is required for several adapters", name)
	default:
		return nil, fmt.Errorf("lora: add weighted %q: combination %q is not supported (lethe has linear, cat, ties, magnitude_prune)", name, comb)
	}
	if comb == TIES || comb == MagnitudePrune {
		if opts.Density < 0 {
			return nil, fmt.Errorf("lora: add weighted %q: density must be >= 0, got %g", name, opts.Density)
		}
		if opts.MajoritySign == "" {
			opts.MajoritySign = "total"
		}
		if opts.MajoritySign != "total" && opts.MajoritySign != "frequency" {
			return nil, fmt.Errorf("lora: add weighted %q: majority sign %q is not total or frequency", name, opts.MajoritySign)
		}
	}
	cfg := srcs[0].cfg
	if cfg.raw != nil {
		cfg.raw = cfg.raw.Clone()
	}
	cfg.R, cfg.Alpha = rank, float64(rank)
	cfg.RankPattern, cfg.AlphaPattern = nil, nil
	tl := make([]peft.Targets, len(srcs))
	for i, a := range srcs {
		tl[i] = a.cfg.TargetModules
	}
	var err error
	if cfg.TargetModules, err = unionTargets(tl); err != nil {
		return nil, fmt.Errorf("lora: add weighted %q: %w", name, err)
	}
	out, err := s.build(name, cfg)
	if err != nil {
		return nil, err
	}
	for _, l := range out.layers {
		if err := combineLayer(l, srcs, weights, comb, opts); err != nil {
			_ = s.m.Store.DeleteVariablesInScope(out.scope())
			return nil, fmt.Errorf("lora: add weighted %q: %s: %w", name, l.mod.Name, err)
		}
	}
	s.add(out)
	return out, nil
}

// combineLayer fills one module of the combined adapter.
func combineLayer(dst *layer, srcs []*Adapter, weights []float64, comb Combination, opts WeightedOptions) error {
	in, out := dst.mod.In, dst.mod.Out
	var as, bs []*host.Matrix // torch layouts: A [r, in], B [out, r]
	var ws []float64
	for i, a := range srcs {
		var src *layer
		for _, l := range a.byHook[dst.mod.Hook] {
			if l.mod.Name == dst.mod.Name {
				src = l
			}
		}
		if src == nil {
			continue
		}
		ma, err := host.ReadMatrix(src.a)
		if err != nil {
			return err
		}
		mb, err := host.ReadMatrix(src.b)
		if err != nil {
			return err
		}
		as, bs = append(as, ma.T()), append(bs, mb.T())
		ws = append(ws, weights[i]*src.scale)
	}
	newA := host.NewMatrix(dst.r, in)
	newB := host.NewMatrix(out, dst.r)
	if len(as) > 0 {
		switch comb {
		case Cat:
			row := 0
			for i := range as {
				r := as[i].Rows
				for k := 0; k < r; k++ {
					for j := 0; j < in; j++ {
						newA.Data[(row+k)*in+j] = float32(ws[i]) * as[i].Data[k*in+j]
					}
					for o := 0; o < out; o++ {
						newB.Data[o*dst.r+row+k] = bs[i].Data[o*r+k]
					}
				}
				row += r
			}
		default:
			sq := make([]float64, len(ws))
			for i, w := range ws {
				if w < 0 {
					return fmt.Errorf("weight × scaling is %g; the %s combination takes its square root", w, comb)
				}
				sq[i] = math.Sqrt(w)
			}
			newA = mergeTensors(as, sq, comb, opts)
			newB = mergeTensors(bs, sq, comb, opts)
		}
	}
	if err := host.Write(dst.a, newA.T().Data); err != nil {
		return err
	}
	return host.Write(dst.b, newB.T().Data)
}

// mergeTensors is PEFT's task_arithmetic / ties / magnitude_prune over
// same-shaped tensors.
func mergeTensors(ts []*host.Matrix, w []float64, comb Combination, opts WeightedOptions) *host.Matrix {
	n := len(ts[0].Data)
	vals := make([][]float64, len(ts))
	for i, t := range ts {
		vals[i] = make([]float64, n)
		for j, v := range t.Data {
			vals[i][j] = float64(v)
		}
		if comb == TIES || comb == MagnitudePrune {
			vals[i] = magnitudePrune(vals[i], opts.Density)
		}
	}
	out := host.NewMatrix(ts[0].Rows, ts[0].Cols)
	for j := 0; j < n; j++ {
		switch comb {
		case TIES:
			// Elect the sign on the pruned, unweighted tensors.
			var sum, count float64
			for i := range vals {
				sum += vals[i][j]
				count += sign(vals[i][j])
			}
			mag := sum
			if opts.MajoritySign == "frequency" {
				mag = count
			}
			major := 1.0
			if mag < 0 {
				major = -1
			}
			var acc, kept float64
			for i := range vals {
				if sign(vals[i][j]) == major {
					acc += vals[i][j] * w[i]
					kept++
				}
			}
			out.Data[j] = float32(acc / math.Max(kept, 1))
		default:
			var acc float64
			for i := range vals {
				acc += vals[i][j] * w[i]
			}
			out.Data[j] = float32(acc)
		}
	}
	return out
}

func sign(v float64) float64 {
	switch {
	case v > 0:
		return 1
	case v < 0:
		return -1
	}
	return 0
}

// magnitudePrune keeps the int(density·n) entries of largest magnitude
// (ties: the earlier index), zeroing the rest; density >= 1 keeps all.
func magnitudePrune(v []float64, density float64) []float64 {
	if density >= 1 {
		return v
	}
	k := int(density * float64(len(v)))
	idx := make([]int, len(v))
	for i := range idx {
		idx[i] = i
	}
	slices.SortStableFunc(idx, func(a, b int) int { return cmp.Compare(math.Abs(v[b]), math.Abs(v[a])) })
	out := make([]float64, len(v))
	for _, i := range idx[:k] {
		out[i] = v[i]
	}
	return out
}
