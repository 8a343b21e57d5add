// Package distill holds lethe's knowledge-distillation losses: graph
// functions (GoMLX) that compare a student's next-token logits with a
// teacher's, either the teacher's full logits or its top-k tokens as an
// offline cache keeps them.
//
// # Conventions
//
// Logits are [B, T, V] nodes of any float dtype; every loss converts them
// to float32 first (the pure-Go backend has no bf16/f16 softmax). The
// teacher is always a constant: no gradient flows into it. mask is a
// [B, T] node of any numeric dtype whose values weigh the positions (1: the
// position counts, 0: it is ignored); Mask builds it from labels with the
// causal shift of lethe's models (the logits at position i predict
// labels[i+1]; IgnoreIndex = -100 marks prompt and padding tokens), and
// Targets gives the matching next-token ids. Every loss returns a float32
// scalar, the per-token mean over the counted positions,
//
//	loss = Σ_{b,t} mask[b,t]·ℓ[b,t] / Σ_{b,t} mask[b,t]   (0 when no position counts)
//
// where ℓ is the loss of one position; values at ignored positions never
// reach the result, even when they are not finite. A temperature T > 0
// divides the student's and the teacher's logits before their softmax
// (PLD and SparsePLD soften only the teacher's weights, as the PLD paper).
// ForwardKL, ReverseKL, SymmetricKL and SparseForwardKL are scaled by T²
// (Hinton et al. 2015); GeneralizedJSD, the skew KLs and TVD are not, as in
// TRL, DistiLLM and DistiLLM's tv_distance respectively.
//
// # Losses
//
//	ForwardKL        T²·KL(p_t ‖ p_s)                          Hinton et al. 2015; torchtune ForwardKLLoss
//	ReverseKL        T²·KL(p_s ‖ p_t)                          MiniLLM (Gu et al. 2024); DistiLLM reverse_kl
//	SymmetricKL      T²·[KL(p_t ‖ p_s) + KL(p_s ‖ p_t)]        Jeffreys divergence
//	GeneralizedJSD   β·KL(p_t ‖ m) + (1−β)·KL(p_s ‖ m)         GKD (Agarwal et al. 2024), TRL's generalized_jsd_loss
//	SkewForwardKL    KL(p_t ‖ α·p_t + (1−α)·p_s)               DistiLLM (Ko et al. 2024)
//	SkewReverseKL    KL(p_s ‖ α·p_s + (1−α)·p_t)               DistiLLM
//	TVD              ½·Σ|p_t − p_s|                            total variation distance
//	SparseForwardKL  T²·KL against a top-k teacher             DistillKit's sparse KL, TailMode zero / symmetric_uniform
//	HingeRank        pairwise hinge on the teacher's top-k     after DistillKit's hinge loss
//	LogisticRank     pairwise softplus on the teacher's top-k  DistillKit's logistic_ranking
//	PLD              Plackett-Luce list-wise loss              Bassam et al. 2025 (arXiv:2506.12542)
//	SparsePLD        PLD over the gold token and the top-k
//	Combine          (1−λ)·CE + λ·KD
//
// # Sparse teachers
//
// A Sparse teacher is what an offline cache stores per position: the ids of
// the teacher's k most probable tokens and their log-probabilities at
// temperature 1 over the whole vocabulary. SparseForwardKL handles the mass
// outside those k tokens as DistillKit does (TailMode; TailZero, DistillKit's
// default, renormalises the teacher over its k tokens). With k = V (every
// token cached, in any order) it equals ForwardKL on the teacher's logits
// for every tail mode and temperature, and SparsePLD equals PLD.
//
// # Cost
//
// The dense losses are O(V) per position. PLD sorts the vocabulary per
// position in the graph (a stable SortFunc) and takes its suffix
// log-sum-exps with a reverse cumulative sum in float64: O(V log V) time
// and a few [B, T, V] buffers. SparseForwardKL is O(V) for the student's
// log-softmax plus O(K); HingeRank, LogisticRank and SparsePLD build
// [B, T, K, K] pair tensors, fine for the usual K ≤ a few hundred.
package distill
