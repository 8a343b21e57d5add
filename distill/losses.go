package distill

import (
	"fmt"
	"math"
	"strings"

	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/shapes"
	. "github.com/gomlx/gomlx/core/graph"
)

// IgnoreIndex is the label of a position that takes no part in a loss
// (PyTorch's and transformers' ignore_index).
const IgnoreIndex = -100

// tailEps is the smallest teacher probability mass outside a top-k set that
// TailSymmetricUniform and SparsePLD take as a real tail: a cache that keeps
// the whole vocabulary (k = V) sums to 1 up to float32 rounding, and that
// rounding must not turn into a tail (at temperature T its mass is raised to
// the power 1/T, which would magnify it).
const tailEps = 1e-5

// rankFloor is the teacher log-probability below which a top-k entry takes
// part in no ranking pair: log(1e-9), DistillKit's "actually supported"
// threshold (p > 1e-9) for entries that pad a cache holding fewer than k
// tokens.
var rankFloor = math.Log(1e-9)

// Mask is the [B, T] float32 mask of the logits [B, T, V] a model computes
// for labels [B, T], with the causal shift lethe's models use: the logits at
// position i predict labels[i+1], so
//
//	mask[b, i] = 1 if labels[b, i+1] != IgnoreIndex, else 0;  mask[b, T-1] = 0.
//
// It is what every loss of this package takes as its mask for a batch whose
// labels mark prompt and padding tokens with IgnoreIndex (-100).
func Mask(labels *Node) *Node {
	if labels.Rank() != 2 {
		panic(fmt.Errorf("distill.Mask: labels must be [batch, tokens], got shape %s", labels.Shape()))
	}
	g := labels.Graph()
	B, T := labels.Shape().Dimensions[0], labels.Shape().Dimensions[1]
	if T < 2 {
		return Zeros(g, shapes.Make(dtypes.Float32, B, T))
	}
	next := SliceAxis(labels, 1, AxisRange(1, T))
	keep := ConvertDType(NotEqual(next, Scalar(g, labels.DType(), IgnoreIndex)), dtypes.Float32)
	return Concatenate([]*Node{keep, Zeros(g, shapes.Make(dtypes.Float32, B, 1))}, 1)
}

// Targets is the [B, T] int32 next-token ids aligned with the logits
// [B, T, V] of labels [B, T]: labels shifted left by one,
//
//	targets[b, i] = labels[b, i+1] (0 where that label is negative, i.e. IgnoreIndex);  targets[b, T-1] = 0.
//
// The 0s are placeholders at positions Mask(labels) excludes. PLD and
// SparsePLD take these targets as their gold labels.
func Targets(labels *Node) *Node {
	if labels.Rank() != 2 {
		panic(fmt.Errorf("distill.Targets: labels must be [batch, tokens], got shape %s", labels.Shape()))
	}
	g := labels.Graph()
	B, T := labels.Shape().Dimensions[0], labels.Shape().Dimensions[1]
	if T < 2 {
		return Zeros(g, shapes.Make(dtypes.Int32, B, T))
	}
	next := ConvertDType(SliceAxis(labels, 1, AxisRange(1, T)), dtypes.Int32)
	next = Where(GreaterOrEqual(next, ZerosLike(next)), next, ZerosLike(next))
	return Concatenate([]*Node{next, Zeros(g, shapes.Make(dtypes.Int32, B, 1))}, 1)
}

// ForwardKL is Hinton et al.'s knowledge-distillation loss ("Distilling the
// Knowledge in a Neural Network", 2015, arXiv:1503.02531), the forward
// (mode-covering) KL from the teacher to the student at temperature T:
//
//	p_t = softmax(teacher/T),  p_s = softmax(student/T)
//	loss = T² · mean over counted tokens of KL(p_t ‖ p_s) = T² · Σ_v p_t(v)·(log p_t(v) − log p_s(v))
//
// The T² factor keeps the gradient's scale independent of T (Hinton's
// scaling): ∂loss/∂student = T·(p_s − p_t)/N at each of the N counted
// positions. At T = 1 it is torchtune's ForwardKLLoss and DistiLLM's
// forward_kl up to the teacher's entropy Σ p_t log p_t, a constant those
// omit (they compute the cross-entropy −Σ p_t log p_s; the gradients are
// the same). student and teacher are logits [B, T, V] of any float dtype
// (computed in float32); the teacher is a constant (no gradient flows into
// it); mask [B, T] weighs the positions (1 counts, 0 is ignored; see Mask).
// The result is a float32 scalar, 0 when no position counts.
func ForwardKL(student, teacher, mask *Node, t float64) *Node {
	ls, lt := logProbPair("ForwardKL", student, teacher, mask, t)
	return MulScalar(tokenMean(kl(lt, ls), mask), t*t)
}

