package lora

import (
	"fmt"
	"math"

	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/shapes"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/ml/model"

	"github.com/lethe-ml/lethe/models"
	"github.com/lethe-ml/lethe/peft"
	"github.com/lethe-ml/lethe/peft/internal/host"
)

// layer is one adapted module: PEFT's lora.Linear for one adapter.
//
// Shapes: x [..., in], y [..., out]. lethe stores A [in, r] and B [r, out]
// (PEFT's lora_A.weight [r, in] and lora_B.weight [out, r] transposed, the
// layout the Go backend multiplies fastest), so that
//
//	ΔW (torch's [out, in]) = scale · B·A,  x·ΔWᵀ = scale · (x·A)·B.
type layer struct {
	mod   peft.Module
	r     int
	alpha float64
	scale float64
	a, b  *model.Variable // [in, r], [r, out]
	mag   *model.Variable // DoRA magnitude [out]
	// mergedNorm is DoRA's ‖W + ΔW‖ per output row when the adapter was
	// merged (PEFT caches it for unmerge).
	mergedNorm []float32
}

// key returns the adapter file key of one of the layer's tensors
// ("lora_A.weight", "lora_B.weight", "lora_magnitude_vector").
func (l *layer) key(suffix string) string { return peft.KeyPrefix + l.mod.Name + "." + suffix }

// paramName is PEFT's named_parameters name of a tensor of adapter name.
func (l *layer) paramName(adapter, kind string) string {
	return peft.KeyPrefix + l.mod.Name + "." + kind + "." + adapter + ".weight"
}

// forward adds the adapter's update to y, the base output (plus earlier
// adapters' updates) for input x. It follows PEFT's Linear.forward and
// DoraLinearVariant.forward:
//
//	LoRA: y + scale · B(A(dropout(x)))
//	DoRA: with n = ‖W + scale·B·A‖ per output row (detached: no gradient),
//	      g = magnitude / n,
//	      y + (g − 1) · base + g · scale · B(A(dropout(x)))
//	      where base is y without the bias when dropout is off (or not
//	      training), else dropout(x)·Wᵀ.
//
// The update is computed in float32 and added in float32, as PEFT casts
// to the adapter's dtype.
func (l *layer) forward(m *models.Model, cfg *Config, x, y *Node, train bool) *Node {
	g := x.Graph()
	dt := y.DType()
	x32 := ConvertDType(x, dtypes.Float32)
	y32 := ConvertDType(y, dtypes.Float32)
	xd := x32
	dropped := false
	if train && cfg.Dropout > 0 {
		xd = dropout(m, x32, cfg.Dropout)
		dropped = true
	}
	a := l.a.NodeValue(g) // [in, r]
	b := l.b.NodeValue(g) // [r, out]
	if train && cfg.WeightDropout > 0 {
		a, b = weightDropout(m, a, b, cfg.WeightDropout)
	}
	h := DotGeneral(xd, []int{xd.Rank() - 1}, nil, a, []int{0}, nil)  // [..., r]
	lora := DotGeneral(h, []int{h.Rank() - 1}, nil, b, []int{0}, nil) // [..., out]
	if l.mag == nil {
		return ConvertDType(Add(y32, MulScalar(lora, l.scale)), dt)
	}
	w := baseWeightInOut(m, l.mod, g)                                     // [in, out]
	delta := StopGradient(MatMul(a, b))                                   // [in, out]
	norm := Sqrt(ReduceSum(Square(Add(w, MulScalar(delta, l.scale))), 0)) // [out]
	norm = StopGradient(norm)
	gain := Div(l.mag.NodeValue(g), norm) // [out]
	gain = ExpandLeftToRank(gain, y32.Rank())
	var base *Node
	if !dropped {
		base = y32
		if l.mod.Bias != "" {
			bias, _ := m.Param(l.mod.Bias)
			base = Sub(base, ExpandLeftToRank(ConvertDType(bias.NodeValue(g), dtypes.Float32), y32.Rank()))
		}
	} else {
		base = DotGeneral(xd, []int{xd.Rank() - 1}, nil, w, []int{0}, nil)
	}
	dora := Add(Mul(AddScalar(gain, -1), base), Mul(gain, MulScalar(lora, l.scale)))
	return ConvertDType(Add(y32, dora), dt)
}

