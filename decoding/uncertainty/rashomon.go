package uncertainty

import (
	"errors"
	"fmt"
	"math"

	"github.com/lethe-ml/lethe/unlearn/metrics"
)

// RashomonSet is an empirical Rashomon set of dropout masks (Hsu et al.
// 2024, "Dropout-Based Rashomon Set Exploration for Efficient Predictive
// Multiplicity Estimation"; Semenova, Rudin & Parr 2022 for the set): the
// masks m whose dataset loss is within ε of the best one,
//
//	R(ε) = {m : L(m) ≤ min_j L(j) + ε},
//
// the spread of their losses, and the predictive multiplicity of their
// predictions.
type RashomonSet struct {
	// Members are the indices of the masks in R(ε), in input order; Best
	// is the index of the lowest loss (the first, among equal losses).
	Members []int
	Best    int
	// MinLoss, MaxLoss and StdLoss describe the members' losses; StdLoss
	// is the population standard deviation (divisor |R|).
	MinLoss, MaxLoss, StdLoss float64
	// Ambiguity, Discrepancy (Marx, Calmon & Ustun 2020) and
	// Disagreement (Black et al. 2022) of the members' predictions, from
	// package unlearn/metrics: Ambiguity and Discrepancy against the
	// reference predictions (the best member's when none are given),
	// Disagreement among the members alone. NaN when no predictions are
	// given.
	Ambiguity, Discrepancy, Disagreement float64
}

// Rashomon selects the empirical Rashomon set of masks from their dataset
// losses (losses[m], e.g. mean token NLL of mask m) and tolerance
// eps ≥ 0, and measures the predictive multiplicity of the members'
// predictions preds[m][i] (a class, a token id, or 0/1 for a wrong/right
// answer to example i) with [metrics.Ambiguity], [metrics.Discrepancy]
// and [metrics.Disagreement].
//
// ref, if not nil, holds the reference model's predictions (the model
// without dropout, say), against which Ambiguity and Discrepancy are
// measured over all members; otherwise the best member is the reference
// and the other members are the alternatives (a set of one member then
// has Ambiguity and Discrepancy 0). preds may be nil (with ref nil too)
// to get the set and its losses only; otherwise it must hold one row per
// mask, all of the same length, as ref.
func Rashomon(losses []float64, eps float64, preds [][]int, ref []int) (RashomonSet, error) {
	nan := math.NaN()
	out := RashomonSet{Best: -1, MinLoss: nan, MaxLoss: nan, StdLoss: nan, Ambiguity: nan, Discrepancy: nan, Disagreement: nan}
	if len(losses) == 0 {
		return out, errors.New("uncertainty: Rashomon: no masks")
	}
	if !(eps >= 0) {
		return out, fmt.Errorf("uncertainty: Rashomon: tolerance %v", eps)
	}
	for m, l := range losses {
		if math.IsNaN(l) || math.IsInf(l, 0) {
			return out, fmt.Errorf("uncertainty: Rashomon: mask %d has loss %v", m, l)
		}
		if out.Best < 0 || l < losses[out.Best] {
			out.Best = m
		}
	}
	if preds != nil && len(preds) != len(losses) {
		return out, fmt.Errorf("uncertainty: Rashomon: %d prediction rows for %d masks", len(preds), len(losses))
	}
	if ref != nil && preds == nil {
		return out, errors.New("uncertainty: Rashomon: reference predictions without mask predictions")
	}
	bound := losses[out.Best] + eps
	out.MinLoss, out.MaxLoss = math.Inf(1), math.Inf(-1)
	var mean float64
	for m, l := range losses {
		if l <= bound {
			out.Members = append(out.Members, m)
			out.MinLoss = min(out.MinLoss, l)
			out.MaxLoss = max(out.MaxLoss, l)
			mean += l
		}
	}
	n := float64(len(out.Members))
	mean /= n
	var v float64
	for _, m := range out.Members {
		v += (losses[m] - mean) * (losses[m] - mean)
	}
	out.StdLoss = math.Sqrt(v / n)
	if preds == nil {
		return out, nil
	}
	members := make([][]int, len(out.Members))
	var alts [][]int
	for i, m := range out.Members {
		members[i] = preds[m]
		if ref != nil || m != out.Best {
			alts = append(alts, preds[m])
		}
	}
	if ref == nil {
		ref = preds[out.Best]
		if len(alts) == 0 {
			alts = [][]int{ref}
		}
	}
	var err error
	if out.Ambiguity, err = metrics.Ambiguity(ref, alts); err != nil {
		return out, fmt.Errorf("uncertainty: Rashomon: %w", err)
	}
	if out.Discrepancy, err = metrics.Discrepancy(ref, alts); err != nil {
		return out, fmt.Errorf("uncertainty: Rashomon: %w", err)
	}
	if out.Disagreement, err = metrics.Disagreement(members); err != nil {
		return out, fmt.Errorf("uncertainty: Rashomon: %w", err)
	}
	return out, nil
}

// RashomonCapacities is the Rashomon Capacity (Hsu & Calmon 2022,
// [metrics.RashomonCapacity]) of every example over the masks listed in
// members (e.g. [RashomonSet].Members): probs[m][i] is mask m's output
// distribution over the classes of example i, and the result's entry i
// is 2^C_i ∈ [1, min(|members|, classes)], C_i the capacity in bits of
// the channel from a member to its prediction on example i.
func RashomonCapacities(probs [][][]float64, members []int) ([]float64, error) {
	if len(members) == 0 {
		return nil, errors.New("uncertainty: RashomonCapacities: no members")
	}
	n := -1
	for _, m := range members {
		if m < 0 || m >= len(probs) {
			return nil, fmt.Errorf("uncertainty: RashomonCapacities: member %d out of range [0, %d)", m, len(probs))
		}
		if n < 0 {
			n = len(probs[m])
		} else if len(probs[m]) != n {
			return nil, fmt.Errorf("uncertainty: RashomonCapacities: mask %d has %d examples, want %d", m, len(probs[m]), n)
		}
	}
	if n == 0 {
		return nil, errors.New("uncertainty: RashomonCapacities: no examples")
	}
	out := make([]float64, n)
	rows := make([][]float64, len(members))
	for i := range n {
		for j, m := range members {
			rows[j] = probs[m][i]
		}
		c, err := metrics.RashomonCapacity(rows)
		if err != nil {
			return nil, fmt.Errorf("uncertainty: RashomonCapacities: example %d: %w", i, err)
		}
		out[i] = c
	}
	return out, nil
}
