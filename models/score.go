package models

import (
	"context"
	"fmt"
	"sync"

	"github.com/gomlx/compute"
	"github.com/gomlx/compute/dtypes"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"
)

// IgnoreIndex marks a label that is not predicted (transformers' -100).
const IgnoreIndex = -100

// Score is the log-likelihood of one sequence under the model: the base of
// perplexity and of membership-inference metrics.
type Score struct {
	// Loss is the mean negative log-likelihood of the predicted tokens.
	Loss float64 `json:"loss"`
	// Tokens is the number of predicted tokens.
	Tokens int `json:"tokens"`
	// LogProbs are log p(token | prefix) of the predicted tokens, in order.
	LogProbs []float64 `json:"logprobs"`
	// With Scorer.TokenStats, for each predicted token: Mean and Std of
	// log p(z) under the model's next-token distribution p (Min-K%++'s μ
	// and σ), and Top, whether the token is the distribution's argmax
	// (exact memorisation).
	Mean []float64 `json:"mean,omitempty"`
	Std  []float64 `json:"std,omitempty"`
	Top  []bool    `json:"top,omitempty"`
}

// Scorer computes per-token log-probabilities in batches. Sequences are
// right-padded to a bucket length (one compiled graph per bucket). It is
// safe for concurrent use.
type Scorer struct {
	m       *Model
	backend compute.Backend
	exec    *model.Exec
	version uint64 // Model.version exec was built for
	mu      sync.Mutex
	// BatchSize is how many sequences run together [8].
	BatchSize int
	// Hooks apply to every forward pass: adapters (peft) or inference-time
	// dropout. Set them before the first Score.
	Hooks Hooks
	// TokenStats fills Score.Mean, Std and Top.
	TokenStats bool
}

// NewScorer returns a scorer for m on backend.
func NewScorer(m *Model, backend compute.Backend) *Scorer {
	return &Scorer{m: m, backend: backend, BatchSize: 8}
}

// Score scores every sequence. labels, when not nil, gives per-sequence
// labels (the same length as the ids) where IgnoreIndex marks tokens that
// are not scored (a prompt, say); nil scores every token after the first.
// As in causal-LM training, token t is predicted from tokens before it.
func (s *Scorer) Score(ctx context.Context, ids [][]int, labels [][]int) ([]Score, error) {
	if labels != nil && len(labels) != len(ids) {
		return nil, fmt.Errorf("score: %d label rows for %d sequences", len(labels), len(ids))
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if v := s.m.version.Load(); s.exec == nil || s.version != v {
		if s.exec != nil {
			s.exec.Finalize()
		}
		var err error
		s.version = v
		s.exec, err = model.NewExec(s.backend, s.m.Store, func(_ *model.Scope, ids, mask, labels *Node) []*Node {
			out := s.m.Forward(Inputs{IDs: ids, Mask: mask}, Options{Hooks: s.Hooks})
			T := ids.Shape().Dimensions[1]
			target := ConvertDType(SliceAxis(labels, 1, AxisRange(1, T)), dtypes.Int32)
			logits := SliceAxis(out.Logits, 1, AxisRange(0, T-1))
			nll, valid := tokenNLL(logits, target)
			res := []*Node{ConvertDType(Neg(nll), dtypes.Float32), ConvertDType(valid, dtypes.Float32)}
			if s.TokenStats {
				logp := LogSoftmax(upcast(logits), -1)
				mean := ReduceSum(Mul(Exp(logp), logp), -1)
				second := ReduceSum(Mul(Exp(logp), Square(logp)), -1)
				std := Sqrt(Max(Sub(second, Square(mean)), ZerosLike(mean)))
				top := ConvertDType(Equal(ConvertDType(ArgMax(logits, -1), dtypes.Int32), target), dtypes.Float32)
				res = append(res, ConvertDType(mean, dtypes.Float32), ConvertDType(std, dtypes.Float32), top)
			}
			return res
		})
		if err != nil {
			s.exec = nil
			return nil, fmt.Errorf("score: %w", err)
		}
	}
	V := s.m.Config.VocabSize
	out := make([]Score, len(ids))
	bs := max(s.BatchSize, 1)
	for start := 0; start < len(ids); start += bs {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		end := min(start+bs, len(ids))
		maxLen := 2
		for i := start; i < end; i++ {
			if len(ids[i]) == 0 {
				return nil, fmt.Errorf("score: sequence %d is empty", i)
			}
			if labels != nil && len(labels[i]) != len(ids[i]) {
				return nil, fmt.Errorf("score: sequence %d has %d ids and %d labels", i, len(ids[i]), len(labels[i]))
			}
			maxLen = max(maxLen, len(ids[i]))
		}
		T := bucket(maxLen, minPromptBucket)
		B := end - start
		idT := make([]int32, B*T)
		maskT := make([]int32, B*T)
		labT := make([]int32, B*T)
		for r := range B {
			seq := ids[start+r]
			for j := range T {
				labT[r*T+j] = IgnoreIndex
			}
			for j, tok := range seq {
				if tok < 0 || tok >= V {
					return nil, fmt.Errorf("score: sequence %d has token id %d outside the vocabulary (size %d)", start+r, tok, V)
				}
				idT[r*T+j] = int32(tok)
				maskT[r*T+j] = 1
				if labels == nil {
					labT[r*T+j] = int32(tok)
				} else {
					labT[r*T+j] = int32(labels[start+r][j])
				}
			}
		}
		res, err := s.exec.Call(tensors.FromFlatDataAndDimensions(idT, B, T),
			tensors.FromFlatDataAndDimensions(maskT, B, T), tensors.FromFlatDataAndDimensions(labT, B, T))
		if err != nil {
			return nil, fmt.Errorf("score: %w", err)
		}
		lp, valid := flatFloat32(res[0]), flatFloat32(res[1]) // [B, T-1]
		var mean, std, top []float32
		if s.TokenStats {
			mean, std, top = flatFloat32(res[2]), flatFloat32(res[3]), flatFloat32(res[4])
		}
		for r := range B {
			sc := Score{LogProbs: []float64{}}
			sum := 0.0
			for j := 0; j < T-1; j++ {
				if k := r*(T-1) + j; valid[k] > 0 {
					v := float64(lp[k])
					sc.LogProbs = append(sc.LogProbs, v)
					sum -= v
					if s.TokenStats {
						sc.Mean = append(sc.Mean, float64(mean[k]))
						sc.Std = append(sc.Std, float64(std[k]))
						sc.Top = append(sc.Top, top[k] > 0)
					}
				}
			}
			sc.Tokens = len(sc.LogProbs)
			if sc.Tokens > 0 {
				sc.Loss = sum / float64(sc.Tokens)
			}
			out[start+r] = sc
		}
	}
	return out, nil
}