// ReverseKL is the reverse (mode-seeking) KL from the student to the teacher
// at temperature T, with Hinton's T² scaling as ForwardKL:
//
//	loss = T² · mean over counted tokens of KL(p_s ‖ p_t) = T² · Σ_v p_s(v)·(log p_s(v) − log p_t(v))
//
// p_s = softmax(student/T), p_t = softmax(teacher/T). At T = 1 it is
// DistiLLM's reverse_kl (distillm/losses.py), the objective of MiniLLM (Gu
// et al., "MiniLLM: Knowledge Distillation of Large Language Models", 2024,
// arXiv:2306.08543). Conventions as ForwardKL.
func ReverseKL(student, teacher, mask *Node, t float64) *Node {
	ls, lt := logProbPair("ReverseKL", student, teacher, mask, t)
	return MulScalar(tokenMean(kl(ls, lt), mask), t*t)
}

// SymmetricKL is the Jeffreys divergence, the sum of the forward and the
// reverse KL at temperature T, with Hinton's T² scaling:
//
//	loss = T² · mean over counted tokens of [KL(p_t ‖ p_s) + KL(p_s ‖ p_t)] = ForwardKL + ReverseKL
//
// This package takes the unweighted sum (Jeffreys, 1946) so that the loss
// is a symmetric function of the two distributions. DistiLLM's
// symmetric_kl (distillm/losses.py) instead mixes the two with a weight λ,
// (1−λ)·forward + λ·reverse (λ = 0.9 by default there); that is
// Combine(ForwardKL(...), ReverseKL(...), λ). Conventions as ForwardKL.
func SymmetricKL(student, teacher, mask *Node, t float64) *Node {
	ls, lt := logProbPair("SymmetricKL", student, teacher, mask, t)
	return MulScalar(tokenMean(Add(kl(lt, ls), kl(ls, lt)), mask), t*t)
}

// GeneralizedJSD is the generalized Jensen-Shannon divergence of GKD (Agarwal
// et al., "On-Policy Distillation of Language Models: Learning from
// Self-Generated Mistakes", 2024, arXiv:2306.13649, Eq. 1) exactly as TRL's
// GKDTrainer.generalized_jsd_loss computes it, with p_s = softmax(student/T)
// and p_t = softmax(teacher/T):
//
//	β = 0:      jsd = KL(p_t ‖ p_s)                              (forward KL)
//	β = 1:      jsd = KL(p_s ‖ p_t)                              (reverse KL)
//	otherwise:  log m = logsumexp(log p_s + log(1−β), log p_t + log β)   (m = (1−β)·p_s + β·p_t)
//	            jsd = β·KL(p_t ‖ m) + (1−β)·KL(p_s ‖ m)
//	loss = mean over counted tokens of jsd
//
// As in TRL there is no T² factor, and β = 0 and β = 1 are special cases (the
// mixture formula tends to 0, not to a KL, as β → 0 or 1). β = 0.5 is the
// symmetric JSD, bounded by ln 2. TRL's "batchmean" with labels is the same
// per-token mean over positions whose label is not -100 (TRL divides by 0
// when none counts; this returns 0). beta must be in [0, 1]. Conventions
// as ForwardKL.
func GeneralizedJSD(student, teacher, mask *Node, beta, t float64) *Node {
	if !(beta >= 0 && beta <= 1) {
		panic(fmt.Errorf("distill.GeneralizedJSD: beta must be in [0, 1], got %g", beta))
	}
	ls, lt := logProbPair("GeneralizedJSD", student, teacher, mask, t)
	var jsd *Node
	switch beta {
	case 0:
		jsd = kl(lt, ls)
	case 1:
		jsd = kl(ls, lt)
	default:
		lm := LogAddExp(AddScalar(ls, math.Log(1-beta)), AddScalar(lt, math.Log(beta)))
		jsd = Add(MulScalar(kl(lt, lm), beta), MulScalar(kl(ls, lm), 1-beta))
	}
	return tokenMean(jsd, mask)
}

