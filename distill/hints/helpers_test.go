package hints

import (
	"math"
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/gomlx/compute"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"

	"github.com/lethe-ml/lethe/internal/backend"
)

var (
	backendOnce sync.Once
	testB       compute.Backend
	testBErr    error
)

func testBackend(t testing.TB) compute.Backend {
	t.Helper()
	backendOnce.Do(func() { testB, _, testBErr = backend.New("go:ops_sequential") })
	if testBErr != nil {
		t.Fatal(testBErr)
	}
	return testB
}

// newExec compiles fn over store's variables and returns a function that
// runs it once and returns its outputs flattened to float64.
func newExec(t testing.TB, store *model.Store, fn func(g *Graph) []*Node) func() [][]float64 {
	t.Helper()
	e, err := model.NewExec(testBackend(t), store, func(scope *model.Scope, g *Graph) []*Node {
		scope.SetTraining(g, true) // variables are parameters: they change between calls
		return fn(g)
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Finalize)
	return func() [][]float64 {
		t.Helper()
		outs, err := e.Call()
		if err != nil {
			t.Fatal(err)
		}
		res := make([][]float64, len(outs))
		for i, o := range outs {
			res[i] = flat(o)
		}
		return res
	}
}

// run runs fn once.
func run(t testing.TB, store *model.Store, fn func(g *Graph) []*Node) [][]float64 {
	t.Helper()
	return newExec(t, store, fn)()
}

func flat(t *tensors.Tensor) []float64 {
	var out []float64
	t.MustConstFlatData(func(f any) {
		switch v := f.(type) {
		case []float32:
			for _, x := range v {
				out = append(out, float64(x))
			}
		case []float64:
			out = append(out, v...)
		case []int32:
			for _, x := range v {
				out = append(out, float64(x))
			}
		}
	})
	return out
}

// mat is a row-major float64 matrix.
type mat struct {
	r, c int
	d    []float64
}

func newMat(r, c int) *mat             { return &mat{r, c, make([]float64, r*c)} }
func (m *mat) at(i, j int) float64     { return m.d[i*m.c+j] }
func (m *mat) set(i, j int, v float64) { m.d[i*m.c+j] = v }

func randMat(rng *rand.Rand, r, c int, scale float64) *mat {
	m := newMat(r, c)
	for i := range m.d {
		m.d[i] = scale * rng.NormFloat64()
	}
	return m
}

func mul(a, b *mat) *mat {
	out := newMat(a.r, b.c)
	for i := 0; i < a.r; i++ {
		for k := 0; k < a.c; k++ {
			for j := 0; j < b.c; j++ {
				out.d[i*out.c+j] += a.at(i, k) * b.at(k, j)
			}
		}
	}
	return out
}

func transpose(a *mat) *mat {
	out := newMat(a.c, a.r)
	for i := 0; i < a.r; i++ {
		for j := 0; j < a.c; j++ {
			out.set(j, i, a.at(i, j))
		}
	}
	return out
}

// block is the top-left [r, c] block of a.
func block(a *mat, r, c int) *mat {
	out := newMat(r, c)
	for i := 0; i < r; i++ {
		for j := 0; j < c; j++ {
			out.set(i, j, a.at(i, j))
		}
	}
	return out
}

func f32(x []float64) []float32 {
	out := make([]float32, len(x))
	for i, v := range x {
		out[i] = float32(v)
	}
	return out
}

// constant is a float32 constant [dims...] of x in g.
func constant(g *Graph, x []float64, dims ...int) *Node {
	return Const(g, tensors.FromFlatDataAndDimensions(f32(x), dims...))
}

// orthoError is max |PPᵀ − I| (rows ≤ cols) or max |PᵀP − I|.
func orthoError(p *mat) float64 {
	var g *mat
	if p.r <= p.c {
		g = mul(p, transpose(p))
	} else {
		g = mul(transpose(p), p)
	}
	worst := 0.0
	for i := 0; i < g.r; i++ {
		for j := 0; j < g.c; j++ {
			want := 0.0
			if i == j {
				want = 1
			}
			worst = math.Max(worst, math.Abs(g.at(i, j)-want))
		}
	}
	return worst
}

func near(got, want, tol float64) bool {
	return math.Abs(got-want) <= tol*math.Max(1, math.Abs(want))
}
