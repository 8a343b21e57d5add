package recipe

import (
	"context"
	"fmt"
	"io"
	"math"
	"sort"
	"strconv"
	"strings"

	"github.com/gomlx/gomlx/ml/model"

	"github.com/lethe-ml/lethe/data/tokenizer"
	"github.com/lethe-ml/lethe/models"
	"github.com/lethe-ml/lethe/unlearn"
	"github.com/lethe-ml/lethe/unlearn/eval"
	"github.com/lethe-ml/lethe/unlearn/facts"
)

// layerOf returns the decoder layer of a parameter ("model.layers.3.…" →
// 3), or -1.
func layerOf(name string) int {
	rest, ok := strings.CutPrefix(name, "model.layers.")
	if !ok {
		return -1
	}
	i, err := strconv.Atoi(strings.SplitN(rest, ".", 2)[0])
	if err != nil {
		return -1
	}
	return i
}

// sumGradients adds the gradients of every batch of samples of one part.
func sumGradients(u *unlearn.Unlearner, part unlearn.Part, ss []sample, size, maxLen int) (map[string][]float64, error) {
	out := map[string][]float64{}
	for start := 0; start < len(ss); start += size {
		g, err := u.GradientsOf(part, batch(ss[start:min(start+size, len(ss))], maxLen))
		if err != nil {
			return nil, err
		}
		for name, v := range g {
			acc := out[name]
			if acc == nil {
				acc = make([]float64, len(v))
				out[name] = acc
			}
			for i, x := range v {
				acc[i] += float64(x)
			}
		}
	}
	return out, nil
}

// runSLSG is Single Layer Single Gradient: it ranks the decoder layers by
// the ratio of the forget NLL's gradient norm to the retain NLL's, then
// takes one normalised ascent step on the forget NLL in the top layer with
// the largest step size that keeps the retain NLL within the tolerance.
func runSLSG(ctx context.Context, m *models.Model, u *unlearn.Unlearner, opts unlearn.Options, tok *tokenizer.Tokenizer, pf *format,
	cfg Config, splits map[string][]facts.Example, res *Result, log io.Writer) error {
	t := cfg.Training
	enc := func(ex []facts.Example) ([]sample, []string, []string, error) {
		var ss []sample
		var prompts, comps []string
		for _, e := range ex {
			p, err := pf.prompt(e.Question)
			if err != nil {
				return nil, nil, nil, err
			}
			s, err := encode(tok, p, pf.completion(e.Answer), t.MaxLength) // p is also kept for scoring
			if err != nil {
				return nil, nil, nil, err
			}
			ss, prompts, comps = append(ss, s), append(prompts, p), append(comps, pf.completion(e.Answer))
		}
		return ss, prompts, comps, nil
	}
	fs, fp, fc, err := enc(splits[facts.SplitForget])
	if err != nil {
		return err
	}
	retain := splits[facts.SplitRetain]
	if len(retain) > 4*len(fs) {
		retain = retain[:4*len(fs)] // enough to estimate the retain gradient and loss
	}
	rs, rp, rc, err := enc(retain)
	if err != nil {
		return err
	}
	gf, err := sumGradients(u, unlearn.Forget, fs, t.ForgetBatch, t.MaxLength) // ∇(−NLL_f)
	if err != nil {
		return err
	}
	gr, err := sumGradients(u, unlearn.Retain, rs, t.RetainBatch, t.MaxLength) // ∇NLL_r
	if err != nil {
		return err
	}
	normF, normR := map[int]float64{}, map[int]float64{}
	for name, v := range gf {
		l := layerOf(name)
		if l < 0 {
			continue
		}
		for i := range v {
			normF[l] += v[i] * v[i]
			normR[l] += gr[name][i] * gr[name][i]
		}
	}
	var layers []int
	for l := range normF {
		layers = append(layers, l)
	}
	if len(layers) == 0 {
		return fmt.Errorf("slsg: no decoder-layer parameters are trained")
	}
	ratio := func(l int) float64 { return math.Sqrt(normF[l]) / (math.Sqrt(normR[l]) + 1e-12) }
	sort.Slice(layers, func(i, j int) bool { return ratio(layers[i]) > ratio(layers[j]) })
	best := layers[0]
	fmt.Fprintf(log, "lethe: slsg: layer %d has the largest forget/retain gradient ratio (%.3g)\n", best, ratio(best))

	vars := map[string]*model.Variable{}
	for name, v := range trainedVars(m, opts) {
		if layerOf(name) == best {
			vars[name] = v
		}
	}
	start, err := hostValues(vars)
	if err != nil {
		return err
	}
	norm := math.Sqrt(normF[best])
	score := func(b *eval.Model, prompts, comps []string) (float64, error) {
		sc, err := b.Score(ctx, prompts, comps)
		if err != nil {
			return 0, err
		}
		s := 0.0
		for _, x := range sc {
			s += x.Loss
		}
		return s / float64(len(sc)), nil
	}
	apply := func(eta float64) error {
		vals := map[string][]float32{}
		for name, v := range start {
			x := make([]float32, len(v))
			for i := range v {
				// θ − η·g/‖g‖ with g = ∇(−NLL_f): ascent on the forget NLL.
				x[i] = float32(float64(v[i]) - eta*gf[name][i]/norm)
			}
			vals[name] = x
		}
		if err := setValues(vars, vals); err != nil {
			return err
		}
		m.WeightsChanged()
		return nil
	}
	scorer := &eval.Model{M: m, Tokenizer: tok, Backend: u.Backend(), BatchSize: cfg.Eval.BatchSize}
	f0, err := score(scorer, fp, fc)
	if err != nil {
		return err
	}
	r0, err := score(scorer, rp, rc)
	if err != nil {
		return err
	}
	mc := u.Method().Config()
	chosen, chosenF := 0.0, f0
	for _, eta := range mc.StepSizes {
		if err := apply(eta); err != nil {
			return err
		}
		f, err := score(scorer, fp, fc)
		if err != nil {
			return err
		}
		r, err := score(scorer, rp, rc)
		if err != nil {
			return err
		}
		fmt.Fprintf(log, "lethe: slsg: step %g: forget NLL %.3f (from %.3f), retain NLL %.3f (from %.3f)\n", eta, f, f0, r, r0)
		if r-r0 <= mc.RetainTolerance && f > chosenF {
			chosen, chosenF = eta, f
		}
	}
	fmt.Fprintf(log, "lethe: slsg: step size %g on layer %d\n", chosen, best)
	if err := apply(chosen); err != nil {
		return err
	}
	res.Steps, res.FirstLoss, res.LastLoss = 1, -f0, -chosenF
	return nil
}