// SkewForwardKL is DistiLLM's skew KL (Ko et al., "DistiLLM: Towards
// Streamlined Distillation for Large Language Models", ICML 2024,
// arXiv:2402.03898), the forward KL from the teacher to a mixture that
// leans towards the teacher by α:
//
//	SKL_α = KL(p_t ‖ α·p_t + (1−α)·p_s),   p_t = softmax(teacher/T), p_s = softmax(student/T)
//	loss = mean over counted tokens of SKL_α
//
// α = 0 is the plain forward KL(p_t ‖ p_s) (ForwardKL/T²). DistiLLM's
// skewed_forward_kl (distillm/losses.py, parameter lam = α, 0.1 by default)
// computes the cross-entropy −Σ p_t·log(mixture), which is SKL_α minus the
// teacher's entropy: a constant, so the gradients are the same; this
// returns the divergence itself, 0 for identical distributions. DistiLLM
// applies no temperature; here T divides both logits and, as in
// GeneralizedJSD, there is no T² factor. alpha must be in [0, 1].
// Conventions as ForwardKL.
func SkewForwardKL(student, teacher, mask *Node, alpha, t float64) *Node {
	checkAlpha("SkewForwardKL", alpha)
	ls, lt := logProbPair("SkewForwardKL", student, teacher, mask, t)
	return tokenMean(kl(lt, logMix(lt, ls, alpha)), mask)
}

// SkewReverseKL is DistiLLM's skew reverse KL (Ko et al. 2024, see
// SkewForwardKL), the reverse KL from the student to a mixture that leans
// towards the student by α:
//
//	SRKL_α = KL(p_s ‖ α·p_s + (1−α)·p_t)
//	loss = mean over counted tokens of SRKL_α
//
// exactly DistiLLM's skewed_reverse_kl (lam = α: its mixture is
// (1−lam)·p_t + lam·p_s). α = 0 is the plain reverse KL(p_s ‖ p_t)
// (ReverseKL/T²). T divides both logits, no T² factor; alpha must be in
// [0, 1]. Conventions as ForwardKL.
func SkewReverseKL(student, teacher, mask *Node, alpha, t float64) *Node {
	checkAlpha("SkewReverseKL", alpha)
	ls, lt := logProbPair("SkewReverseKL", student, teacher, mask, t)
	return tokenMean(kl(ls, logMix(ls, lt, alpha)), mask)
}

// TVD is the total variation distance between the teacher's and the
// student's next-token distributions at temperature T (Wen et al., "f-Divergence
// Minimization for Sequence-Level Knowledge Distillation", ACL 2023,
// arXiv:2307.15190):
//
//	TVD = ½·Σ_v |p_t(v) − p_s(v)| ∈ [0, 1],   p_t = softmax(teacher/T), p_s = softmax(student/T)
//	loss = mean over counted tokens of TVD
//
// as DistiLLM's tv_distance (which has no temperature) and DistillKit's
// dense_tvd. There is no T² factor, so the loss stays in [0, 1] (DistillKit's
// TVDLoss multiplies by T²). Conventions as ForwardKL.
func TVD(student, teacher, mask *Node, t float64) *Node {
	ls, lt := logProbPair("TVD", student, teacher, mask, t)
	return tokenMean(MulScalar(ReduceSum(Abs(Sub(Exp(lt), Exp(ls))), -1), 0.5), mask)
}

// Sparse is a teacher distribution kept as its top-k tokens, as an offline
// cache stores it (DistillKit's sparse signal with log_values = true):
// IDs [B, T, K] are token ids (any integer dtype, used as int32) and
// LogProbs [B, T, K] the teacher's log-probabilities of those tokens at
// temperature 1, normalised over the whole vocabulary (so that they sum to
// at most 1; their order along K does not matter). LogProbs must be finite
// for the KL losses; HingeRank and LogisticRank also accept −Inf padding.
type Sparse struct {
	IDs, LogProbs *Node
}

// TailMode says how a sparse loss treats the teacher's probability mass
// outside its top-k tokens (the "tail"). The modes are DistillKit's
// MissingProbabilityHandling (arcee-ai/DistillKit,
// distillkit/lossfuncs/common.py and kl.py).
type TailMode int

const (
	// TailZero ("zero") takes the teacher's probability outside the top-k
	// as 0: the teacher's k log-probs are renormalised over the k tokens
	// at temperature T, q = softmax(LogProbs/T) over K, and the tail adds
	// nothing to the KL. The student keeps its full-vocabulary
	// probabilities (it is not renormalised). This is DistillKit's
	// default (KLDLoss and the default run configuration).
	TailZero TailMode = iota
	// TailSymmetricUniform ("symmetric_uniform") assumes the tail mass is
	// spread uniformly over the other V−k tokens in both the teacher and
	// the student. Their per-token ratio is then the ratio of the two
	// tail masses, so the tail acts as one (k+1)-th category: with the
	// teacher's tail m = 1 − Σ_k p_k (temperature 1),
	//
	//	q_i = p_i^(1/T) / Z,   q_tail = m^(1/T) / Z,   Z = Σ_k p_k^(1/T) + m^(1/T)
	//	KL = Σ_k q_i·(log q_i − log p_s(i)) + q_tail·(log q_tail − log m_s),   m_s = 1 − Σ_k p_s(i)
	//
	// At T = 1 the cached log-probs are used as they are. As in DistillKit
	// the tempered tail is m^(1/T), the tail bucket tempered as if it
	// were one token (spreading it over V−k tokens first would give
	// (V−k)^(1−1/T)·m^(1/T)), and the student's tail m_s is kept at least
	// 1 − e^(−10⁻⁶) ≈ 10⁻⁶ (DistillKit clamps log Σ_k p_s(i) at −10⁻⁶).
	// Unlike DistillKit, a teacher tail m of at most 1e-5 (the rounding of
	// a cache that keeps every token) counts as none, in the normaliser Z
	// as well as in the KL, so that k = V gives ForwardKL at every T.
	TailSymmetricUniform
)