// baseWeightInOut returns a module's base weight as [in, out] float32.
func baseWeightInOut(m *models.Model, mod peft.Module, g *Graph) *Node {
	v, ok := m.Param(mod.Weight)
	if !ok {
		panic(fmt.Errorf("lora: model has no tensor %q", mod.Weight))
	}
	w := ConvertDType(v.NodeValue(g), dtypes.Float32)
	if mod.StoredOutIn {
		w = Transpose(w, 0, 1)
	}
	return w
}

// dropout is inverted dropout with the store's random generator.
func dropout(m *models.Model, x *Node, p float64) *Node {
	keep := m.Store.RandomBernoulli(Scalar(x.Graph(), dtypes.Float32, 1-p), shapes.Make(x.DType(), x.Shape().Dimensions...))
	return MulScalar(Mul(x, keep), 1/(1-p))
}

// weightDropout is LoRA Dropout: rows of A [in, r] (input features) and
// columns of B [r, out] (output features) kept with probability 1−p and
// scaled by 1/(1−p), so E[A'] = A, E[B'] = B and, the masks being
// independent, E[A'·B'] = A·B.
func weightDropout(m *models.Model, a, b *Node, p float64) (*Node, *Node) {
	g := a.Graph()
	in, out := a.Shape().Dimensions[0], b.Shape().Dimensions[1]
	prob := Scalar(g, dtypes.Float32, 1-p)
	ma := m.Store.RandomBernoulli(prob, shapes.Make(a.DType(), in, 1))
	mb := m.Store.RandomBernoulli(prob, shapes.Make(b.DType(), 1, out))
	return MulScalar(Mul(a, ma), 1/(1-p)), MulScalar(Mul(b, mb), 1/(1-p))
}

// delta returns scale·A·B ([in, out], float32) on the host.
func (l *layer) delta() (*host.Matrix, error) {
	a, err := host.ReadMatrix(l.a)
	if err != nil {
		return nil, err
	}
	b, err := host.ReadMatrix(l.b)
	if err != nil {
		return nil, err
	}
	d := host.MatMul(a, b)
	s := float32(l.scale)
	for i := range d.Data {
		d.Data[i] *= s
	}
	return d, nil
}

// readBase returns a module's base weight as [in, out] on the host.
func readBase(m *models.Model, mod peft.Module) (*host.Matrix, error) {
	v, ok := m.Param(mod.Weight)
	if !ok {
		return nil, fmt.Errorf("model has no tensor %q", mod.Weight)
	}
	w, err := host.ReadMatrix(v)
	if err != nil {
		return nil, err
	}
	if mod.StoredOutIn {
		w = w.T()
	}
	return w, nil
}

// writeBase stores w ([in, out]) as a module's base weight.
func writeBase(m *models.Model, mod peft.Module, w *host.Matrix) error {
	v, _ := m.Param(mod.Weight)
	if mod.StoredOutIn {
		w = w.T()
	}
	return host.Write(v, w.Data)
}

// columnNorms returns ‖w[:, o]‖ for every output o of an [in, out] matrix,
// accumulated in float64.
func columnNorms(w *host.Matrix) []float32 {
	acc := make([]float64, w.Cols)
	for i := 0; i < w.Rows; i++ {
		row := w.Data[i*w.Cols : (i+1)*w.Cols]
		for o, v := range row {
			acc[o] += float64(v) * float64(v)
		}
	}
	out := make([]float32, w.Cols)
	for o, s := range acc {
		out[o] = float32(math.Sqrt(s))
	}
	return out
}
