package hints

import (
	"errors"
	"fmt"
	"hash/fnv"
	"math"
	"math/rand/v2"
	"slices"
	"strings"

	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/shapes"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"

	"github.com/lethe-ml/lethe/models"
)

// Scope is the store scope under which New creates the projections:
// Scope/<Config.Name>/<pair>/<variable>, or Scope/<pair>/<variable> when
// Config.Name is empty, with <pair> as Pair.String ("s2-t4").
const Scope = "distill_hints"

// Projection kinds (Config.Kind).
const (
	// KindFitNets is FitNets' regressor (Romero et al., "FitNets: Hints
	// for Thin Deep Nets", ICLR 2015): a free linear map W [Hs, Ht] (and
	// bias b [Ht] with Config.Bias) from the student's states to the
	// teacher's, ŝ = s·W + b, learned with the student.
	KindFitNets = "fitnets"
	// KindVkD is V_kD's orthogonal projection (Miles, Elezi, Deng,
	// "V_kD: Improving Knowledge Distillation using Orthogonal
	// Projections", CVPR 2024): ŝ = s·P with P [Hs, Ht] (semi-)orthogonal,
	// P·Pᵀ = I when Hs ≤ Ht and Pᵀ·P = I when Hs ≥ Ht, so the projection
	// can rotate the student's features but not distort them. P is the
	// top-left [Hs, Ht] block of Q = B·exp(S − Sᵀ) [n, n], n = max(Hs, Ht):
	// B a fixed random orthogonal matrix drawn from Config.Seed and S the
	// trained parameter (zero at first, so P starts as B's block), like
	// torch's orthogonal parametrisation with the matrix exponential and
	// trivialisation. P stays orthogonal whatever the optimizer does to S.
	KindVkD = "vkd"
)

// Distances between the projected student states ŝ and the teacher states
// t (Config.Loss), as means over the counted tokens.
const (
	// LossMSE is (1/N) Σ_tokens (1/Ht) ‖ŝ − t‖²: FitNets' L2 hint loss and
	// V_kD's L2 loss, per feature.
	LossMSE = "mse"
	// LossCosine is (1/N) Σ_tokens (1 − ŝ·t / (‖ŝ‖·‖t‖)).
	LossCosine = "cosine"
)

// Teacher normalisations (Config.Normalize), applied to the teacher states
// before the loss; no gradient reaches the teacher.
const (
	// NormNone compares with the teacher's states as they are (FitNets).
	NormNone = "none"
	// NormStandardize is Standardize: per-feature zero mean and unit
	// variance over the batch's counted tokens, V_kD's normalisation.
	NormStandardize = "standardize"
)

// Config configures the hint losses of New.
type Config struct {
	// Kind is the projection: KindFitNets (default) or KindVkD.
	Kind string
	// Loss is the distance: LossMSE (default) or LossCosine.
	Loss string
	// Normalize is the teacher normalisation: NormNone (the default for
	// FitNets) or NormStandardize (the default for V_kD).
	Normalize string
	// Pairs map student to teacher hidden states; default Map(student
	// layers, teacher layers).
	Pairs []Pair
	// Bias adds a bias to FitNets' regressors (V_kD's projection has none).
	Bias bool
	// Name distinguishes several sets of hints in one store, one per
	// teacher (see Mix): their scope is Scope/Name.
	Name string
	// Seed seeds the initial projections: FitNets' W and b uniform in
	// ±1/√Hs (torch's nn.Linear), V_kD's base B random orthogonal.
	Seed uint64
}

// Side describes one model's hidden states: Layers transformer layers, so
// Layers+1 hidden states (models.Outputs.Hidden), of width Hidden.
type Side struct {
	Layers, Hidden int
}

// SideOf returns the Side of a model configuration.
func SideOf(c *models.Config) Side { return Side{Layers: c.NumLayers, Hidden: c.HiddenSize} }