// String is DistillKit's name of the mode: "zero" or "symmetric_uniform".
func (m TailMode) String() string {
	switch m {
	case TailZero:
		return "zero"
	case TailSymmetricUniform:
		return "symmetric_uniform"
	}
	return fmt.Sprintf("TailMode(%d)", int(m))
}

// ParseTailMode reads a TailMode from DistillKit's names ("zero",
// "symmetric_uniform"); "" is TailZero, the default.
func ParseTailMode(s string) (TailMode, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "", "zero":
		return TailZero, nil
	case "symmetric_uniform":
		return TailSymmetricUniform, nil
	}
	return 0, fmt.Errorf("distill: tail mode %q is not one of zero, symmetric_uniform", s)
}

// SparseForwardKL is ForwardKL (T²·KL(p_t ‖ p_s), Hinton's scaling) against
// a teacher kept as its top-k tokens, as DistillKit's sparse_kl_div and
// KLDLoss compute it (arcee-ai/DistillKit, distillkit/lossfuncs/kl.py):
//
//	log p_s = log_softmax(student/T) over the whole vocabulary, gathered at teacher.IDs
//	q = the teacher over its k tokens at temperature T, per tail (TailZero: softmax(LogProbs/T) over K)
//	loss = T² · mean over counted tokens of [Σ_k q_i·(log q_i − log p_s(i)) + tail term]
//
// The tail term is 0 for TailZero and the (k+1)-th category's KL for
// TailSymmetricUniform (see TailMode). With k = V and the teacher's full
// log-probs both modes equal ForwardKL on the teacher's logits, for any T.
// The teacher is a constant; conventions as ForwardKL.
func SparseForwardKL(student *Node, teacher Sparse, mask *Node, t float64, tail TailMode) *Node {
	checkTemperature("SparseForwardKL", t)
	checkStudent("SparseForwardKL", student, mask)
	ids, lp := teacher.prepare("SparseForwardKL", student)
	ls := logSoftmaxT(student, t)
	sk := gatherLast(ls, ids) // [B, T, K] student log-probs at the teacher's tokens
	a := lp
	if t != 1 {
		a = DivScalar(lp, t)
	}
	var perToken *Node
	switch tail {
	case TailZero:
		perToken = kl(LogSoftmax(a, -1), sk)
	case TailSymmetricUniform:
		// The teacher's tail m = 1 − Σ_k p_k at temperature 1, as log m.
		lse := logSumExp(lp, -1) // log Σ_k p_k  [B, T]
		top := math.Log1p(-tailEps)
		has := LessThan(lse, Scalar(lse.Graph(), dtypes.Float32, top))
		logM := log1mexp(MinScalar(lse, top))
		logMa := MulScalar(logM, 1/t) // log m^(1/T)
		lseA := logSumExp(a, -1)
		z := Where(has, LogAddExp(lseA, logMa), lseA) // log Z
		q := Sub(a, InsertAxes(z, -1))
		logQTail := Sub(logMa, z)
		logMs := log1mexp(MinScalar(logSumExp(sk, -1), -1e-6)) // the student's tail, DistillKit's clamp
		tailKL := Mul(Exp(logQTail), Sub(logQTail, logMs))
		perToken = Add(kl(q, sk), Where(has, tailKL, ZerosLike(tailKL)))
	default:
		panic(fmt.Errorf("distill.SparseForwardKL: unknown tail mode %v", tail))
	}
	return MulScalar(tokenMean(perToken, mask), t*t)
}

