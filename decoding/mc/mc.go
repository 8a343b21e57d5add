// Package mc runs Monte Carlo dropout on a model (Gal & Ghahramani 2016,
// "Dropout as a Bayesian Approximation"): K forward passes with dropout
// on, whose predictive distributions give per-token uncertainty
// (predictive entropy, expected entropy, mutual information), and fixed
// dropout masks as a set of near-equal models (dropout Rashomon sets, Hsu
// et al. 2024, "Dropout-Based Rashomon Set Exploration for Efficient
// Predictive Multiplicity Estimation").
//
// The per-token quantities are computed in the graph, so only [K, T]
// values leave the backend whatever the vocabulary. Mutual information is
// the mean KL divergence of each pass from the mean prediction, with the
// mean taken relative to the first pass (log p̄ = log p₁ + log mean_k
// exp(log p_k − log p₁)), so that identical passes (rate 0) give exactly 0.
package mc

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync"

	"github.com/gomlx/compute"
	"github.com/gomlx/compute/dtypes"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"

	"github.com/lethe-ml/lethe/models"
	"github.com/lethe-ml/lethe/peft"
	"github.com/lethe-ml/lethe/train/dropout"
)

// Options configure a Scorer.
type Options struct {
	// Passes is K, the number of stochastic passes [10].
	Passes int
	// Dropout are the rates of the passes [residual 0.1]: any site of
	// package dropout (attention, residual, embeddings, penultimate).
	Dropout dropout.Config
	// NoDropout keeps every rate at 0 (all passes equal: a check that
	// the mutual information is then 0).
	NoDropout bool
	// Seed seeds the masks.
	Seed uint64
	// Hooks are applied to every pass (adapters).
	Hooks models.Hooks
}

// Token holds a completion token's uncertainty over the K passes, in
// nats: PredictiveEntropy = H[p̄] (total), ExpectedEntropy = mean_k H[p_k]
// (aleatoric), MutualInformation = PE − EE = mean_k KL(p_k ‖ p̄)
// (epistemic, ≥ 0), and LogProbs[k] = log p_k(token).
type Token struct {
	ID                                                    int
	PredictiveEntropy, ExpectedEntropy, MutualInformation float64
	LogProbs                                              []float64
}

// Sequence is the uncertainty of a completion: its tokens and their means.
type Sequence struct {
	Tokens []Token
	// MeanPE, MeanEE, MeanMI and MaxMI summarise the tokens; MeanLogProb
	// is the length-normalised log-probability averaged over the passes,
	// LogProbStd its standard deviation across passes.
	MeanPE, MeanEE, MeanMI, MaxMI float64
	MeanLogProb, LogProbStd       float64
}

// Scorer scores completions with K dropout passes. It is safe for
// concurrent use.
type Scorer struct {
	m     *models.Model
	b     compute.Backend
	opts  Options
	hooks models.Hooks
	mu    sync.Mutex
	exec  *model.Exec
}

// NewScorer prepares MC-dropout scoring of m on b.
func NewScorer(m *models.Model, b compute.Backend, opts Options) (*Scorer, error) {
	if opts.Passes == 0 {
		opts.Passes = 10
	}
	if opts.Passes < 1 {
		return nil, fmt.Errorf("mc: passes must be positive, got %d", opts.Passes)
	}
	if d := opts.Dropout; d.Attention == 0 && d.Residual == 0 && d.Embeddings == 0 && d.Penultimate == 0 && !opts.NoDropout {
		opts.Dropout.Residual = 0.1
	}
	reg, err := dropout.New(m, opts.Dropout)
	if err != nil {
		return nil, fmt.Errorf("mc: %w", err)
	}
	return &Scorer{m: m, b: b, opts: opts, hooks: peft.ComposeHooks(opts.Hooks, reg.Hooks())}, nil
}

// bucket rounds n up to a power of two, at least 16: each length compiles
// once.
func bucket(n int) int {
	b := 16
	for b < n {
		b *= 2
	}
	return b
}