// fill sets cfg's defaults and validates it.
func (c *Config) fill(student, teacher Side) error {
	if student.Layers <= 0 || student.Hidden <= 0 || teacher.Layers <= 0 || teacher.Hidden <= 0 {
		return fmt.Errorf("hints: layers and hidden sizes must be positive (student %+v, teacher %+v)", student, teacher)
	}
	if c.Kind == "" {
		c.Kind = KindFitNets
	}
	if c.Loss == "" {
		c.Loss = LossMSE
	}
	switch c.Kind {
	case KindFitNets:
		if c.Normalize == "" {
			c.Normalize = NormNone
		}
	case KindVkD:
		if c.Normalize == "" {
			c.Normalize = NormStandardize
		}
		if c.Bias {
			return errors.New("hints: V_kD's orthogonal projection has no bias (Bias is for fitnets)")
		}
	default:
		return fmt.Errorf("hints: kind %q is not supported (want %q or %q)", c.Kind, KindFitNets, KindVkD)
	}
	if c.Loss != LossMSE && c.Loss != LossCosine {
		return fmt.Errorf("hints: loss %q is not supported (want %q or %q)", c.Loss, LossMSE, LossCosine)
	}
	if c.Normalize != NormNone && c.Normalize != NormStandardize {
		return fmt.Errorf("hints: normalization %q is not supported (want %q or %q)", c.Normalize, NormNone, NormStandardize)
	}
	if strings.Contains(c.Name, "/") {
		return fmt.Errorf("hints: name %q must not contain '/'", c.Name)
	}
	if len(c.Pairs) == 0 {
		c.Pairs = Map(student.Layers, teacher.Layers)
	} else {
		c.Pairs = slices.Clone(c.Pairs)
	}
	return ValidatePairs(c.Pairs, student.Layers, teacher.Layers)
}

// Hints are hint (feature-distillation) losses between a student's and a
// teacher's hidden states, FitNets' or V_kD's, with their projections: one
// per layer pair, in the student's store, trained with the student (give
// Params and Vars to the trainer). For several teachers, create one Hints
// per teacher (each with its Name) and combine their losses with Mix: the
// per-teacher projections are UNIC's expendable projector heads (Sarıyıldız
// et al., ECCV 2024), and pairs at several depths give its "ladder of
// projectors" (here linear or orthogonal maps rather than UNIC's MLPs).
type Hints struct {
	cfg              Config
	student, teacher Side
	pairs            []*pairVars
}

// pairVars are the variables of one pair's projection.
type pairVars struct {
	Pair
	weight, bias *model.Variable // FitNets: W [Hs, Ht], b [Ht]
	skew, base   *model.Variable // V_kD: S [n, n] (trained), B [n, n] (fixed)
}

// New creates the projections of cfg's pairs in store (the student's),
// initialised from cfg.Seed, for a student and a teacher with the given
// layers and widths. It fails, leaving the store alone, when cfg is
// invalid or the store already holds variables under the hints' scope.
func New(store *model.Store, cfg Config, student, teacher Side) (*Hints, error) {
	if err := cfg.fill(student, teacher); err != nil {
		return nil, err
	}
	h := &Hints{cfg: cfg, student: student, teacher: teacher}
	prefix := h.scope() + "/"
	for v := range store.IterVariables() {
		if strings.HasPrefix(v.Path(), prefix) {
			return nil, fmt.Errorf("hints: the store already holds %s; give the hints another Name", v.Path())
		}
	}
	if err := h.create(store); err != nil {
		_ = store.DeleteVariablesInScope(h.scope())
		return nil, err
	}
	return h, nil
}

// scope is the hints' store scope ("/distill_hints[/name]").
func (h *Hints) scope() string {
	if h.cfg.Name == "" {
		return "/" + Scope
	}
	return "/" + Scope + "/" + h.cfg.Name
}