// HingeRank is a pairwise hinge ranking loss over the teacher's top-k order,
// after DistillKit's "hinge" loss (distillkit/lossfuncs/hingeloss.py,
// sparse_hinge_loss): for every pair (i, j) of the teacher's k tokens that
// the teacher orders (log p_t(i) > log p_t(j)), the student's logit gap
// s_i − s_j should be at least margin:
//
//	per pair:   max(0, margin − (s_i − s_j))
//	per token:  mean over its ordered pairs (0 if it has none)
//	loss = mean over counted tokens
//
// s are the student's raw logits (no temperature). Differences from
// DistillKit: DistillKit compares the student's probabilities
// softmax(student) rather than logits (so its margins live in [0, 1]; with
// no margin configured it uses the teacher's probability gap p_t(i) − p_t(j))
// and pools all pairs of the batch into one mean; this compares logits, where
// a margin does not depend on the rest of the vocabulary, and averages per
// token then over tokens (the same when every token has the same number of
// pairs). As in DistillKit, an entry whose teacher probability is at most
// 1e-9 (e.g. −Inf padding) takes part in no pair, and tied log-probs make
// no pair. The teacher is a constant; mask as ForwardKL.
func HingeRank(student *Node, teacher Sparse, mask *Node, margin float64) *Node {
	diff, valid := rankPairs("HingeRank", student, teacher, mask)
	loss := MaxScalar(AddScalar(Neg(diff), margin), 0)
	return tokenMean(pairMean(loss, valid), mask)
}

// LogisticRank is a pairwise logistic (RankNet) ranking loss over the
// teacher's top-k order, DistillKit's "logistic_ranking" loss
// (distillkit/lossfuncs/logistic_ranking.py): for every pair (i, j) of the
// teacher's k tokens with log p_t(i) > log p_t(j),
//
//	per pair:   log(1 + exp(−(s_i − s_j))) = softplus(s_j − s_i)   (computed stably)
//	per token:  mean over its ordered pairs (0 if it has none)
//	loss = mean over counted tokens
//
// on the student's raw logits s, as DistillKit. DistillKit pools all pairs
// of the batch into one mean; this averages per token, then over tokens.
// Entries with teacher probability at most 1e-9 take part in no pair. The
// teacher is a constant; mask as ForwardKL.
func LogisticRank(student *Node, teacher Sparse, mask *Node) *Node {
	diff, valid := rankPairs("LogisticRank", student, teacher, mask)
	return tokenMean(pairMean(Softplus(Neg(diff)), valid), mask)
}

// PLD is Plackett-Luce Distillation (Bassam, Zhu and Bian, "PLD: A
// Choice-Theoretic List-Wise Knowledge Distillation", 2025,
// arXiv:2506.12542), a list-wise ranking loss that weighs each ranked
// choice by the teacher's confidence. At each position the teacher-optimal
// permutation π puts the gold token (targets) first, then every other token
// by descending teacher logit (ties by token id), and
//
//	loss_tok = Σ_{k=1..V} w_{π_k} · (−s_{π_k} + log Σ_{j≥k} exp(s_{π_j})),   w = softmax(teacher/T)
//	loss = mean over counted tokens of loss_tok
//
// s are the student's raw logits: as in the paper, the temperature only
// softens the teacher's weights (and there is no T² factor). The first
// term is the cross-entropy on the gold token weighted by the teacher's
// probability of it. targets [B, T] are the next-token ids aligned with
// the logits, i.e. labels shifted left by one (see Targets); positions
// that mask excludes may hold any id.
//
// The permutation is sorted in the graph (a stable SortFunc along V) and
// the suffix log-sum-exps are a reverse cumulative sum, computed in
// float64 (shifted by each row's maximum) so that long tails neither
// underflow nor lose precision: O(V log V) time and a few [B, T, V]
// buffers, usable at LLM vocabularies. SparsePLD is the top-k truncation
// for a cached teacher. The teacher is a constant; mask as ForwardKL.
func PLD(student, teacher, targets, mask *Node, t float64) *Node {
	ls, z := logitsPair("PLD", student, teacher, mask, t)
	g := ls.Graph()
	dims := ls.Shape().Dimensions
	B, T, V := dims[0], dims[1], dims[2]
	y := checkTargets("PLD", targets, B, T)
	ls = LogSoftmax(ls, -1) // shift-invariant: log-probs keep the exponentials ≤ 1
	w := Softmax(DivScalar(z, t), -1)
	iota := Iota(g, shapes.Make(dtypes.Int32, B, T, V), 2)
	isGold := Equal(iota, InsertAxes(y, -1))
	key := Where(isGold, Scalar(g, dtypes.Float32, math.MaxFloat32), z)
	cmp := NewClosure(g, func(g *Graph) []*Node {
		lk := Parameter(g, "lhs_key", shapes.Make(dtypes.Float32))
		rk := Parameter(g, "rhs_key", shapes.Make(dtypes.Float32))
		Parameter(g, "lhs_id", shapes.Make(dtypes.Int32))
		Parameter(g, "rhs_id", shapes.Make(dtypes.Int32))
		Parameter(g, "lhs_w", shapes.Make(dtypes.Float32))
		Parameter(g, "rhs_w", shapes.Make(dtypes.Float32))
		return []*Node{GreaterThan(lk, rk)}
	})
	sorted := SortFunc(cmp, -1, true, key, iota, w)
	perm, wPerm := StopGradient(sorted[1]), StopGradient(sorted[2])
	x := ConvertDType(gatherLast(ls, perm), dtypes.Float64) // log p_s(π_k)  [B, T, V]
	mx := StopGradient(ReduceAndKeep(x, ReduceMax, -1))
	suffix := Add(Log(CumSum(Exp(Sub(x, mx)), -1, &CumSumOptions{Reverse: true})), mx)
	perToken := ReduceSum(Mul(ConvertDType(wPerm, dtypes.Float64), Sub(suffix, x)), -1)
	return tokenMean(ConvertDType(perToken, dtypes.Float32), mask)
}

