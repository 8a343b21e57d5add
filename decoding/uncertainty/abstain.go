package uncertainty

import (
	"errors"
	"fmt"
	"math"
	"slices"

	"github.com/lethe-ml/lethe/unlearn/metrics"
)

// Selective prediction: a model answers the examples whose uncertainty
// score is at most a threshold and abstains on the others (the
// model-side, confidence-based abstention of Wen et al. 2024, "Know Your
// Limits: A Survey of Abstention in Large Language Models", evaluated as in
// Geifman & El-Yaniv 2017, "Selective Classification for Deep Neural
// Networks"). scores[i] is example i's uncertainty (higher = less sure)
// and correct[i] whether its answer is right.

// Abstain returns, for every example, whether to abstain: true when
// scores[i] > threshold (or scores[i] is NaN), false when the model
// answers (scores[i] ≤ threshold).
func Abstain(scores []float64, threshold float64) []bool {
	out := make([]bool, len(scores))
	for i, s := range scores {
		out[i] = !(s <= threshold)
	}
	return out
}

// CoveragePoint is one operating point of a selective predictor:
// answering exactly the examples with score ≤ Threshold covers the
// fraction Coverage of the examples, with accuracy Accuracy among them
// and selective risk Risk = 1 − Accuracy.
type CoveragePoint struct {
	Threshold, Coverage, Accuracy, Risk float64
}

// RiskCoverage is the risk–coverage curve (Geifman & El-Yaniv 2017):
// the examples sorted by increasing uncertainty, and one point for each
// distinct score s,
//
//	Coverage(s) = |{i: score_i ≤ s}| / n,
//	Accuracy(s) = |{i: score_i ≤ s, correct_i}| / |{i: score_i ≤ s}|,
//
// in increasing order of coverage; the last point has coverage 1 and the
// overall accuracy. Examples with equal scores form one step, since no
// threshold can separate them. Plotted as accuracy against coverage it is
// the coverage–accuracy curve.
func RiskCoverage(scores []float64, correct []bool) ([]CoveragePoint, error) {
	g, err := groups("RiskCoverage", scores, correct)
	if err != nil {
		return nil, err
	}
	n := float64(len(scores))
	pts := make([]CoveragePoint, len(g))
	for i, gr := range g {
		acc := float64(gr.rightTo) / float64(gr.end)
		pts[i] = CoveragePoint{Threshold: gr.score, Coverage: float64(gr.end) / n, Accuracy: acc, Risk: 1 - acc}
	}
	return pts, nil
}

// AURC is the area under the risk–coverage curve (Geifman, Uziel &
// El-Yaniv 2019, "Bias-Reduced Uncertainty Estimation for Deep Neural
// Classifiers"): with the examples ranked by increasing uncertainty
// and r_k the error rate among the first k,
//
//	AURC = (1/n) Σ_{k=1..n} r_k,
//
// lower is better; a ranking that puts every wrong answer last attains
// the minimum, and a random ranking gives about the overall error rate.
// With tied scores, every k inside a tie group takes the risk of the
// whole group (the curve's step: AURC = Σ_groups (size/n)·risk), so the
// result does not depend on the input order.
func AURC(scores []float64, correct []bool) (float64, error) {
	g, err := groups("AURC", scores, correct)
	if err != nil {
		return math.NaN(), err
	}
	var s float64
	for _, gr := range g {
		s += float64(gr.end-gr.start) * (1 - float64(gr.rightTo)/float64(gr.end))
	}
	return s / float64(len(scores)), nil
}

// AccuracyAtCoverage is the selective accuracy when the fraction
// coverage ∈ (0, 1] of the examples is answered: the accuracy among the
// k = ⌈coverage·n⌉ most certain examples (coverage·n is rounded down
// first when within 1e-9 of an integer, so that 0.7·10 gives 7). When k
// falls inside a group of tied scores, the group counts with its
// accuracy, i.e. the expectation over a random order of the ties:
//
//	Acc = (right_before + (k − before)·right_group/size_group) / k.
//
// AccuracyAtCoverage(…, 1) is the overall accuracy.
func AccuracyAtCoverage(scores []float64, correct []bool, coverage float64) (float64, error) {
	g, err := groups("AccuracyAtCoverage", scores, correct)
	if err != nil {
		return math.NaN(), err
	}
	if !(coverage > 0 && coverage <= 1) {
		return math.NaN(), fmt.Errorf("uncertainty: AccuracyAtCoverage: coverage %v not in (0, 1]", coverage)
	}
	n := len(scores)
	k := min(max(int(math.Ceil(coverage*float64(n)-1e-9)), 1), n)
	for _, gr := range g {
		if k <= gr.end {
			before := gr.rightTo - gr.right
			frac := float64(gr.right) / float64(gr.end-gr.start)
			return (float64(before) + float64(k-gr.start)*frac) / float64(k), nil
		}
	}
	panic("unreachable")
}

// SelectiveAUROC is the area under the ROC curve of the uncertainty score
// as a detector of wrong answers: the probability that a wrong answer has
// a higher score than a right one, ties counting one half (the
// Mann–Whitney statistic of [metrics.AUC] with the wrong answers as
// positives). 1 is a perfect separation, 0.5 a useless score. It needs at
// least one right and one wrong answer.
func SelectiveAUROC(scores []float64, correct []bool) (float64, error) {
	if err := check("SelectiveAUROC", scores, correct); err != nil {
		return math.NaN(), err
	}
	var wrong, right []float64
	for i, s := range scores {
		if correct[i] {
			right = append(right, s)
		} else {
			wrong = append(wrong, s)
		}
	}
	if len(wrong) == 0 || len(right) == 0 {
		return math.NaN(), fmt.Errorf("uncertainty: SelectiveAUROC: %d wrong and %d right answers; need both", len(wrong), len(right))
	}
	return metrics.AUC(wrong, right), nil
}