func (h *Hints) create(store *model.Store) error {
	hs, ht := h.student.Hidden, h.teacher.Hidden
	newVar := func(p Pair, name string, data []float32, dims ...int) (*model.Variable, error) {
		v, err := store.CreateVariable(model.JoinPath(h.scope(), p.String(), name), tensors.FromFlatDataAndDimensions(data, dims...))
		if err != nil {
			return nil, fmt.Errorf("hints: pair %s: %w", p, err)
		}
		return v, nil
	}
	for _, p := range h.cfg.Pairs {
		rng := pairRNG(h.cfg.Seed, h.scope()+"/"+p.String())
		pv := &pairVars{Pair: p}
		var err error
		switch h.cfg.Kind {
		case KindFitNets:
			bound := 1 / math.Sqrt(float64(hs))
			if pv.weight, err = newVar(p, "weight", uniform(rng, hs*ht, bound), hs, ht); err != nil {
				return err
			}
			if h.cfg.Bias {
				if pv.bias, err = newVar(p, "bias", uniform(rng, ht, bound), ht); err != nil {
					return err
				}
			}
		case KindVkD:
			n := max(hs, ht)
			if pv.skew, err = newVar(p, "skew", make([]float32, n*n), n, n); err != nil {
				return err
			}
			if pv.base, err = newVar(p, "base", randomOrthogonal(rng, n), n, n); err != nil {
				return err
			}
			pv.base.SetTrainable(false)
		}
		h.pairs = append(h.pairs, pv)
	}
	return nil
}

// pairRNG is the generator of one pair's initial values: PCG seeded with
// (seed, FNV-1a of the pair's scope), so pairs and named hints differ and
// do not depend on one another.
func pairRNG(seed uint64, name string) *rand.Rand {
	f := fnv.New64a()
	f.Write([]byte(name))
	return rand.New(rand.NewPCG(seed, f.Sum64()))
}

// uniform draws n values from U(−bound, bound).
func uniform(rng *rand.Rand, n int, bound float64) []float32 {
	out := make([]float32, n)
	for i := range out {
		out[i] = float32((2*rng.Float64() - 1) * bound)
	}
	return out
}

// Config returns the configuration, with its defaults filled in.
func (h *Hints) Config() Config {
	c := h.cfg
	c.Pairs = slices.Clone(c.Pairs)
	return c
}

// Pairs returns the layer pairs, in the order of the pair indices.
func (h *Hints) Pairs() []Pair { return slices.Clone(h.cfg.Pairs) }

// Params lists the trained tensors by store path (FitNets' weight and
// bias, V_kD's skew per pair), for train.TrainerOptions.Params; Vars maps
// them to their variables (TrainerOptions.Vars). V_kD's fixed bases are
// not trained and not listed.
func (h *Hints) Params() []string {
	var out []string
	for _, p := range h.pairs {
		for _, v := range []*model.Variable{p.weight, p.bias, p.skew} {
			if v != nil {
				out = append(out, v.Path())
			}
		}
	}
	return out
}

// Vars maps Params to their variables.
func (h *Hints) Vars() map[string]*model.Variable {
	out := map[string]*model.Variable{}
	for _, p := range h.pairs {
		for _, v := range []*model.Variable{p.weight, p.bias, p.skew} {
			if v != nil {
				out[v.Path()] = v
			}
		}
	}
	return out
}

// Delete removes the projections from the store (they are expendable once
// the student is trained).
func (h *Hints) Delete(store *model.Store) error {
	if err := store.DeleteVariablesInScope(h.scope()); err != nil {
		return fmt.Errorf("hints: %w", err)
	}
	return nil
}

// Projection returns pair i's projection matrix [Hs, Ht] in graph g:
// FitNets' W, or V_kD's P, the [Hs, Ht] block of B·exp(S − Sᵀ).
func (h *Hints) Projection(g *Graph, i int) *Node {
	p := h.pair(i)
	if h.cfg.Kind == KindFitNets {
		return float32Of(p.weight.NodeValue(g))
	}
	s := float32Of(p.skew.NodeValue(g))
	q := MatMul(StopGradient(float32Of(p.base.NodeValue(g))), expSkew(Sub(s, Transpose(s, 0, 1))))
	return semiOrthogonal(q, h.student.Hidden, h.teacher.Hidden)
}