// SparsePLD is PLD against a teacher kept as its top-k tokens: the ranked
// list is the gold token followed by the teacher's k tokens by descending
// LogProbs (ties by token id, the gold not repeated), and the weights are
// the teacher's top-k renormalised at temperature T, w = softmax(LogProbs/T)
// over K (TailZero's teacher; the gold weighs its renormalised probability
// if it is among the k tokens, else 0):
//
//	loss_tok = w_gold·(−log p_s(gold)) + Σ_{i in top-k, i ≠ gold} w_i·(−s_i + log Σ_{j ∈ R_i} exp(s_j))
//
// where R_i is every token not ranked before i: i, the listed tokens the
// teacher ranks below i, and all the unlisted tokens except the gold
// (their log-sum-exp is log(1 − Σ_{listed ∪ gold} p_s), with
// p_s = softmax(student); a rest of at most 1e-5 counts as empty). This is
// exactly PLD with the teacher's probabilities outside its top-k set to 0,
// whose terms vanish there, so with k = V and the teacher's full log-probs
// it equals PLD. Cost O(K²) per position, independent of V. targets and
// the other conventions as PLD.
func SparsePLD(student *Node, teacher Sparse, targets, mask *Node, t float64) *Node {
	checkTemperature("SparsePLD", t)
	checkStudent("SparsePLD", student, mask)
	ids, lp := teacher.prepare("SparsePLD", student)
	g := student.Graph()
	dims := student.Shape().Dimensions
	B, T, K := dims[0], dims[1], ids.Shape().Dimensions[2]
	y := checkTargets("SparsePLD", targets, B, T)
	ls := logSoftmaxT(student, 1)
	w := Softmax(DivScalar(lp, t), -1)                     // [B, T, K]
	sk := gatherLast(ls, ids)                              // log p_s at the listed tokens
	sy := Squeeze(gatherLast(ls, InsertAxes(y, -1)), -1)   // log p_s(gold)  [B, T]
	isGold := Equal(ids, InsertAxes(y, -1))                // [B, T, K]
	goldListed := ReduceLogicalOr(isGold, -1)              // [B, T]
	wGold := ReduceSum(Where(isGold, w, ZerosLike(w)), -1) // [B, T]
	const none = -1e30                                     // exp(none − x) = 0
	noneK := Scalar(g, dtypes.Float32, none)

	// The rest: tokens neither listed nor gold, as log(1 − Σ_{listed ∪ gold} p_s).
	taken := logSumExp(Concatenate([]*Node{sk, InsertAxes(Where(goldListed, BroadcastToDims(noneK, B, T), sy), -1)}, -1), -1)
	top := math.Log1p(-tailEps)
	hasRest := LessThan(taken, Scalar(g, dtypes.Float32, top))
	rest := log1mexp(MinScalar(taken, top)) // [B, T]

	// in[b, t, i, j]: listed token j is in R_i: j = i, or the teacher ranks
	// j below i and j is not the gold (the gold's own row, weighted 0, keeps
	// itself so that its sum is never empty).
	slot := Iota(g, shapes.Make(dtypes.Int32, B, T, K), 2)
	li, lj := InsertAxes(lp, -1), InsertAxes(lp, -2)
	idi, idj := InsertAxes(ids, -1), InsertAxes(ids, -2)
	below := Or(LessThan(lj, li), And(Equal(lj, li), GreaterThan(idj, idi)))
	in := Or(Equal(InsertAxes(slot, -2), InsertAxes(slot, -1)), And(below, LogicalNot(InsertAxes(isGold, -2))))
	x := Where(in, BroadcastToDims(InsertAxes(sk, -2), B, T, K, K), BroadcastToDims(noneK, B, T, K, K))
	restK := InsertAxes(Where(hasRest, rest, BroadcastToDims(noneK, B, T)), -1) // [B, T, 1]
	mx := StopGradient(Max(ReduceMax(x, -1), restK))                            // [B, T, K]
	sum := Add(ReduceSum(Exp(Sub(x, InsertAxes(mx, -1))), -1), Exp(Sub(restK, mx)))
	suffix := Add(Log(sum), mx) // log Σ_{R_i} p_s
	terms := Mul(Where(isGold, ZerosLike(w), w), Sub(suffix, sk))
	perToken := Add(ReduceSum(terms, -1), Mul(wGold, Neg(sy)))
	return tokenMean(perToken, mask)
}

