package decoding

import (
	"errors"
	"fmt"
	"math"
)

// DoLa's defaults in transformers.
const (
	// DoLaRelativeTop is the adaptive plausibility constraint's α
	// (transformers' _relative_top_filter relative_top): only tokens whose
	// final-layer probability is at least α times the largest one are scored.
	DoLaRelativeTop = 0.1
	// DoLaRepetitionPenalty is the repetition_penalty transformers recommends
	// with DoLa: GenerationConfig.validate warns when dola_layers is set and
	// repetition_penalty is unset or below 1.2 ("which could induce unwanted
	// repetition"). transformers applies its logits processors, the
	// repetition penalty among them, to DoLa's contrastive scores, not to the
	// final layer's logits, so RepetitionPenalty{DoLaRepetitionPenalty} runs
	// on the row DoLa returns.
	DoLaRepetitionPenalty = 1.2
)

// DoLa is one step of DoLa (Chuang et al. 2024, "DoLa: Decoding by
// Contrasting Layers Improves Factuality in Large Language Models") for one
// row, as transformers' _dola_select_contrast computes it. final is the
// model's next-token logits; premature[j] is the LM head applied to the
// hidden state of candidate layer j at the same position (see DoLaLayers).
// It picks the premature layer whose distribution is furthest from the
// final one,
//
//	chosen = argmax_j DoLaDivergence(final, premature[j])   (first among ties)
//
// and returns DoLaContrast(final, premature[chosen], alpha):
//
//	scores[i] = log_softmax(final)[i] − log_softmax(premature[chosen])[i]
//	            if p_final[i] >= alpha·max p_final, else -Inf.
//
// With one candidate layer transformers skips the divergence; the result is
// the same. alpha is DoLaRelativeTop in transformers (it is not exposed
// there). Greedy decoding takes the Argmax of scores, sampling samples from
// their softmax, after the logits processors (see DoLaRepetitionPenalty).
//
// transformers selects one layer for the whole batch, the argmax of the
// divergence averaged over the batch's rows (js_divs.mean(-1)), where DoLa
// selects per row; to reproduce a batch of more than one row, sum
// DoLaDivergence over the rows for each layer, take the argmax, and call
// DoLaContrast on each row. Rows must have equal lengths, hold no NaN or +Inf,
// and not be -Inf only.
func DoLa(final []float32, premature [][]float32, alpha float64) (scores []float32, chosen int, err error) {
	if len(premature) == 0 {
		return nil, -1, errors.New("decoding: DoLa needs at least one premature layer")
	}
	if len(premature) > 1 {
		lf, err := logSoftmax64(nil, final)
		if err != nil {
			return nil, -1, fmt.Errorf("decoding: DoLa final layer: %w", err)
		}
		lp := make([]float64, len(final))
		best := math.Inf(-1)
		for j, row := range premature {
			if len(row) != len(final) {
				return nil, -1, fmt.Errorf("decoding: DoLa premature layer %d has %d logits, the final layer %d", j, len(row), len(final))
			}
			if lp, err = logSoftmax64(lp, row); err != nil {
				return nil, -1, fmt.Errorf("decoding: DoLa premature layer %d: %w", j, err)
			}
			// Strictly greater: the first layer wins ties, as torch.argmax.
			if d := jsDivergence(lf, lp); d > best || j == 0 {
				best, chosen = d, j
			}
		}
	}
	scores, err = DoLaContrast(nil, final, premature[chosen], alpha)
	if err != nil {
		return nil, -1, err
	}
	return scores, chosen, nil
}

// DoLaDivergence is the divergence by which DoLa ranks premature layers, as
// transformers' _dola_select_contrast computes it for one row:
//
//	M  = (P_final + P_premature) / 2
//	JS = ½·(mean_v M·(log M − log P_final) + mean_v M·(log M − log P_premature))
//
// mean_v being the mean over the V entries of the row (F.kl_div(...,
// reduction="none").mean(-1)), with 0·log 0 = 0. Note that each term is
// KL(M ‖ P), F.kl_div(log P, M), where the textbook Jensen-Shannon divergence
// has KL(P ‖ M); the mean over V divides by the vocabulary size too. Neither
// changes which layer is chosen much, but the values are transformers', not
// the textbook JSD. A token with probability 0 under one distribution but
// not the other (a -Inf logit) makes the divergence +Inf. It is computed in
// float64.
func DoLaDivergence(final, premature []float32) (float64, error) {
	if len(final) != len(premature) {
		return 0, fmt.Errorf("decoding: DoLa rows differ in length: final %d, premature %d", len(final), len(premature))
	}
	lf, err := logSoftmax64(nil, final)
	if err != nil {
		return 0, fmt.Errorf("decoding: DoLa final layer: %w", err)
	}
	lp, err := logSoftmax64(nil, premature)
	if err != nil {
		return 0, fmt.Errorf("decoding: DoLa premature layer: %w", err)
	}
	return jsDivergence(lf, lp), nil
}

