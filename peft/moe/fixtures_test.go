package moe

import (
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/gomlx/compute"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"

	"github.com/lethe-ml/lethe/data"
	"github.com/lethe-ml/lethe/internal/backend"
	"github.com/lethe-ml/lethe/models"
	"github.com/lethe-ml/lethe/models/safetensors"
	"github.com/lethe-ml/lethe/peft/internal/host"
)

const fixtures = "../../models/testdata/hf"

func testBackend(t testing.TB) compute.Backend {
	t.Helper()
	spec := os.Getenv("LETHE_TEST_BACKEND")
	if spec == "" {
		spec = "go:ops_sequential"
	}
	b, _, err := backend.New(spec)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func loadModel(t testing.TB) *models.Model { t.Helper(); return loadArch(t, "llama") }

func loadArch(t testing.TB, arch string) *models.Model {
	t.Helper()
	m, err := models.Load(filepath.Join(fixtures, arch), models.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func openFile(t testing.TB, path string) *safetensors.File {
	t.Helper()
	f, err := safetensors.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

// fixture returns the llama fixture's input_ids [2, 12] and its base
// logits.
func fixture(t testing.TB) ([]int32, []float32) { t.Helper(); return archFixture(t, "llama") }

// archFixture returns an architecture's fixture input_ids and base logits.
func archFixture(t testing.TB, arch string) ([]int32, []float32) {
	t.Helper()
	f := openFile(t, filepath.Join(fixtures, arch, "expected.safetensors"))
	v, err := f.Int64("input_ids")
	if err != nil {
		t.Fatal(err)
	}
	ids := make([]int32, len(v))
	for i, x := range v {
		ids[i] = int32(x)
	}
	logits, err := f.Float32("logits")
	if err != nil {
		t.Fatal(err)
	}
	return ids, logits
}

// fixtureBatch is input_ids as a training batch: labels = ids, no padding.
func fixtureBatch(ids []int32) *data.Batch {
	b := &data.Batch{Size: 2, Length: 12}
	for i, id := range ids {
		b.InputIDs = append(b.InputIDs, id)
		b.Labels = append(b.Labels, id)
		b.AttentionMask = append(b.AttentionMask, 1)
		b.PositionIDs = append(b.PositionIDs, int32(i%12))
		b.SegmentIDs = append(b.SegmentIDs, 1)
	}
	return b
}

func flat(t testing.TB, x *tensors.Tensor) []float32 {
	t.Helper()
	v, _, err := host.Float32s(x)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func readVar(t testing.TB, v *model.Variable) []float32 {
	t.Helper()
	vals, _, err := host.Read(v)
	if err != nil {
		t.Fatal(err)
	}
	return vals
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

func maxAbs(a []float32) float64 {
	d := 0.0
	for _, v := range a {
		d = math.Max(d, math.Abs(float64(v)))
	}
	return d
}

// forward returns the logits of ids with hooks; train builds a training
// graph (dropout active).
func forward(t testing.TB, b compute.Backend, m *models.Model, ids []int32, hooks models.Hooks, train bool) []float32 {
	t.Helper()
	out, err := model.CallOnce(b, m.Store, func(scope *model.Scope, ids *Node) *Node {
		scope.SetTraining(ids.Graph(), train)
		return m.Forward(models.Inputs{IDs: ids}, models.Options{Hooks: hooks}).Logits
	}, tensors.FromFlatDataAndDimensions(ids, 2, 12))
	if err != nil {
		t.Fatal(err)
	}
	return flat(t, out)
}