// Combine mixes a cross-entropy loss with a distillation loss,
//
//	loss = (1−λ)·CE + λ·KD
//
// the interpolation of Hinton et al. 2015 ("a weighted average of two
// different objective functions"); DistillKit's default run is λ = 0.5
// (cross_entropy and kl, weight 0.5 each). λ is normally in [0, 1]. ce and
// kd are scalars; the result is float32.
func Combine(ce, kd *Node, lambda float64) *Node {
	ce, kd = ConvertDType(ce, dtypes.Float32), ConvertDType(kd, dtypes.Float32)
	return Add(MulScalar(ce, 1-lambda), MulScalar(kd, lambda))
}

// kl is KL(p ‖ q) [B, T] for log-probabilities lp, lq [B, T, N]: Σ p·(lp − lq).
func kl(lp, lq *Node) *Node {
	return ReduceSum(Mul(Exp(lp), Sub(lp, lq)), -1)
}

// logMix is log(α·p + (1−α)·q) for log-probabilities lp, lq.
func logMix(lp, lq *Node, alpha float64) *Node {
	switch alpha {
	case 0:
		return lq
	case 1:
		return lp
	}
	return LogAddExp(AddScalar(lp, math.Log(alpha)), AddScalar(lq, math.Log(1-alpha)))
}

// logSumExp is log Σ exp(x) over axis, shifted by the (constant) maximum.
func logSumExp(x *Node, axis int) *Node {
	mx := StopGradient(ReduceAndKeep(x, ReduceMax, axis))
	return Squeeze(Add(Log(ReduceAndKeep(Exp(Sub(x, mx)), ReduceSum, axis)), mx), axis)
}

// log1mexp is log(1 − eˣ) for x < 0, stable at both ends (Mächler 2012).
func log1mexp(x *Node) *Node {
	near := GreaterThan(x, Scalar(x.Graph(), x.DType(), -math.Ln2))
	return Where(near, Log(Neg(expm1(x))), Log1p(Neg(Exp(x))))
}

// expm1 is eˣ − 1, accurate near 0, with its gradient eˣ (GoMLX defines
// none for Expm1): the value of Expm1 plus eˣ − eˣ, whose gradient is eˣ.
func expm1(x *Node) *Node {
	e := Exp(x)
	return Add(StopGradient(Expm1(x)), Sub(e, StopGradient(e)))
}

// logSoftmaxT is log_softmax(x/t) over the last axis, in float32.
func logSoftmaxT(x *Node, t float64) *Node {
	x = ConvertDType(x, dtypes.Float32)
	if t != 1 {
		x = DivScalar(x, t)
	}
	return LogSoftmax(x, -1)
}

// logProbPair checks a loss's inputs and returns the student's and the
// (constant) teacher's log-probabilities at temperature t.
func logProbPair(name string, student, teacher, mask *Node, t float64) (ls, lt *Node) {
	s, z := logitsPair(name, student, teacher, mask, t)
	return logSoftmaxT(s, t), logSoftmaxT(z, t)
}

// logitsPair checks a loss's inputs and returns the student's and the
// (constant) teacher's logits in float32.
func logitsPair(name string, student, teacher, mask *Node, t float64) (s, z *Node) {
	checkTemperature(name, t)
	checkStudent(name, student, mask)
	if !slicesEqual(teacher.Shape().Dimensions, student.Shape().Dimensions) {
		panic(fmt.Errorf("distill.%s: teacher logits %s do not match the student's %s", name, teacher.Shape(), student.Shape()))
	}
	return ConvertDType(student, dtypes.Float32), StopGradient(ConvertDType(teacher, dtypes.Float32))
}

