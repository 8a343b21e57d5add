package models

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/gomlx/compute"
	"github.com/gomlx/compute/dtypes"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
)

// gradInput is one input of a function under a gradient check.
type gradInput struct {
	dims []int
	data []float64
}

func randInput(rng *rand.Rand, scale float64, dims ...int) gradInput {
	n := 1
	for _, d := range dims {
		n *= d
	}
	data := make([]float64, n)
	for i := range data {
		data[i] = scale * rng.NormFloat64()
	}
	return gradInput{dims, data}
}

// checkGradient compares the graph gradient of sum(f(inputs) · r), for a
// fixed random r, with central finite differences, for every input value,
// in float64. It fails when the relative error exceeds tol.
func checkGradient(t *testing.T, b compute.Backend, name string, f func(in []*Node) *Node, inputs []gradInput, tol float64) {
	t.Helper()
	args := make([]any, len(inputs))
	for i, in := range inputs {
		args[i] = tensors.FromFlatDataAndDimensions(in.data, in.dims...)
	}
	// The projection r is derived from the output shape inside the graph
	// with a fixed pattern, so the same scalar is evaluated everywhere.
	scalar := func(in []*Node) *Node {
		y := ConvertDType(f(in), dtypes.Float64)
		if y.IsScalar() {
			return y
		}
		g := y.Graph()
		r := Sin(AddScalar(MulScalar(ConvertDType(Iota(g, y.Shape(), -1), dtypes.Float64), 0.7), 0.3))
		if y.Rank() > 1 {
			r = Add(r, Cos(ConvertDType(Iota(g, y.Shape(), 0), dtypes.Float64)))
		}
		return ReduceAllSum(Mul(y, r))
	}
	value := MustNewExec(b, func(in []*Node) *Node { return scalar(in) })
	grads := MustNewExec(b, func(in []*Node) []*Node { return Gradient(scalar(in), in...) })
	gotT := grads.MustExec(args...)
	const eps = 1e-5
	for i, in := range inputs {
		got := gotT[i].Value()
		gflat := flattenF64(got)
		for j := range in.data {
			orig := in.data[j]
			in.data[j] = orig + eps
			args[i] = tensors.FromFlatDataAndDimensions(in.data, in.dims...)
			plus := value.MustExec(args...)[0].Value().(float64)
			in.data[j] = orig - eps
			args[i] = tensors.FromFlatDataAndDimensions(in.data, in.dims...)
			minus := value.MustExec(args...)[0].Value().(float64)
			in.data[j] = orig
			args[i] = tensors.FromFlatDataAndDimensions(in.data, in.dims...)
			num := (plus - minus) / (2 * eps)
			if err := math.Abs(num-gflat[j]) / math.Max(1, math.Abs(num)); err > tol {
				t.Errorf("%s: d/d input%d[%d]: graph %.8g, finite differences %.8g", name, i, j, gflat[j], num)
				return
			}
		}
	}
}

func flattenF64(v any) []float64 {
	switch x := v.(type) {
	case float64:
		return []float64{x}
	case []float64:
		return x
	}
	var out []float64
	switch x := v.(type) {
	case [][]float64:
		for _, r := range x {
			out = append(out, r...)
		}
	case [][][]float64:
		for _, r := range x {
			out = append(out, flattenF64(r)...)
		}
	case [][][][]float64:
		for _, r := range x {
			out = append(out, flattenF64(r)...)
		}
	}
	return out
}

// TestLayerGradients checks the gradient of every layer lethe uses against
// finite differences.
func TestLayerGradients(t *testing.T) {
	b := testBackend(t)
	rng := rand.New(rand.NewPCG(1, 2))
	B, T, H, N, K, D := 2, 3, 8, 4, 2, 4
	cases := []struct {
		name   string
		f      func(in []*Node) *Node
		inputs []gradInput
	}{
		{"linear", func(in []*Node) *Node { return linearT(in[0], in[1], in[2]) },
			[]gradInput{randInput(rng, 1, B, T, H), randInput(rng, 0.5, 5, H), randInput(rng, 0.1, 5)}},
		{"conv1d", func(in []*Node) *Node { return conv1D(in[0], in[1], in[2]) },
			[]gradInput{randInput(rng, 1, B, T, H), randInput(rng, 0.5, H, 5), randInput(rng, 0.1, 5)}},
		{"rmsnorm", func(in []*Node) *Node { return rmsNorm(in[0], in[1], 1e-5, false) },
			[]gradInput{randInput(rng, 1, B, T, H), randInput(rng, 1, H)}},
		{"rmsnorm (1+w)", func(in []*Node) *Node { return rmsNorm(in[0], in[1], 1e-5, true) },
			[]gradInput{randInput(rng, 1, B, T, H), randInput(rng, 0.1, H)}},
		{"layernorm", func(in []*Node) *Node { return layerNorm(in[0], in[1], in[2], 1e-5) },
			[]gradInput{randInput(rng, 1, B, T, H), randInput(rng, 1, H), randInput(rng, 0.1, H)}},
		{"silu", func(in []*Node) *Node { return silu(in[0]) }, []gradInput{randInput(rng, 2, 10)}},
		{"gelu", func(in []*Node) *Node { return geluErf(in[0]) }, []gradInput{randInput(rng, 2, 10)}},
		{"gelu tanh", func(in []*Node) *Node { return geluTanh(in[0]) }, []gradInput{randInput(rng, 2, 10)}},
		{"rope", func(in []*Node) *Node {
			pos := Iota(in[0].Graph(), shapesInt32(B, T), 1)
			cos, sin := ropeCosSin(pos, ropeInvFreq(&RopeConfig{Theta: 10000, Type: "llama3", Factor: 8, LowFreqFactor: 1, HighFreqFactor: 4, OriginalMaxPositions: 16}, D))
			return applyRope(in[0], ConvertDType(cos, dtypes.Float64), ConvertDType(sin, dtypes.Float64))
		}, []gradInput{randInput(rng, 1, B, T, N, D)}},
		{"attention (GQA, padding, window)", func(in []*Node) *Node {
			g := in[0].Graph()
			// Every query sees at least one key: a fully masked row has a
			// flat softmax, which finite differences cannot follow.
			mask := Const(g, [][]int32{{1, 1, 1}, {1, 0, 1}})
			bias := attentionBias(Scalar(g, dtypes.Int32, 0), mask, nil, T, 2)
			k, v := TransposeAllAxes(in[1], 0, 2, 1, 3), TransposeAllAxes(in[2], 0, 2, 1, 3)
			return attend(in[0], k, v, bias, 0.5, nil)
		}, []gradInput{randInput(rng, 1, B, T, N, D), randInput(rng, 1, B, T, K, D), randInput(rng, 1, B, T, K, D)}},
		{"moe routing", func(in []*Node) *Node { return topKRenormalized(Softmax(in[0], -1), 2) },
			[]gradInput{randInput(rng, 1, B, T, 4)}},
		{"causal LM loss", func(in []*Node) *Node {
			labels := Const(in[0].Graph(), [][]int32{{3, 1, 4}, {1, -100, 2}})
			loss, _ := causalLMLoss(in[0], labels)
			return loss
		}, []gradInput{randInput(rng, 1, B, T, 5)}},
		{"embedding", func(in []*Node) *Node {
			return Gather(in[0], InsertAxes(Const(in[0].Graph(), [][]int32{{0, 2, 2}, {1, 0, 3}}), -1))
		}, []gradInput{randInput(rng, 1, 4, H)}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			checkGradient(t, b, c.name, c.f, c.inputs, 1e-5)
		})
	}
}
