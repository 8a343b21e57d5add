// Package adapterio reads and writes the two files of a PEFT adapter folder
// (adapter_config.json and adapter_model.safetensors) for the adapter
// packages, and reads typed fields out of a decoded config.
package adapterio

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"

	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/gomlx/ml/model"

	"github.com/lethe-ml/lethe/models/safetensors"
	"github.com/lethe-ml/lethe/peft/internal/host"
	"github.com/lethe-ml/lethe/peft/internal/jsonfile"
)

// File names in an adapter folder, as PEFT names them.
const (
	ConfigName  = "adapter_config.json"
	WeightsName = "adapter_model.safetensors"
)

// ReadConfig reads dir/adapter_config.json as an ordered object.
func ReadConfig(dir string) (*jsonfile.Object, string, error) {
	path := filepath.Join(dir, ConfigName)
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, path, err
	}
	v, err := jsonfile.Decode(data)
	if err != nil {
		return nil, path, fmt.Errorf("%s: %w", path, err)
	}
	obj, ok := v.(*jsonfile.Object)
	if !ok {
		return nil, path, fmt.Errorf("%s: not a JSON object", path)
	}
	return obj, path, nil
}

// WriteConfig writes obj to dir/adapter_config.json as PEFT does
// (json.dumps(indent=2, sort_keys=True), no trailing newline), through a
// temporary file renamed into place.
func WriteConfig(dir string, obj *jsonfile.Object) error {
	data, err := jsonfile.Encode(obj)
	if err != nil {
		return err
	}
	return writeAtomic(filepath.Join(dir, ConfigName), data)
}

func writeAtomic(path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".tmp-"+filepath.Base(path)+"-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// WriteWeights writes tensors to dir/adapter_model.safetensors with the
// metadata {"format": "pt"} that PEFT writes.
func WriteWeights(dir string, ts []safetensors.Tensor) error {
	return safetensors.Write(filepath.Join(dir, WeightsName), ts, map[string]string{"format": "pt"})
}

// VarTensor converts a variable into a file tensor named name, in the
// variable's dtype; a rank-2 variable is transposed when transpose is set
// (lethe stores adapter matrices [in, out], files hold torch's [out, in]).
func VarTensor(name string, v *model.Variable, transpose bool) (safetensors.Tensor, error) {
	data, dims, err := host.Read(v)
	if err != nil {
		return safetensors.Tensor{}, err
	}
	if transpose {
		if len(dims) != 2 {
			return safetensors.Tensor{}, fmt.Errorf("variable %s: cannot transpose shape %v", v.Path(), dims)
		}
		m := (&host.Matrix{Rows: dims[0], Cols: dims[1], Data: data}).T()
		data, dims = m.Data, []int{m.Rows, m.Cols}
	}
	dt, ok := map[dtypes.DType]safetensors.DType{
		dtypes.Float32: safetensors.F32, dtypes.BFloat16: safetensors.BF16, dtypes.Float16: safetensors.F16,
	}[v.DType()]
	if !ok {
		return safetensors.Tensor{}, fmt.Errorf("variable %s has dtype %s", v.Path(), v.DType())
	}
	return safetensors.FromFloat32(name, dims, data, dt)
}

// Weights is an open adapter_model.safetensors whose tensors are consumed
// one by one, so that tensors nobody asked for can be reported.
type Weights struct {
	f    *safetensors.File
	used map[string]bool
}

// OpenWeights opens dir/adapter_model.safetensors.
func OpenWeights(dir string) (*Weights, error) {
	f, err := safetensors.Open(filepath.Join(dir, WeightsName))
	if err != nil {
		return nil, err
	}
	return &Weights{f: f, used: map[string]bool{}}, nil
}

// Close closes the file.
func (w *Weights) Close() error { return w.f.Close() }

// Has reports whether the file holds key.
func (w *Weights) Has(key string) bool {
	_, ok := w.f.Info(key)
	return ok
}

// Matrix reads key, which must have shape dims, as float32 values; with
// transpose set a matrix is returned transposed (torch's [out, in] to
// lethe's [in, out]).
func (w *Weights) Matrix(key string, dims []int, transpose bool) ([]float32, error) {
	info, ok := w.f.Info(key)
	if !ok {
		return nil, fmt.Errorf("%s: tensor %q is missing (was the adapter made for this model and config?)", w.f.Path(), key)
	}
	if !slices.Equal(info.Shape, dims) {
		return nil, fmt.Errorf("%s: tensor %q has shape %v, the model and config imply %v", w.f.Path(), key, info.Shape, dims)
	}
	vals, err := w.f.Float32(key)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", w.f.Path(), err)
	}
	w.used[key] = true
	if transpose {
		vals = (&host.Matrix{Rows: dims[0], Cols: dims[1], Data: vals}).T().Data
	}
	return vals, nil
}

