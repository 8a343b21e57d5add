// Package host does the small amount of linear algebra adapters need
// outside graphs (initialisation, merging, weighted combinations) on
// float32 values held in Go memory, and moves values between GoMLX
// variables and Go slices in any float dtype the models use.
package host

import (
	"encoding/binary"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"runtime"
	"sync"

	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/shapes"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"

	"github.com/lethe-ml/lethe/models/safetensors"
)

// Matrix is a row-major float32 matrix.
type Matrix struct {
	Rows, Cols int
	Data       []float32
}

// NewMatrix returns a zero rows×cols matrix.
func NewMatrix(rows, cols int) *Matrix {
	return &Matrix{Rows: rows, Cols: cols, Data: make([]float32, rows*cols)}
}

// At returns element (i, j).
func (m *Matrix) At(i, j int) float32 { return m.Data[i*m.Cols+j] }

// T returns the transpose.
func (m *Matrix) T() *Matrix {
	out := NewMatrix(m.Cols, m.Rows)
	for i := 0; i < m.Rows; i++ {
		for j := 0; j < m.Cols; j++ {
			out.Data[j*m.Rows+i] = m.Data[i*m.Cols+j]
		}
	}
	return out
}

// Clone returns a copy.
func (m *Matrix) Clone() *Matrix {
	return &Matrix{Rows: m.Rows, Cols: m.Cols, Data: append([]float32(nil), m.Data...)}
}

// MatMul returns a·b, accumulating in float64, rows in parallel.
func MatMul(a, b *Matrix) *Matrix {
	if a.Cols != b.Rows {
		panic(fmt.Sprintf("host.MatMul: %dx%d · %dx%d", a.Rows, a.Cols, b.Rows, b.Cols))
	}
	out := NewMatrix(a.Rows, b.Cols)
	parallelRows(a.Rows, func(i int) {
		acc := make([]float64, b.Cols)
		for k := 0; k < a.Cols; k++ {
			av := float64(a.Data[i*a.Cols+k])
			if av == 0 {
				continue
			}
			row := b.Data[k*b.Cols : (k+1)*b.Cols]
			for j, bv := range row {
				acc[j] += av * float64(bv)
			}
		}
		for j, v := range acc {
			out.Data[i*b.Cols+j] = float32(v)
		}
	})
	return out
}

// parallelRows runs f(i) for i in [0, n) on all CPUs.
func parallelRows(n int, f func(i int)) {
	workers := min(runtime.GOMAXPROCS(0), n)
	if workers <= 1 {
		for i := 0; i < n; i++ {
			f(i)
		}
		return
	}
	var wg sync.WaitGroup
	next := make(chan int, n)
	for i := 0; i < n; i++ {
		next <- i
	}
	close(next)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				f(i)
			}
		}()
	}
	wg.Wait()
}

// Float32s returns a tensor's values as float32 (converting bfloat16,
// float16 and float64) and its dimensions.
func Float32s(t *tensors.Tensor) ([]float32, []int, error) {
	dims := t.Shape().Dimensions
	n := t.Shape().Size()
	out := make([]float32, n)
	var err error
	switch t.DType() {
	case dtypes.Float32:
		err = t.ConstFlatData(func(flat any) { copy(out, flat.([]float32)) })
	case dtypes.Float64:
		err = t.ConstFlatData(func(flat any) {
			for i, v := range flat.([]float64) {
				out[i] = float32(v)
			}
		})
	case dtypes.BFloat16, dtypes.Float16:
		bf := t.DType() == dtypes.BFloat16
		err = t.ConstBytes(func(b []byte) {
			for i := range out {
				h := binary.LittleEndian.Uint16(b[2*i:])
				if bf {
					out[i] = safetensors.BF16ToFloat32(h)
				} else {
					out[i] = safetensors.F16ToFloat32(h)
				}
			}
		})
	default:
		return nil, nil, fmt.Errorf("dtype %s is not a float dtype", t.DType())
	}
	if err != nil {
		return nil, nil, err
	}
	return out, append([]int(nil), dims...), nil
}

// Tensor builds a tensor of dtype dt (float32, float64, bfloat16 or
// float16, rounding to nearest even) from float32 values.
func Tensor(data []float32, dt dtypes.DType, dims ...int) (*tensors.Tensor, error) {
	switch dt {
	case dtypes.Float32:
		return tensors.FromFlatDataAndDimensions(append([]float32(nil), data...), dims...), nil
	case dtypes.Float64:
		d := make([]float64, len(data))
		for i, v := range data {
			d[i] = float64(v)
		}
		return tensors.FromFlatDataAndDimensions(d, dims...), nil
	case dtypes.BFloat16, dtypes.Float16:
		t := tensors.FromShape(shapes.Make(dt, dims...))
		err := t.MutableBytes(func(b []byte) {
			for i, v := range data {
				var h uint16
				if dt == dtypes.BFloat16 {
					h = safetensors.Float32ToBF16(v)
				} else {
					h = safetensors.Float32ToF16(v)
				}
				binary.LittleEndian.PutUint16(b[2*i:], h)
			}
		})
		return t, err
	}
	return nil, fmt.Errorf("dtype %s is not a float dtype", dt)
}

// Read returns a variable's value as float32 values and dimensions.
func Read(v *model.Variable) ([]float32, []int, error) {
	t, err := v.Value()
	if err != nil {
		return nil, nil, fmt.Errorf("variable %s: %w", v.Path(), err)
	}
	data, dims, err := Float32s(t)
	if err != nil {
		return nil, nil, fmt.Errorf("variable %s: %w", v.Path(), err)
	}
	return data, dims, nil
}

// ReadMatrix returns a rank-2 variable as a Matrix.
func ReadMatrix(v *model.Variable) (*Matrix, error) {
	data, dims, err := Read(v)
	if err != nil {
		return nil, err
	}
	if len(dims) != 2 {
		return nil, fmt.Errorf("variable %s has shape %v, want a matrix", v.Path(), dims)
	}
	return &Matrix{Rows: dims[0], Cols: dims[1], Data: data}, nil
}

// Write sets a variable's value from float32 values, in the variable's
// dtype and shape.
func Write(v *model.Variable, data []float32) error {
	if len(data) != v.Shape().Size() {
		return fmt.Errorf("variable %s has %d values, got %d", v.Path(), v.Shape().Size(), len(data))
	}
	t, err := Tensor(data, v.DType(), v.Shape().Dimensions...)
	if err != nil {
		return fmt.Errorf("variable %s: %w", v.Path(), err)
	}
	if err := v.SetValue(t); err != nil {
		return fmt.Errorf("variable %s: %w", v.Path(), err)
	}
	return nil
}

// NewRNG returns the generator that initialises adapter name from seed:
// PCG seeded with (seed, FNV-1a of the name), so two adapters of one seed
// differ and an adapter's draws do not depend on the others'.
func NewRNG(seed uint64, name string) *rand.Rand {
	h := fnv.New64a()
	h.Write([]byte(name))
	return rand.New(rand.NewPCG(seed, h.Sum64()))
}

// Uniform draws n values from U(−bound, bound).
func Uniform(rng *rand.Rand, n int, bound float64) []float32 {
	out := make([]float32, n)
	for i := range out {
		out[i] = float32((2*rng.Float64() - 1) * bound)
	}
	return out
}
