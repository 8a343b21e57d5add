// Package metrics holds the host-side arithmetic of LLM unlearning
// evaluations, as open-unlearning (github.com/locuslab/open-unlearning)
// and the TOFU and MUSE benchmarks define them.
//
// The functions take plain Go slices: per-token log-probabilities,
// per-example average negative log-likelihoods, greedy-decoding matches,
// generated and reference strings. Computing those with a model is
// another package's job; this one only turns them into the numbers the
// benchmarks report, so that a number computed here can be compared with
// one computed by open-unlearning on the same inputs.
//
// The families of metrics are:
//
//   - TOFU's likelihood metrics: [Probability], [NormalizedProbability],
//     [TruthRatio] with its two aggregators [TruthRatioCloserTo1] and
//     [TruthRatioTrueBetter], [ModelUtility] (harmonic mean) and
//     [ForgetQuality], the p-value of [KS2Samp], a port of
//     scipy.stats.ks_2samp.
//   - Text similarity: [RougeL] and [Rouge1], equal to Google's
//     rouge_score with use_stemmer=True, whose tokenizer uses NLTK's
//     Porter stemmer ([PorterStem]).
//   - Memorisation: [ExactMemorization] and [ExtractionStrength].
//   - Membership inference: per-example attack scores ([LossScore],
//     [ZlibScore], [MinK], [MinKPlusPlus]), their [MIAAUC] over a forget
//     and a holdout set, and MUSE's [PrivLeak].
//   - Uncertainty: a seeded percentile [Bootstrap].
//   - Predictive multiplicity: [Ambiguity], [Discrepancy],
//     [Disagreement] and [RashomonCapacity].
//
// Where open-unlearning adds a small constant to avoid a division by zero
// (1e-10 in the truth ratio, in normalised probabilities and in privleak),
// this package adds the same constant, so that results agree to the last
// digits and not only in the limit.
package metrics
