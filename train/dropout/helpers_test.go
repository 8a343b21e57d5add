package dropout

import (
	"math"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/gomlx/compute"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"

	"github.com/lethe-ml/lethe/data"
	"github.com/lethe-ml/lethe/internal/backend"
	"github.com/lethe-ml/lethe/models"
	"github.com/lethe-ml/lethe/models/safetensors"
)

const fixtures = "../../models/testdata/hf"

var shared struct {
	once    sync.Once
	backend compute.Backend
	err     error
}

// testBackend is the Go backend with sequential ops, or $LETHE_TEST_BACKEND,
// one instance for the package (tensors bound to a backend instance cannot
// move to another).
func testBackend(t testing.TB) compute.Backend {
	t.Helper()
	shared.once.Do(func() {
		spec := os.Getenv("LETHE_TEST_BACKEND")
		if spec == "" {
			spec = "go:ops_sequential"
		}
		shared.backend, _, shared.err = backend.New(spec)
	})
	if shared.err != nil {
		t.Fatal(shared.err)
	}
	return shared.backend
}

func loadModel(t testing.TB, arch string) *models.Model {
	t.Helper()
	m, err := models.Load(filepath.Join(fixtures, arch), models.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// fixtureBatch is the fixture's input_ids [2, 12] as a training batch
// (labels = ids but the first of each row, no padding).
func fixtureBatch(t testing.TB, arch string) *data.Batch {
	t.Helper()
	f, err := safetensors.Open(filepath.Join(fixtures, arch, "expected.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	ids, err := f.Int64("input_ids")
	if err != nil {
		t.Fatal(err)
	}
	b := &data.Batch{Size: 2, Length: 12, Examples: 2, Tokens: 24}
	for i, id := range ids {
		label := int32(id)
		if i%12 == 0 {
			label = data.IgnoreIndex
		} else {
			b.LossTokens++
		}
		b.InputIDs = append(b.InputIDs, int32(id))
		b.Labels = append(b.Labels, label)
		b.AttentionMask = append(b.AttentionMask, 1)
		b.PositionIDs = append(b.PositionIDs, int32(i%12))
		b.SegmentIDs = append(b.SegmentIDs, 1)
	}
	return b
}

func idsTensor(b *data.Batch) *tensors.Tensor {
	return tensors.FromFlatDataAndDimensions(b.InputIDs, b.Size, b.Length)
}

// forwardExec compiles a training-mode forward pass of m with hooks,
// returning the logits and the loss (labels = ids).
func forwardExec(t testing.TB, m *models.Model, opts models.Options) *model.Exec {
	t.Helper()
	exec, err := model.NewExec(testBackend(t), m.Store, func(scope *model.Scope, ids *Node) []*Node {
		scope.SetTraining(ids.Graph(), true)
		out := m.Forward(models.Inputs{IDs: ids, Labels: ids}, opts)
		return []*Node{out.Logits, out.Loss}
	})
	if err != nil {
		t.Fatal(err)
	}
	return exec
}

// run calls exec and returns its outputs as float32 slices and the graph
// it ran.
func run(t testing.TB, exec *model.Exec, args ...any) ([][]float32, *Graph) {
	t.Helper()
	outs, g, err := exec.CallWithGraph(args...)
	if err != nil {
		t.Fatal(err)
	}
	res := make([][]float32, len(outs))
	for i, o := range outs {
		res[i] = flat(t, o)
	}
	return res, g
}

func flat(t testing.TB, x *tensors.Tensor) []float32 {
	t.Helper()
	var out []float32
	x.MustConstFlatData(func(f any) { out = append(out, f.([]float32)...) })
	return out
}

func maxAbsDiff(a, b []float32) float64 {
	if len(a) != len(b) {
		return math.Inf(1)
	}
	d := 0.0
	for i := range a {
		d = math.Max(d, math.Abs(float64(a[i])-float64(b[i])))
	}
	return d
}

// plainLogits runs m without hooks.
func plainLogits(t testing.TB, m *models.Model, b *data.Batch) (logits []float32, loss float32) {
	t.Helper()
	out, _ := run(t, forwardExec(t, m, models.Options{}), idsTensor(b))
	return out[0], out[1][0]
}