// DoLaContrast writes into dst (grown as needed) and returns transformers'
// _relative_top_filter followed by final − base on one row: with lf and lp
// the log-softmax of final and premature,
//
//	dst[i] = lf[i] − lp[i]   if lf[i] >= max(lf) + ln alpha
//	dst[i] = -Inf            otherwise,
//
// the top token always staying (min_tokens_to_keep = 1). The cut-off is
// tested on the logits in float64, like Contrastive's (transformers compares
// float32 log-softmax values); the difference is computed in float64 and
// rounded. dst may be final itself.
func DoLaContrast(dst, final, premature []float32, alpha float64) ([]float32, error) {
	if len(final) != len(premature) {
		return nil, fmt.Errorf("decoding: DoLa rows differ in length: final %d, premature %d", len(final), len(premature))
	}
	rf, rp := scanRow(final, nil), scanRow(premature, nil)
	if err := rf.err(final); err != nil {
		return nil, fmt.Errorf("decoding: DoLa final layer: %w", err)
	}
	if err := rp.err(premature); err != nil {
		return nil, fmt.Errorf("decoding: DoLa premature layer: %w", err)
	}
	if cap(dst) < len(final) {
		dst = make([]float32, len(final))
	}
	dst = dst[:len(final)]
	cut := plausibilityCutoff(rf.m, alpha)
	lsf, lsp := logSumExp(final, rf.m), logSumExp(premature, rp.m)
	for i, x := range final {
		if x < cut || x == negInf {
			dst[i] = negInf
			continue
		}
		// A kept token the premature layer rules out scores +Inf, as
		// transformers' -Inf subtracted from a finite value does.
		dst[i] = float32((float64(x) - lsf) - (float64(premature[i]) - lsp))
	}
	return dst, nil
}

// DoLaLayers returns the candidate premature layers transformers'
// _dola_decoding uses for dola_layers = "low" or "high" in a model with
// numLayers decoder layers. Layer i is hidden_states[i] of the model's
// output: 0 is the embedding output, i the output of decoder layer i, and
// numLayers the final layer, which is never a candidate. The LM head is
// applied to the candidate's hidden state as it is, without the final norm.
//
// With tied word embeddings the embedding layer would be an identity through
// the tied head, so candidates start at layer 2 (at 1 for a 2-layer model, 0
// for a 1-layer model); otherwise at 0. Then, for numLayers N <= 40, "low"
// is range(start, N/2, 2) and "high" range(N/2, N, 2); for N > 40, "low" is
// range(start, 20, 2) and "high" range(N-20, N, 2). "low" is [start] when
// start = N/2. Explicit layer lists are transformers' third option: it keeps
// those below N. The DoLa README on the Hub (transformers-community/dola,
// whose custom_generate/generate.py carries transformers' DoLa since it left
// the core library in 4.53, and was read for this port) suggests "high" for
// short-answer tasks (TruthfulQA) and "low" for long-answer reasoning.
func DoLaLayers(numLayers int, tiedEmbeddings bool, set string) ([]int, error) {
	if numLayers <= 0 {
		return nil, fmt.Errorf("decoding: DoLa needs a model with layers, got %d", numLayers)
	}
	start := 0
	if tiedEmbeddings {
		switch {
		case numLayers > 2:
			start = 2
		case numLayers == 2:
			start = 1
		}
	}
	half := numLayers / 2
	var lo, hi int
	switch set {
	case "low":
		if start == half {
			return []int{start}, nil
		}
		lo, hi = start, half
		if numLayers > 40 {
			hi = 20
		}
	case "high":
		lo, hi = half, numLayers
		if numLayers > 40 {
			lo = numLayers - 20
		}
	default:
		return nil, fmt.Errorf(`decoding: DoLa layers must be "low" or "high", got %q`, set)
	}
	var layers []int
	for l := lo; l < hi; l += 2 {
		layers = append(layers, l)
	}
	if len(layers) == 0 {
		return nil, fmt.Errorf("decoding: DoLa %q layers of a %d-layer model are empty", set, numLayers)
	}
	return layers, nil
}

// logSoftmax64 writes the log-softmax of row into dst (grown as needed) in
// float64: -Inf entries stay -Inf. A row with NaN or +Inf, or with no finite
// value, is an error.
func logSoftmax64(dst []float64, row []float32) ([]float64, error) {
	r := scanRow(row, nil)
	if err := r.err(row); err != nil {
		return nil, err
	}
	if cap(dst) < len(row) {
		dst = make([]float64, len(row))
	}
	dst = dst[:len(row)]
	lse := logSumExp(row, r.m)
	for i, x := range row {
		dst[i] = float64(x) - lse
	}
	return dst, nil
}

// jsDivergence is DoLaDivergence on two log-softmax rows of equal length.
func jsDivergence(lf, lp []float64) float64 {
	var kl1, kl2 float64
	for i := range lf {
		m := 0.5 * (math.Exp(lf[i]) + math.Exp(lp[i]))
		if m == 0 {
			continue // 0·log 0 = 0, as torch's xlogy
		}
		lm := math.Log(m)
		kl1 += m * (lm - lf[i])
		kl2 += m * (lm - lp[i])
	}
	n := float64(len(lf))
	return 0.5 * (kl1/n + kl2/n)
}
