// Package uncertainty turns the outputs of several stochastic runs of a
// language model into uncertainty scores, and uncertainty scores into
// abstention decisions. It is host-side float64 arithmetic on plain Go
// slices: running the model (dropout passes, sampled answers, hidden
// states) is another package's job (decoding/mc runs the passes in the
// graph); this one only does the bookkeeping, so that every number can be
// checked by hand.
//
// The families are:
//
//   - MC-dropout token uncertainty (Gal & Ghahramani 2016): [Token] and
//     [TokenFromProbs] split the predictive entropy of K passes into its
//     aleatoric part (expected entropy) and its epistemic part (mutual
//     information).
//   - Sequence scores: [Sequence] (mean and max over tokens),
//     [LengthNormalizedLogProb], and the Monte Carlo sequence entropy of
//     Malinin & Gales 2021, [SequenceEntropy] and
//     [LengthNormalizedSequenceEntropy].
//   - Agreement among K sampled answers: [Agree] (exact match after
//     [Normalize]; semantic clustering is out of scope).
//   - Embedding consistency: the EigenScore of INSIDE (Chen et al. 2024),
//     [EigenScore], and the Efficient EigenScore of SeND (Mohammadzadeh et
//     al. 2024), [EfficientEigenScore], a Chebyshev / density-of-states
//     approximation of the same log-determinant.
//   - Abstention and calibration (the survey of Wen et al. 2024, "Know
//     Your Limits"): [Abstain], the risk–coverage curve [RiskCoverage],
//     [AURC], [AccuracyAtCoverage], [SelectiveAUROC], thresholds chosen on
//     a calibration set ([ThresholdForAccuracy], [ThresholdForCoverage]),
//     and [ECE].
//   - Dropout Rashomon sets (Hsu et al. 2024): [Rashomon] selects the
//     masks within ε of the best loss and measures the predictive
//     multiplicity of their predictions with package unlearn/metrics;
//     [RashomonCapacities] gives each example's Rashomon Capacity over
//     the members' output distributions.
//
// Conventions: entropies are in nats; an uncertainty score is "higher =
// less sure" (an entropy, a mutual information, an EigenScore, a negative
// log-probability), and a system abstains when the score is above its
// threshold. Errors are returned for malformed input (empty, ragged, NaN);
// NaN is returned, with the error, in place of a number.
package uncertainty
