package dropout

import (
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"regexp"
	"strconv"

	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/shapes"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/ml/model"

	"github.com/lethe-ml/lethe/models"
)

// DropLayer is LayerDrop (Fan, Grave & Joulin 2019, "Reducing Transformer
// Depth on Demand with Structured Dropout") for one layer of one batch:
// with probability rate (a float32 scalar node) the layer is skipped, its
// output replaced by its input in; no rescaling, as in the paper. One draw
// from the store's generator per call, so per layer and per batch. The
// skipped layer is still computed (graphs are static) but gets no gradient.
func DropLayer(store *model.Store, in, out, rate *Node) *Node {
	u := store.RandomUniform(in.Graph(), shapes.Make(dtypes.Float32))
	return Where(GreaterOrEqual(u, ConvertDType(rate, dtypes.Float32)), out, in)
}

// EveryOther returns the layers kept by the paper's "every other" pruning
// at rate p in (0, 0.5]: the layers at depth d (1-based) with d ≡ 0 (mod
// ⌊1/p⌋) are dropped, so p = 0.5 keeps layers 0, 2, 4, ... (0-based) and
// p = 0.25 drops every fourth layer. p = 0 keeps every layer.
func EveryOther(numLayers int, p float64) []int {
	k := 0
	if p > 0 {
		k = int(math.Floor(1/p + 1e-9)) // 1/(1/3) must be 3
	}
	var keep []int
	for i := range numLayers {
		if k > 0 && (i+1)%k == 0 {
			continue
		}
		keep = append(keep, i)
	}
	return keep
}

// Prune returns a Hooks.Layer that runs only the layers in keep (0-based,
// ascending) of a model with numLayers layers: the others return their
// input, so the network is the kept layers one after the other (pruning to
// any depth at inference, Fan et al. 2019). The output of a pruned layer is
// unused: compilers that eliminate dead code (XLA) drop its computation;
// PrunedModel builds a model without it.
func Prune(numLayers int, keep []int) (func(layer int, in, out *Node) *Node, error) {
	if err := checkKeep(numLayers, keep); err != nil {
		return nil, err
	}
	kept := make(map[int]bool, len(keep))
	for _, l := range keep {
		kept[l] = true
	}
	return func(layer int, in, out *Node) *Node {
		if kept[layer] {
			return out
		}
		return in
	}, nil
}

func checkKeep(numLayers int, keep []int) error {
	for i, l := range keep {
		if l < 0 || l >= numLayers || (i > 0 && l <= keep[i-1]) {
			return fmt.Errorf("dropout: layers to keep must be ascending in [0, %d), got %v", numLayers, keep)
		}
	}
	return nil
}

// layerName matches the tensors of a decoder layer (Llama-style
// "model.layers.3.", GPT-2 "transformer.h.3.").
var layerName = regexp.MustCompile(`^(model\.layers|transformer\.h)\.(\d+)\.(.+)$`)

// PrunedModel returns a new model made of m's layers in keep (0-based,
// ascending) with copies of their weights and of every other tensor: the
// depth-pruned network of Fan et al. (2019) as a model of its own (its
// config says len(keep) layers, so Export writes a checkpoint transformers
// loads). m is not changed. It allocates the new model at full size before
// copying (models has no constructor from tensors yet).
func PrunedModel(m *models.Model, keep []int) (*models.Model, error) {
	if err := checkKeep(m.Config.NumLayers, keep); err != nil {
		return nil, err
	}
	cfg := *m.Config
	cfg.NumLayers = len(keep)
	if m.Config.Raw != nil {
		raw, err := prunedRaw(m.Config.Raw, keep)
		if err != nil {
			return nil, fmt.Errorf("dropout: pruned model config: %w", err)
		}
		cfg.Raw = raw
	}
	names := m.ParamNames()
	if len(names) == 0 {
		return nil, fmt.Errorf("dropout: pruned model: the model has no tensors")
	}
	first, _ := m.Param(names[0])
	out, err := models.New(&cfg, models.LoadOptions{DType: m.DType, WeightDType: first.DType()}, 0)
	if err != nil {
		return nil, fmt.Errorf("dropout: pruned model: %w", err)
	}
	for _, name := range out.ParamNames() {
		src := name
		if g := layerName.FindStringSubmatch(name); g != nil {
			j, _ := strconv.Atoi(g[2])
			src = fmt.Sprintf("%s.%d.%s", g[1], keep[j], g[3])
		}
		from, ok := m.Param(src)
		if !ok {
			return nil, fmt.Errorf("dropout: pruned model: source tensor %q is missing", src)
		}
		to, _ := out.Param(name)
		if !from.Shape().Equal(to.Shape()) {
			return nil, fmt.Errorf("dropout: pruned model: tensor %q has shape %s, %q %s", src, from.Shape(), name, to.Shape())
		}
		value, err := from.Value()
		if err != nil {
			return nil, fmt.Errorf("dropout: pruned model: tensor %q: %w", src, err)
		}
		clone, err := value.Clone()
		if err != nil {
			return nil, fmt.Errorf("dropout: pruned model: tensor %q: %w", src, err)
		}
		if err := to.SetValue(clone); err != nil {
			return nil, fmt.Errorf("dropout: pruned model: tensor %q: %w", name, err)
		}
	}
	return out, nil
}

// prunedRaw returns a copy of a config.json with the layer count (and the
// per-layer list layer_types, when there is one) of the pruned model.
func prunedRaw(raw map[string]json.RawMessage, keep []int) (map[string]json.RawMessage, error) {
	out := maps.Clone(raw)
	n, _ := json.Marshal(len(keep))
	for _, key := range []string{"num_hidden_layers", "n_layer"} {
		if _, ok := out[key]; ok {
			out[key] = n
		}
	}
	if lt, ok := out["layer_types"]; ok {
		var types []json.RawMessage
		if err := json.Unmarshal(lt, &types); err != nil {
			return nil, fmt.Errorf("layer_types: %w", err)
		}
		var kept []json.RawMessage
		for _, l := range keep {
			if l >= len(types) {
				return nil, fmt.Errorf("layer_types has %d entries, layer %d is kept", len(types), l)
			}
			kept = append(kept, types[l])
		}
		b, _ := json.Marshal(kept)
		out["layer_types"] = b
	}
	return out, nil
}