// Project maps student states x [B, T, Hs] into the teacher's space with
// pair i's projection: x·W (+ b) for FitNets, x·P for V_kD, in float32.
func (h *Hints) Project(i int, x *Node) *Node {
	p := h.pair(i)
	if d := x.Shape().Dimensions; len(d) != 3 || d[2] != h.student.Hidden {
		panic(fmt.Errorf("hints: pair %s: student states have shape %v, want [B, T, %d]", p.Pair, d, h.student.Hidden))
	}
	y := Einsum("bti,io->bto", float32Of(x), h.Projection(x.Graph(), i))
	if p.bias != nil {
		y = Add(y, Reshape(float32Of(p.bias.NodeValue(x.Graph())), 1, 1, h.teacher.Hidden))
	}
	return y
}

// NormalizeTeacher returns the teacher states t [B, T, Ht] as the loss
// sees them: float32, without gradient, and standardised over the tokens
// of mask with NormStandardize.
func (h *Hints) NormalizeTeacher(t, mask *Node) *Node {
	t = StopGradient(float32Of(t))
	if h.cfg.Normalize == NormStandardize {
		return Standardize(t, mask)
	}
	return t
}

// PairLoss is pair i's hint loss between one student state s [B, T, Hs]
// and one teacher state t [B, T, Ht], over the tokens of mask [B, T]
// (nonzero counts; nil: all):
//
//	mse:    (1/N) Σ_{b,t} m_{bt} · (1/Ht) ‖proj(s_{bt}) − norm(t)_{bt}‖²
//	cosine: (1/N) Σ_{b,t} m_{bt} · (1 − cos(proj(s_{bt}), norm(t)_{bt}))
//
// with N = max(Σ m, 1), proj Project and norm NormalizeTeacher; a float32
// scalar.
func (h *Hints) PairLoss(i int, s, t, mask *Node) *Node {
	p := h.pair(i)
	if d := t.Shape().Dimensions; len(d) != 3 || d[2] != h.teacher.Hidden {
		panic(fmt.Errorf("hints: pair %s: teacher states have shape %v, want [B, T, %d]", p.Pair, d, h.teacher.Hidden))
	}
	if sd, td := s.Shape().Dimensions, t.Shape().Dimensions; len(sd) != 3 || sd[0] != td[0] || sd[1] != td[1] {
		panic(fmt.Errorf("hints: pair %s: student states %v and teacher states %v differ in [B, T]", p.Pair, sd, td))
	}
	proj := h.Project(i, s)
	m := tokenMask(proj, mask)
	target := h.NormalizeTeacher(t, mask)
	if h.cfg.Loss == LossCosine {
		return cosineLoss(proj, target, m)
	}
	return mseLoss(proj, target, m)
}

// Loss is the mean of the pairs' losses (PairLoss) over the pairs, given
// all hidden states of the student and of the teacher
// (models.Outputs.Hidden: Layers+1 each) and the token mask [B, T] (e.g.
// the attention mask; nil: all tokens count). It is a float32 scalar; only
// the student's states and the projections get gradients.
func (h *Hints) Loss(student, teacher []*Node, mask *Node) *Node {
	if len(student) != h.student.Layers+1 {
		panic(fmt.Errorf("hints: %d student hidden states, want %d (a student of %d layers)", len(student), h.student.Layers+1, h.student.Layers))
	}
	if len(teacher) != h.teacher.Layers+1 {
		panic(fmt.Errorf("hints: %d teacher hidden states, want %d (a teacher of %d layers)", len(teacher), h.teacher.Layers+1, h.teacher.Layers))
	}
	var total *Node
	for i, p := range h.pairs {
		l := h.PairLoss(i, student[p.Student], teacher[p.Teacher], mask)
		if total == nil {
			total = l
		} else {
			total = Add(total, l)
		}
	}
	return DivScalar(total, float64(len(h.pairs)))
}

func (h *Hints) pair(i int) *pairVars {
	if i < 0 || i >= len(h.pairs) {
		panic(fmt.Errorf("hints: pair index %d out of range [0, %d)", i, len(h.pairs)))
	}
	return h.pairs[i]
}

func shapeF32(dims ...int) shapes.Shape { return shapes.Make(dtypes.Float32, dims...) }