// ThresholdForAccuracy chooses, on a calibration set, the threshold with
// the largest coverage whose selective accuracy is at least target
// (Geifman & El-Yaniv 2017's selection with a target risk 1 − target,
// without their confidence bound): the point of [RiskCoverage] with the
// highest Coverage among those with Accuracy ≥ target. Selective accuracy
// need not be monotone in coverage, so points below the chosen one may
// miss the target. ok is false when no threshold reaches the target;
// the point is then {−Inf, 0, NaN, NaN}: abstain on everything.
func ThresholdForAccuracy(scores []float64, correct []bool, target float64) (p CoveragePoint, ok bool, err error) {
	none := CoveragePoint{math.Inf(-1), 0, math.NaN(), math.NaN()}
	if !(target >= 0 && target <= 1) {
		return none, false, fmt.Errorf("uncertainty: ThresholdForAccuracy: target %v not in [0, 1]", target)
	}
	pts, err := RiskCoverage(scores, correct)
	if err != nil {
		return none, false, err
	}
	for i := len(pts) - 1; i >= 0; i-- {
		if pts[i].Accuracy >= target {
			return pts[i], true, nil
		}
	}
	return none, false, nil
}

// ThresholdForCoverage chooses, on a calibration set, the smallest
// threshold that answers at least the fraction target ∈ (0, 1] of the
// examples (within 1e-9): the first point of [RiskCoverage] with
// Coverage ≥ target. With tied scores the coverage reached can exceed the
// target.
func ThresholdForCoverage(scores []float64, correct []bool, target float64) (CoveragePoint, error) {
	none := CoveragePoint{math.NaN(), math.NaN(), math.NaN(), math.NaN()}
	if !(target > 0 && target <= 1) {
		return none, fmt.Errorf("uncertainty: ThresholdForCoverage: target %v not in (0, 1]", target)
	}
	pts, err := RiskCoverage(scores, correct)
	if err != nil {
		return none, err
	}
	for _, p := range pts {
		if p.Coverage >= target-1e-9 {
			return p, nil
		}
	}
	return pts[len(pts)-1], nil
}

// ECE is the expected calibration error of confidences in [0, 1] (Naeini,
// Cooper & Hauskrecht 2015; Guo et al. 2017, "On Calibration of Modern
// Neural Networks"): with B equal-width bins
// I_b = ((b−1)/B, b/B] (the first bin also holds 0),
//
//	ECE = Σ_b (|I_b|/n) · |acc(I_b) − conf(I_b)|,
//
// acc the fraction correct and conf the mean confidence of the examples
// in the bin. bins ≤ 0 means 10. A confidence is typically
// exp(sequence log-probability), or 1 − a normalised uncertainty.
func ECE(confidences []float64, correct []bool, bins int) (float64, error) {
	if err := check("ECE", confidences, correct); err != nil {
		return math.NaN(), err
	}
	if bins <= 0 {
		bins = 10
	}
	B := float64(bins)
	count := make([]int, bins)
	right := make([]int, bins)
	conf := make([]float64, bins)
	for i, c := range confidences {
		if !(c >= 0 && c <= 1) {
			return math.NaN(), fmt.Errorf("uncertainty: ECE: confidence %d is %v, not in [0, 1]", i, c)
		}
		b := min(max(int(math.Ceil(c*B))-1, 0), bins-1)
		for b > 0 && c <= float64(b)/B { // the boundaries are i/B, as computed
			b--
		}
		for b < bins-1 && c > float64(b+1)/B {
			b++
		}
		count[b]++
		conf[b] += c
		if correct[i] {
			right[b]++
		}
	}
	var ece float64
	for b := range bins {
		if count[b] > 0 {
			nb := float64(count[b])
			ece += nb * math.Abs(float64(right[b])/nb-conf[b]/nb)
		}
	}
	return ece / float64(len(confidences)), nil
}

// group is a run of tied scores in increasing order: positions
// [start, end) of the sorted examples, right of them correct, rightTo
// correct among positions [0, end).
type group struct {
	score          float64
	start, end     int
	right, rightTo int
}

func check(fn string, scores []float64, correct []bool) error {
	if len(scores) == 0 {
		return fmt.Errorf("uncertainty: %s: no examples", fn)
	}
	if len(correct) != len(scores) {
		return fmt.Errorf("uncertainty: %s: %d correctness labels for %d scores", fn, len(correct), len(scores))
	}
	if i := slices.IndexFunc(scores, math.IsNaN); i >= 0 {
		return fmt.Errorf("uncertainty: %s: score %d is NaN", fn, i)
	}
	return nil
}

func groups(fn string, scores []float64, correct []bool) ([]group, error) {
	if err := check(fn, scores, correct); err != nil {
		return nil, err
	}
	idx := make([]int, len(scores))
	for i := range idx {
		idx[i] = i
	}
	slices.SortStableFunc(idx, func(a, b int) int {
		switch {
		case scores[a] < scores[b]:
			return -1
		case scores[a] > scores[b]:
			return 1
		}
		return 0
	})
	var g []group
	total := 0
	for pos, i := range idx {
		if len(g) == 0 || scores[i] != g[len(g)-1].score {
			g = append(g, group{score: scores[i], start: pos})
		}
		last := &g[len(g)-1]
		last.end = pos + 1
		if correct[i] {
			last.right++
			total++
		}
		last.rightTo = total
	}
	if len(g) == 0 {
		return nil, errors.New("uncertainty: " + fn + ": no examples")
	}
	return g, nil
}