func slicesEqual(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func checkTemperature(name string, t float64) {
	if !(t > 0) || math.IsInf(t, 1) {
		panic(fmt.Errorf("distill.%s: temperature must be positive, got %g", name, t))
	}
}

func checkAlpha(name string, alpha float64) {
	if !(alpha >= 0 && alpha <= 1) {
		panic(fmt.Errorf("distill.%s: alpha must be in [0, 1], got %g", name, alpha))
	}
}

func checkStudent(name string, student, mask *Node) {
	if student.Rank() != 3 {
		panic(fmt.Errorf("distill.%s: logits must be [batch, tokens, vocab], got shape %s", name, student.Shape()))
	}
	d := student.Shape().Dimensions
	if mask.Rank() != 2 || mask.Shape().Dimensions[0] != d[0] || mask.Shape().Dimensions[1] != d[1] {
		panic(fmt.Errorf("distill.%s: mask must be [%d, %d], got shape %s", name, d[0], d[1], mask.Shape()))
	}
}

func checkTargets(name string, targets *Node, B, T int) *Node {
	if targets.Rank() != 2 || targets.Shape().Dimensions[0] != B || targets.Shape().Dimensions[1] != T {
		panic(fmt.Errorf("distill.%s: targets must be [%d, %d], got shape %s", name, B, T, targets.Shape()))
	}
	return ConvertDType(targets, dtypes.Int32)
}

// prepare checks a sparse teacher against the student's logits and returns
// its ids (int32) and its constant log-probs (float32).
func (sp Sparse) prepare(name string, student *Node) (ids, lp *Node) {
	if sp.IDs == nil || sp.LogProbs == nil {
		panic(fmt.Errorf("distill.%s: the sparse teacher needs both IDs and LogProbs", name))
	}
	d := student.Shape().Dimensions
	is, ls := sp.IDs.Shape(), sp.LogProbs.Shape()
	if is.Rank() != 3 || is.Dimensions[0] != d[0] || is.Dimensions[1] != d[1] || !slicesEqual(is.Dimensions, ls.Dimensions) {
		panic(fmt.Errorf("distill.%s: sparse teacher IDs %s and LogProbs %s must both be [%d, %d, K]", name, is, ls, d[0], d[1]))
	}
	if k := is.Dimensions[2]; k < 1 || k > d[2] {
		panic(fmt.Errorf("distill.%s: sparse teacher has K = %d tokens, want 1..%d", name, k, d[2]))
	}
	return StopGradient(ConvertDType(sp.IDs, dtypes.Int32)), StopGradient(ConvertDType(sp.LogProbs, dtypes.Float32))
}

// rankPairs returns the student's logit gaps s_i − s_j [B, T, K, K] over the
// teacher's listed tokens and which pairs the teacher orders (i above j,
// both supported).
func rankPairs(name string, student *Node, teacher Sparse, mask *Node) (diff, valid *Node) {
	checkStudent(name, student, mask)
	ids, lp := teacher.prepare(name, student)
	sk := gatherLast(ConvertDType(student, dtypes.Float32), ids)
	diff = Sub(InsertAxes(sk, -1), InsertAxes(sk, -2))
	sup := GreaterThan(lp, Scalar(lp.Graph(), dtypes.Float32, rankFloor))
	valid = And(GreaterThan(InsertAxes(lp, -1), InsertAxes(lp, -2)), And(InsertAxes(sup, -1), InsertAxes(sup, -2)))
	return diff, valid
}

// pairMean is the mean of loss [B, T, K, K] over the valid pairs of each
// position [B, T], 0 where there is none.
func pairMean(loss, valid *Node) *Node {
	loss = Where(valid, loss, ZerosLike(loss))
	n := ReduceSum(ConvertDType(valid, dtypes.Float32), -1, -2)
	return Div(ReduceSum(loss, -1, -2), Max(n, OnesLike(n)))
}

// gatherLast gathers x [B, T, V] along its last axis at ids [B, T, K]:
// out[b, t, k] = x[b, t, ids[b, t, k]].
func gatherLast(x, ids *Node) *Node {
	g := x.Graph()
	d := x.Shape().Dimensions
	B, T, V := d[0], d[1], d[2]
	idt := dtypes.Int32
	if int64(B)*int64(T)*int64(V) > math.MaxInt32 {
		idt = dtypes.Int64
	}
	rows := MulScalar(IotaFull(g, shapes.Make(idt, B, T)), V) // (b·T + t)·V
	flat := Add(InsertAxes(rows, -1), ConvertDType(ids, idt))
	return Gather(Reshape(x, B*T*V), InsertAxes(flat, -1))
}

// tokenMean is the mean of x [B, T] over the positions mask [B, T] counts,
// weighted by the mask; 0 when none counts. Values at positions the mask
// excludes are ignored, even if they are not finite.
func tokenMean(x, mask *Node) *Node {
	w := ConvertDType(mask, dtypes.Float32)
	keep := NotEqual(w, ZerosLike(w))
	x = Where(keep, x, ZerosLike(x))
	n := ReduceAllSum(w)
	n = Where(GreaterThan(n, ZerosLike(n)), n, OnesLike(n))
	return Div(ReduceAllSum(Mul(x, w)), n)
}
