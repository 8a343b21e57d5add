// Package topk caches a teacher model's top-k next-token log-probabilities
// for offline knowledge distillation: `lethe distill cache-teacher` runs the
// teacher once over the training data (Write), and training reads the
// targets back (Open, Cache.ForBatch, Cache.Batch) instead of running the
// teacher at every step. The targets feed distill.Sparse: ids and
// log-probabilities of shape [B, T, K].
//
// # File format
//
// A cache is one Parquet file (zstd-compressed) with one row per example —
// per segment of a packed batch row — in the order Write met them; rows
// hold no padding. Columns:
//
//	input_ids      list<int32>   the example's T tokens (all real tokens: no attention_mask is stored)
//	labels         list<int32>   its T labels (data.IgnoreIndex where there is no loss), informational
//	topk_ids       list<int32>   T·K token ids, row-major [T, K]
//	topk_logprobs  list<float32> T·K log-probabilities, row-major [T, K]
//
// Position t of an example holds the teacher's distribution over the token
// that follows tokens 0..t (the alignment of models.Outputs.Logits, before
// the causal shift): its K most likely tokens in descending order of
// log-probability, ties broken by the smaller id. The values are the
// full-vocabulary log-softmax at temperature 1 — not renormalised over the
// K tokens, so exp sums to at most 1 — in float32, clamped below at
// PadLogProb so that no -Inf is ever stored.
//
// The footer's key-value metadata describes the file (see the Meta*
// constants): the format version (FormatVersion), k, the vocabulary size,
// the temperature (always 1), the teacher (checkpoint folder and
// model_type), and the numbers of examples and tokens. Open checks them,
// and every column's length, and reports any mismatch naming the file, the
// row (or row group) and the column.
//
// # Batches
//
// Training batches come shuffled, bucketed to longer lengths and possibly
// packed, so a batch row is matched to cached examples in one of two ways:
//
//   - by content: Cache.ForBatch finds every example of a data.Batch (each
//     segment of each row) among the cached examples by its tokens, which
//     also checks that the data did not change since the cache was written.
//     Identical token sequences share identical teacher outputs, so
//     duplicates are harmless.
//   - by row index: Cache.Batch lays out given cached rows (one example per
//     batch row), and Cache.Verify checks a batch against them.
//
// Positions that hold no cached example (padding) get id 0 and log-prob
// PadLogProb: finite, so exp gives 0 and 0·(PadLogProb − x) stays 0 in
// float32 and bfloat16 arithmetic where -Inf would give NaN. Losses should
// still mask them by the labels.
//
// # Where top-k is computed
//
// GoMLX has graph.TopK (a stable sort with a comparator closure). On XLA
// it runs on the accelerator, so only the [B, T, K] ids and values leave
// the device. The pure-Go backend, however, calls the comparator closure
// through the executor for every comparison, O(V log V) closure calls per
// position — thousands of times slower than a plain Go selection — and its
// "device" memory is host memory anyway, so there the graph computes the
// log-softmax [B, T, V] and the top k are selected on the host with a
// bounded heap (O(V log k) per position; a full sort when k is close to V).
// Both give the same ids, values and tie-breaking.
package topk
