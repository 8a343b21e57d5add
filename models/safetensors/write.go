package safetensors

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"unicode/utf8"
)

// Tensor is a tensor to write: its raw little-endian, row-major bytes with
// their dtype and shape. The From* helpers build one from Go slices.
type Tensor struct {
	// Name is the header key; it must be valid UTF-8 and not "__metadata__".
	Name string
	// DType is the element type.
	DType DType
	// Shape is the row-major shape; nil or empty for a scalar.
	Shape []int
	// Data holds the elements, little-endian; its length must equal the
	// element count times the dtype's size.
	Data []byte
}

// Write writes tensors and metadata to path as a .safetensors file laid out
// exactly as Python's safetensors (safetensors.torch.save_file, which
// transformers' save_pretrained calls) lays it out:
//   - tensors sorted by dtype, in the descending order of the Rust enum
//     (see [DType]; e.g. I64 before F64 before F32 before BF16), then by
//     name, with contiguous data offsets from 0;
//   - the header is compact JSON (serde_json's escaping) with
//     "__metadata__" first, then the tensors in that order, padded with
//     spaces to a multiple of 8 bytes, so the data starts 8-aligned in the
//     file and, with the dtype order, each tensor at a multiple of its
//     element size;
//   - metadata == nil writes no "__metadata__" key (save_file(...,
//     metadata=None)); a non-nil empty map writes "__metadata__":{}. Pass
//     {"format": "pt"} to match transformers.
//
// With one metadata key or none the output is byte-identical to Python's;
// with several keys Python's order follows a Rust HashMap (it varies from run
// to run) while Write sorts them.
//
// The file is written to a temporary file in the same directory, synced and
// renamed over path, so path is either the old file or the complete new one,
// never a partial file; a File still open on the old path keeps reading the
// old data. The new file has mode 0644.
func Write(path string, tensors []Tensor, metadata map[string]string) error {
	hdr, ordered, err := prepare(tensors, metadata)
	if err != nil {
		return fmt.Errorf("safetensors %s: %w", path, err)
	}
	err = writeAtomic(path, func(w io.Writer) error {
		var n [8]byte
		binary.LittleEndian.PutUint64(n[:], uint64(len(hdr)))
		if _, err := w.Write(n[:]); err != nil {
			return err
		}
		if _, err := w.Write(hdr); err != nil {
			return err
		}
		for _, t := range ordered {
			if _, err := w.Write(t.Data); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("safetensors %s: %w", path, err)
	}
	return nil
}

// prepare validates tensors and returns the header and the tensors in
// write order.
func prepare(tensors []Tensor, metadata map[string]string) ([]byte, []*Tensor, error) {
	entries, err := checkTensors(tensors)
	if err != nil {
		return nil, nil, err
	}
	for k, v := range metadata {
		if !utf8.ValidString(k) || !utf8.ValidString(v) {
			return nil, nil, fmt.Errorf("metadata %q: key and value must be valid UTF-8", k)
		}
	}
	byName := make(map[string]*Tensor, len(tensors))
	for i := range tensors {
		byName[tensors[i].Name] = &tensors[i]
	}
	writeOrder(entries)
	hdr, err := encodeHeader(entries, metadata)
	if err != nil {
		return nil, nil, err
	}
	ordered := make([]*Tensor, len(entries))
	for i, e := range entries {
		ordered[i] = byName[e.name]
	}
	return hdr, ordered, nil
}

// checkTensors validates names, dtypes, shapes and data lengths.
func checkTensors(tensors []Tensor) ([]headerEntry, error) {
	entries := make([]headerEntry, len(tensors))
	seen := make(map[string]bool, len(tensors))
	for i, t := range tensors {
		switch {
		case t.Name == metadataKey:
			return nil, fmt.Errorf("tensor %q: the name is reserved for the metadata", t.Name)
		case !utf8.ValidString(t.Name):
			return nil, fmt.Errorf("tensor %q: the name is not valid UTF-8", t.Name)
		case seen[t.Name]:
			return nil, fmt.Errorf("tensor %q: the name appears twice", t.Name)
		case !t.DType.Valid():
			return nil, fmt.Errorf("tensor %q: invalid dtype %v", t.Name, t.DType)
		}
		seen[t.Name] = true
		size, err := byteSize(t.DType, t.Shape)
		if err != nil {
			return nil, fmt.Errorf("tensor %q: %v", t.Name, err)
		}
		if int64(len(t.Data)) != size {
			return nil, fmt.Errorf("tensor %q: shape %v of %v needs %d bytes, Data has %d", t.Name, t.Shape, t.DType, size, len(t.Data))
		}
		entries[i] = headerEntry{name: t.Name, dtype: t.DType, shape: t.Shape, size: size}
	}
	return entries, nil
}

// writeAtomic writes path through a synced temporary file in the same
// directory and a rename; on any error the temporary file is removed.
func writeAtomic(path string, write func(io.Writer) error) (err error) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	tmp, err := os.CreateTemp(dir, "."+base+".tmp-*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	bw := bufio.NewWriterSize(tmp, 1<<20)
	if err = write(bw); err != nil {
		return err
	}
	if err = bw.Flush(); err != nil {
		return err
	}
	if err = tmp.Chmod(0o644); err != nil {
		return err
	}
	if err = tmp.Sync(); err != nil {
		return err
	}
	if err = tmp.Close(); err != nil {
		return err
	}
	if err = os.Rename(tmp.Name(), path); err != nil {
		return err
	}
	if serr := syncDir(dir); serr != nil {
		// The data is in place; only the rename's durability is in doubt.
		return fmt.Errorf("syncing directory %s after rename: %w", dir, serr)
	}
	return nil
}

// checkShape returns an error unless shape holds n elements.
func checkShape(name string, shape []int, n int) error {
	want := 1
	for i, s := range shape {
		if s < 0 {
			return fmt.Errorf("safetensors: tensor %q: shape %v: dimension %d is negative", name, shape, i)
		}
		if s != 0 && want > math.MaxInt/s {
			return fmt.Errorf("safetensors: tensor %q: shape %v overflows", name, shape)
		}
		want *= s
	}
	if want != n {
		return fmt.Errorf("safetensors: tensor %q: shape %v holds %d elements, data has %d", name, shape, want, n)
	}
	return nil
}

// FromFloat32 builds a tensor of dtype F32, F16, BF16 or F64 from data.
// F16 and BF16 are rounded to nearest, ties to even, as torch's .half() and
// .bfloat16() do (see [Float32ToF16] and [Float32ToBF16]); F64 is exact.
// len(data) must equal the product of shape. Shape is copied.
func FromFloat32(name string, shape []int, data []float32, dtype DType) (Tensor, error) {
	if err := checkShape(name, shape, len(data)); err != nil {
		return Tensor{}, err
	}
	t := Tensor{Name: name, DType: dtype, Shape: append([]int{}, shape...)}
	switch dtype {
	case F32:
		t.Data = make([]byte, 4*len(data))
		for i, v := range data {
			binary.LittleEndian.PutUint32(t.Data[4*i:], math.Float32bits(v))
		}
	case F16:
		t.Data = make([]byte, 2*len(data))
		for i, v := range data {
			binary.LittleEndian.PutUint16(t.Data[2*i:], Float32ToF16(v))
		}
	case BF16:
		t.Data = make([]byte, 2*len(data))
		for i, v := range data {
			binary.LittleEndian.PutUint16(t.Data[2*i:], Float32ToBF16(v))
		}
	case F64:
		t.Data = make([]byte, 8*len(data))
		for i, v := range data {
			binary.LittleEndian.PutUint64(t.Data[8*i:], math.Float64bits(float64(v)))
		}
	default:
		return Tensor{}, fmt.Errorf("safetensors: tensor %q: %w: float32 to %v (F32, F16, BF16 and F64 are written)", name, ErrDType, dtype)
	}
	return t, nil
}

// FromFloat64 builds a tensor of dtype F64, F32, F16 or BF16 from data. F32
// is rounded to nearest even (see [Float64ToFloat32]); F16 and BF16 are
// rounded through float32, as torch converts a float64 tensor to half or
// bfloat16 (so 1 + 2^-11 + 2^-40 becomes 1.0 in F16, not the nearest half
// 1 + 2^-10).
func FromFloat64(name string, shape []int, data []float64, dtype DType) (Tensor, error) {
	if err := checkShape(name, shape, len(data)); err != nil {
		return Tensor{}, err
	}
	if dtype == F64 {
		t := Tensor{Name: name, DType: F64, Shape: append([]int{}, shape...), Data: make([]byte, 8*len(data))}
		for i, v := range data {
			binary.LittleEndian.PutUint64(t.Data[8*i:], math.Float64bits(v))
		}
		return t, nil
	}
	if dtype != F32 && dtype != F16 && dtype != BF16 {
		return Tensor{}, fmt.Errorf("safetensors: tensor %q: %w: float64 to %v (F64, F32, F16 and BF16 are written)", name, ErrDType, dtype)
	}
	f32 := make([]float32, len(data))
	for i, v := range data {
		f32[i] = Float64ToFloat32(v)
	}
	return FromFloat32(name, shape, f32, dtype)
}

// FromInt64 builds an I64 tensor (token ids, masks) from data.
func FromInt64(name string, shape []int, data []int64) (Tensor, error) {
	if err := checkShape(name, shape, len(data)); err != nil {
		return Tensor{}, err
	}
	t := Tensor{Name: name, DType: I64, Shape: append([]int{}, shape...), Data: make([]byte, 8*len(data))}
	for i, v := range data {
		binary.LittleEndian.PutUint64(t.Data[8*i:], uint64(v))
	}
	return t, nil
}

// FromInt32 builds an I32 tensor from data.
func FromInt32(name string, shape []int, data []int32) (Tensor, error) {
	if err := checkShape(name, shape, len(data)); err != nil {
		return Tensor{}, err
	}
	t := Tensor{Name: name, DType: I32, Shape: append([]int{}, shape...), Data: make([]byte, 4*len(data))}
	for i, v := range data {
		binary.LittleEndian.PutUint32(t.Data[4*i:], uint32(v))
	}
	return t, nil
}

// FromUint8 builds a U8 tensor from data (copied).
func FromUint8(name string, shape []int, data []uint8) (Tensor, error) {
	if err := checkShape(name, shape, len(data)); err != nil {
		return Tensor{}, err
	}
	return Tensor{Name: name, DType: U8, Shape: append([]int{}, shape...), Data: append([]byte{}, data...)}, nil
}

// FromBool builds a BOOL tensor from data (one byte per element, 0 or 1).
func FromBool(name string, shape []int, data []bool) (Tensor, error) {
	if err := checkShape(name, shape, len(data)); err != nil {
		return Tensor{}, err
	}
	t := Tensor{Name: name, DType: BOOL, Shape: append([]int{}, shape...), Data: make([]byte, len(data))}
	for i, v := range data {
		if v {
			t.Data[i] = 1
		}
	}
	return t, nil
}