// Score runs K passes over prompt + completion and returns the
// uncertainty of every completion token. The passes of one call are rows
// of one batch, each with its own dropout masks.
func (s *Scorer) Score(ctx context.Context, prompt, completion []int) (Sequence, error) {
	if len(prompt) == 0 || len(completion) == 0 {
		return Sequence{}, errors.New("mc: empty prompt or completion")
	}
	if err := ctx.Err(); err != nil {
		return Sequence{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.exec == nil {
		var err error
		s.exec, err = model.NewExec(s.b, s.m.Store, func(scope *model.Scope, in []*Node) []*Node {
			g := in[0].Graph()
			scope.SetTraining(g, true) // dropout draws from the store's generator
			return s.graph(in[0], in[1], in[2])
		})
		if err != nil {
			return Sequence{}, fmt.Errorf("mc: %w", err)
		}
	}
	seq := append(append([]int(nil), prompt...), completion...)
	K, T := s.opts.Passes, bucket(len(seq))
	ids := make([]int32, K*T)
	mask := make([]int32, K*T)
	targets := make([]int32, K*T) // the next token of every position
	for k := range K {
		for j, id := range seq {
			ids[k*T+j], mask[k*T+j] = int32(id), 1
			if j+1 < len(seq) {
				targets[k*T+j] = int32(seq[j+1])
			}
		}
	}
	if err := s.m.Store.SetRNGStateFromSeed(int64(s.opts.Seed)); err != nil {
		return Sequence{}, err
	}
	res, err := s.exec.Call(tensors.FromFlatDataAndDimensions(ids, K, T), tensors.FromFlatDataAndDimensions(mask, K, T),
		tensors.FromFlatDataAndDimensions(targets, K, T))
	if err != nil {
		return Sequence{}, fmt.Errorf("mc: %w", err)
	}
	ee, mi, lp := flat(res[0]), flat(res[1]), flat(res[2]) // [T], [T], [K, T]
	var out Sequence
	n := float64(len(completion))
	for i, id := range completion {
		pos := len(prompt) + i - 1 // the position that predicts completion[i]
		tok := Token{ID: id, ExpectedEntropy: ee[pos], MutualInformation: max(mi[pos], 0)}
		tok.PredictiveEntropy = tok.ExpectedEntropy + tok.MutualInformation
		for k := range K {
			tok.LogProbs = append(tok.LogProbs, lp[k*T+pos])
		}
		out.Tokens = append(out.Tokens, tok)
		out.MeanPE += tok.PredictiveEntropy / n
		out.MeanEE += tok.ExpectedEntropy / n
		out.MeanMI += tok.MutualInformation / n
		out.MaxMI = max(out.MaxMI, tok.MutualInformation)
	}
	perPass := make([]float64, K)
	for k := range K {
		for _, tok := range out.Tokens {
			perPass[k] += tok.LogProbs[k] / n
		}
		out.MeanLogProb += perPass[k] / float64(K)
	}
	for k := range K {
		d := perPass[k] - out.MeanLogProb
		out.LogProbStd += d * d / float64(K)
	}
	out.LogProbStd = math.Sqrt(out.LogProbStd)
	return out, nil
}

// graph computes, from K passes over the same row: the expected entropy
// [T], the mutual information [T] and log p_k(target) [K, T].
func (s *Scorer) graph(ids, mask, targets *Node) []*Node {
	out := s.m.Forward(models.Inputs{IDs: ids, Mask: mask}, models.Options{Hooks: s.hooks})
	lp := LogSoftmax(ConvertDType(out.Logits, dtypes.Float32)) // [K, T, V]
	p := Exp(lp)
	ent := Neg(ReduceSum(Mul(p, lp), -1)) // [K, T]
	ee := ReduceMean(ent, 0)
	// log p̄ relative to the first pass: exactly log p_1 when the passes
	// agree.
	first := SliceAxis(lp, 0, AxisRange(0, 1)) // [1, T, V]
	rel := Sub(lp, first)
	logMean := Add(first, ExpandAxes(Log(ReduceMean(Exp(rel), 0)), 0)) // [1, T, V]
	kl := ReduceSum(Mul(p, Sub(lp, logMean)), -1)                      // [K, T]
	mi := ReduceMean(kl, 0)                                            // [T]
	hot := OneHot(targets, lp.Shape().Dimensions[2], dtypes.Float32)   // [K, T, V]
	lpt := ReduceSum(Mul(lp, hot), -1)                                 // [K, T]
	return []*Node{ConvertDType(ee, dtypes.Float64), ConvertDType(mi, dtypes.Float64), ConvertDType(lpt, dtypes.Float64)}
}

func flat(t *tensors.Tensor) []float64 {
	var out []float64
	t.MustConstFlatData(func(f any) { out = append(out, f.([]float64)...) })
	return out
}
