package dropout

import (
	"fmt"
	"strings"

	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/shapes"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/ml/model"

	"github.com/lethe-ml/lethe/models"
)

// Mix is Mixout (Lee, Cho & Kang 2020, "Mixout: Effective Regularization to
// Finetune Large-scale Pretrained Language Models") of weight w towards its
// pretrained value pre, with rate p (a float32 scalar node in [0, 1]): each
// entry is replaced by its pretrained value with probability p (mask M = 1)
// and the result is rescaled around pre,
//
//	mixout(w) = (M·pre + (1-M)·w - p·pre) / (1-p)
//
// (the paper's Ψ(w) = u + ((I-M)(w-u))/(1-p) for target u = pre), so that
// E[mixout(w)] = w and the gradient reaching w is (1-M)/(1-p). p = 0 gives w
// exactly; p = 1, where the formula is 0/0, gives pre exactly, as the
// authors' implementation does (the limit of the L2 penalty towards pre it
// induces, which grows as p/(1-p)). The mask is drawn per entry from the
// store's generator; the authors' code draws it per input neuron (all
// outgoing weights of a unit at once), Figure 1 of the paper.
func Mix(store *model.Store, w, pre, p *Node) *Node {
	g := w.Graph()
	p = ConvertDType(p, dtypes.Float32)
	wf, pf := ConvertDType(w, dtypes.Float32), ConvertDType(pre, dtypes.Float32)
	u := store.RandomUniform(g, shapes.Make(dtypes.Float32, w.Shape().Dimensions...))
	mixed := Sub(Where(LessThan(u, p), pf, wf), Mul(p, pf))
	one := OnesLike(p)
	denom := Where(GreaterOrEqual(p, one), one, OneMinus(p)) // never 0: p = 1 takes pf below
	mixed = Div(mixed, denom)
	out := Where(GreaterOrEqual(p, one), pf, Where(LessOrEqual(p, ZerosLike(p)), wf, mixed))
	return ConvertDType(out, w.DType())
}

// mixoutCandidate reports whether tensor name of m is a weight the Weight
// hook sees: every matrix but the embedding tables, which only count as
// the tied LM head.
func mixoutCandidate(m *models.Model, name string, rank int) bool {
	if rank != 2 || !strings.HasSuffix(name, ".weight") {
		return false
	}
	switch name {
	case "transformer.wpe.weight":
		return false
	case "model.embed_tokens.weight", "transformer.wte.weight":
		return m.Config.TieWordEmbeddings
	}
	return true
}

// capturePretrained copies the weights Mixout targets into frozen store
// variables under Scope/mixout, keyed by Hugging Face name.
func capturePretrained(m *models.Model, targets []string) (map[string]*model.Variable, error) {
	out := map[string]*model.Variable{}
	for _, name := range m.ParamNames() {
		v, _ := m.Param(name)
		if !mixoutCandidate(m, name, v.Shape().Rank()) {
			continue
		}
		if len(targets) > 0 && !containsAny(name, targets) {
			continue
		}
		value, err := v.Value()
		if err != nil {
			return nil, fmt.Errorf("dropout: mixout: weight %q: %w", name, err)
		}
		clone, err := value.Clone()
		if err != nil {
			return nil, fmt.Errorf("dropout: mixout: weight %q: %w", name, err)
		}
		pre, err := m.Store.CreateVariable(Scope+"/mixout/"+name, clone)
		if err != nil {
			return nil, fmt.Errorf("dropout: mixout: weight %q: %w", name, err)
		}
		if cur, _ := pre.Value(); cur != clone { // an existing variable (New called twice) takes the current weights
			if err := pre.SetValue(clone); err != nil {
				return nil, fmt.Errorf("dropout: mixout: weight %q: %w", name, err)
			}
		}
		pre.Trainable = false
		out[name] = pre
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("dropout.mixout.targets: no weight of the model matches %q", targets)
	}
	return out, nil
}

func containsAny(s string, subs []string) bool {
	for _, sub := range subs {
		if strings.Contains(s, sub) {
			return true
		}
	}
	return false
}