// Unused returns the keys of the file that were not read, sorted.
func (w *Weights) Unused() []string {
	var out []string
	for _, k := range w.f.Names() {
		if !w.used[k] {
			out = append(out, k)
		}
	}
	slices.Sort(out)
	return out
}

// Path is the file's path.
func (w *Weights) Path() string { return w.f.Path() }

// Fields reads typed values out of a decoded config, collecting the errors
// (each naming its field).
type Fields struct {
	Obj  *jsonfile.Object
	Errs []error
}

func (f *Fields) fail(key string, want string, v any) {
	f.Errs = append(f.Errs, fmt.Errorf("%s: want %s, got %v", key, want, v))
}

// Err joins the errors.
func (f *Fields) Err() error { return errors.Join(f.Errs...) }

// Has reports whether key is present and not null.
func (f *Fields) Has(key string) bool {
	v, ok := f.Obj.Get(key)
	return ok && v != nil
}

// Int reads an integer field (def when absent or null).
func (f *Fields) Int(key string, def int) int {
	v, ok := f.Obj.Get(key)
	if !ok || v == nil {
		return def
	}
	n, isNum := v.(json.Number)
	if !isNum {
		f.fail(key, "an integer", v)
		return def
	}
	x, err := n.Float64()
	if err != nil || x != math.Trunc(x) {
		f.fail(key, "an integer", v)
		return def
	}
	return int(x)
}

// Float reads a number field.
func (f *Fields) Float(key string, def float64) float64 {
	v, ok := f.Obj.Get(key)
	if !ok || v == nil {
		return def
	}
	n, isNum := v.(json.Number)
	if !isNum {
		f.fail(key, "a number", v)
		return def
	}
	x, err := n.Float64()
	if err != nil {
		f.fail(key, "a number", v)
		return def
	}
	return x
}

// Bool reads a boolean field.
func (f *Fields) Bool(key string, def bool) bool {
	v, ok := f.Obj.Get(key)
	if !ok || v == nil {
		return def
	}
	b, isBool := v.(bool)
	if !isBool {
		f.fail(key, "true or false", v)
		return def
	}
	return b
}

// String reads a string field.
func (f *Fields) String(key string, def string) string {
	v, ok := f.Obj.Get(key)
	if !ok || v == nil {
		return def
	}
	s, isStr := v.(string)
	if !isStr {
		f.fail(key, "a string", v)
		return def
	}
	return s
}

// Strings reads a field holding a string or a list of strings (a lone
// string becomes a one-element list); nil when absent or null.
func (f *Fields) Strings(key string) []string {
	v, ok := f.Obj.Get(key)
	if !ok || v == nil {
		return nil
	}
	switch x := v.(type) {
	case string:
		return []string{x}
	case []any:
		out := make([]string, 0, len(x))
		for _, e := range x {
			s, ok := e.(string)
			if !ok {
				f.fail(key, "strings", e)
				return nil
			}
			out = append(out, s)
		}
		return out
	}
	f.fail(key, "a string or a list of strings", v)
	return nil
}

// Ints reads a field holding an integer or a list of integers; nil when
// absent or null.
func (f *Fields) Ints(key string) []int {
	v, ok := f.Obj.Get(key)
	if !ok || v == nil {
		return nil
	}
	one := func(e any) (int, bool) {
		n, ok := e.(json.Number)
		if !ok {
			return 0, false
		}
		i, err := n.Int64()
		return int(i), err == nil
	}
	if i, ok := one(v); ok {
		return []int{i}
	}
	x, ok := v.([]any)
	if !ok {
		f.fail(key, "an integer or a list of integers", v)
		return nil
	}
	out := make([]int, 0, len(x))
	for _, e := range x {
		i, ok := one(e)
		if !ok {
			f.fail(key, "integers", e)
			return nil
		}
		out = append(out, i)
	}
	return out
}

// Set writes a field, keeping the value already there when it is the same
// JSON value (so that re-saving a file keeps its number formatting).
func Set(obj *jsonfile.Object, key string, v any) {
	if old, ok := obj.Get(key); ok && jsonfile.Equal(old, v) {
		return
	}
	obj.Set(key, v)
}

// Number returns v as an int when it is integral (Python writes 8, not 8.0,
// for an int field), else as a float64.
func Number(v float64) any {
	if v == math.Trunc(v) && math.Abs(v) < 1<<53 {
		return int(v)
	}
	return v
}
