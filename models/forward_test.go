package models

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/gomlx/compute"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"

	"github.com/lethe-ml/lethe/internal/backend"
	"github.com/lethe-ml/lethe/models/safetensors"
)

// fixtureArchs are the tiny checkpoints of testdata/hf, made by transformers
// 5.17 with reference outputs in expected.safetensors.
var fixtureArchs = []string{"llama", "llama3_rope", "qwen2", "qwen3", "mistral", "gemma", "mixtral", "gpt2"}

// testBackend is the Go backend with sequential ops (errors come back as
// errors rather than crashing a worker goroutine), or the backend named by
// $LETHE_TEST_BACKEND (e.g. "xla:cuda,tf32=false" on a GPU machine).
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

// expected reads a fixture's expected.safetensors.
type expected struct{ f *safetensors.File }

func loadExpected(t testing.TB, arch string) expected {
	t.Helper()
	f, err := safetensors.Open(filepath.Join("testdata", "hf", arch, "expected.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return expected{f}
}

func (e expected) floats(t testing.TB, name string) []float32 {
	t.Helper()
	v, err := e.f.Float32(name)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func (e expected) ints(t testing.TB, name string) ([]int32, []int) {
	t.Helper()
	v, err := e.f.Int64(name)
	if err != nil {
		t.Fatal(err)
	}
	info, _ := e.f.Info(name)
	out := make([]int32, len(v))
	for i, x := range v {
		out[i] = int32(x)
	}
	return out, info.Shape
}

func loadFixture(t testing.TB, arch string) *Model {
	t.Helper()
	m, err := Load(filepath.Join("testdata", "hf", arch), LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return m
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

func flat(t testing.TB, x *tensors.Tensor) []float32 {
	t.Helper()
	var out []float32
	x.MustConstFlatData(func(f any) { out = append(out, f.([]float32)...) })
	return out
}

// TestForwardMatchesTransformers checks logits and every hidden state
// within 1e-4 and the loss within 1e-5 of transformers, for every fixture.
func TestForwardMatchesTransformers(t *testing.T) {
	b := testBackend(t)
	for _, arch := range fixtureArchs {
		t.Run(arch, func(t *testing.T) {
			m := loadFixture(t, arch)
			exp := loadExpected(t, arch)
			ids, shape := exp.ints(t, "input_ids")
			idsT := tensors.FromFlatDataAndDimensions(ids, shape...)
			exec, err := model.NewExec(b, m.Store, func(_ *model.Scope, ids *Node) []*Node {
				out := m.Forward(Inputs{IDs: ids, Labels: ids}, Options{})
				return append([]*Node{out.Logits, out.Loss}, out.Hidden...)
			})
			if err != nil {
				t.Fatal(err)
			}
			outs, err := exec.Call(idsT)
			if err != nil {
				t.Fatal(err)
			}
			logits, want := flat(t, outs[0]), exp.floats(t, "logits")
			if len(want) != 2*12*320 {
				t.Fatalf("expected logits have %d values", len(want))
			}
			d := maxAbsDiff(logits, want)
			t.Logf("max |logits - transformers| = %.3g, loss %v vs %v", d, flat(t, outs[1]), exp.floats(t, "loss"))
			if d > 1e-4 {
				t.Errorf("logits differ by %g", d)
			}
			if d := maxAbsDiff(flat(t, outs[1]), exp.floats(t, "loss")); d > 1e-5 {
				t.Errorf("loss %v, want %v", flat(t, outs[1]), exp.floats(t, "loss"))
			}
			for i, h := range outs[2:] {
				if d := maxAbsDiff(flat(t, h), exp.floats(t, fmt.Sprintf("hidden_states.%d", i))); d > 1e-4 {
					t.Errorf("hidden_states.%d differ by %g", i, d)
				}
			}
		})
	}
}

// TestPackedRows checks that two sequences packed in one row with segment
// ids and restarting positions give the logits each gets alone.
func TestPackedRows(t *testing.T) {
	b := testBackend(t)
	for _, arch := range []string{"llama", "gpt2"} {
		m := loadFixture(t, arch)
		exp := loadExpected(t, arch)
		ids, _ := exp.ints(t, "input_ids") // two rows of 12
		a, c := ids[:7], ids[12:17]        // 7 + 5 tokens packed into 12
		packed := append(append([]int32{}, a...), c...)
		seg := []int32{1, 1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2}
		pos := []int32{0, 1, 2, 3, 4, 5, 6, 0, 1, 2, 3, 4}
		run := func(ids, seg, pos []int32) []float32 {
			out, err := model.CallOnce(b, m.Store, func(_ *model.Scope, ids, seg, pos *Node) *Node {
				in := Inputs{IDs: ids, Positions: pos}
				if seg.Shape().Dimensions[1] == ids.Shape().Dimensions[1] && len(seg.Shape().Dimensions) == 2 {
					in.SegmentIDs = seg
				}
				return m.Forward(in, Options{}).Logits
			}, tensors.FromFlatDataAndDimensions(ids, 1, len(ids)), tensors.FromFlatDataAndDimensions(seg, 1, len(seg)),
				tensors.FromFlatDataAndDimensions(pos, 1, len(pos)))
			if err != nil {
				t.Fatal(err)
			}
			return flat(t, out)
		}
		got := run(packed, seg, pos)
		V := 320
		alone := append(run(a, seg[:7], pos[:7]), run(c, seg[7:], pos[7:])...)
		if d := maxAbsDiff(got, alone); d > 1e-5 || len(got) != 12*V {
			t.Errorf("%s: packed logits differ from separate ones by %g", arch, d)
		}
	}
}
