package safetensors

import (
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"os"
	"slices"
)

// Errors that callers can test for with errors.Is. Errors of these kinds
// wrap them; I/O errors wrap the os error. Every error names the file (or
// directory) and, where there is one, the tensor.
var (
	// ErrFormat marks a file or index that breaks the format: truncated,
	// bad JSON, a header that lies about offsets, shapes or dtypes.
	ErrFormat = errors.New("invalid safetensors data")
	// ErrNotFound marks a request for a tensor the file or checkpoint lacks.
	ErrNotFound = errors.New("tensor not found")
	// ErrDType marks a typed getter asked to convert a dtype it does not
	// convert (for instance Float32 on an I64 tensor).
	ErrDType = errors.New("unsupported dtype conversion")
	// ErrClosed marks a use of a File or Checkpoint after Close.
	ErrClosed = errors.New("file already closed")
)

// TensorInfo describes one tensor of a file.
type TensorInfo struct {
	// Name is the tensor's key in the header.
	Name string
	// DType is the element type.
	DType DType
	// Shape is the row-major shape; empty for a scalar.
	Shape []int
	// Offset is the position of the tensor's first byte in the file
	// (8 + header length + the header's begin offset), so that it can be
	// read with ReadAt on the file's path.
	Offset int64
	// Size is the tensor's size in bytes (end - begin in the header).
	Size int64
}

// NumElements returns the number of elements (the product of Shape; 1 for a
// scalar).
func (t TensorInfo) NumElements() int { return numElements(t.Shape) }

// Reader is the read API shared by a single [File] and a sharded
// [Checkpoint], so that model loaders can take either.
type Reader interface {
	// Names returns the tensor names, sorted.
	Names() []string
	// Info returns a tensor's description.
	Info(name string) (TensorInfo, bool)
	// Metadata returns a copy of the string metadata.
	Metadata() map[string]string
	// Bytes returns a tensor's raw little-endian bytes.
	Bytes(name string) ([]byte, error)
	// Float32 returns a tensor converted to float32.
	Float32(name string) ([]float32, error)
	// Float64 returns a tensor converted to float64.
	Float64(name string) ([]float64, error)
	// Int64 returns an integer or boolean tensor as int64.
	Int64(name string) ([]int64, error)
	// Int32 returns an integer or boolean tensor as int32.
	Int32(name string) ([]int32, error)
	// Bool returns a BOOL tensor.
	Bool(name string) ([]bool, error)
	// Close releases the underlying files.
	Close() error
}

var (
	_ Reader = (*File)(nil)
	_ Reader = (*Checkpoint)(nil)
)

// File is an open .safetensors file. On Linux, macOS and the BSDs the whole
// file is memory-mapped read-only: Open reads only the header, tensors are
// paged in when accessed, and Bytes returns views into the mapping, so a
// checkpoint never needs more RAM than the tensors a caller converts. On
// other platforms the data is read with ReadAt on demand.
//
// A File is safe for concurrent use by several goroutines, except that Close
// must not run concurrently with other methods, and slices returned by Bytes
// must not be used after Close.
//
// As with any memory map, truncating the file while it is open makes reads
// of the lost pages fault (SIGBUS); replace checkpoints by renaming a new
// file over the old one, as [Write] does, never by rewriting them in place.
type File struct {
	path      string
	src       source
	dataStart int64
	hdr       *header
	closed    bool
}

// Open opens and validates a .safetensors file. It reads the 8-byte length
// and the JSON header, checks every rule of the format (see the package
// documentation) and fails with an error naming the file and the offending
// tensor or field; tensor data is not read. Call Close when done.
func Open(path string) (*File, error) {
	src, err := openSource(path)
	if err != nil {
		return nil, fmt.Errorf("safetensors %s: %w", path, err)
	}
	f, err := newFile(path, src)
	if err != nil {
		src.close()
		return nil, err
	}
	return f, nil
}

// newFile parses the header of src; errors name path.
func newFile(path string, src source) (*File, error) {
	size := src.size()
	if size < 8 {
		return nil, fmt.Errorf("safetensors %s: %w: file is %d bytes, shorter than the 8-byte header length (truncated or not a safetensors file?)",
			path, ErrFormat, size)
	}
	lenBytes, err := src.view(0, 8)
	if err != nil {
		return nil, fmt.Errorf("safetensors %s: reading header length: %w", path, err)
	}
	n := binary.LittleEndian.Uint64(lenBytes)
	if n > MaxHeaderSize {
		return nil, fmt.Errorf("safetensors %s: %w: header length %d is over the format's limit of %d bytes (not a safetensors file?)",
			path, ErrFormat, n, MaxHeaderSize)
	}
	if int64(n) > size-8 {
		return nil, fmt.Errorf("safetensors %s: %w: header length %d runs past the end of the %d-byte file (truncated?)",
			path, ErrFormat, n, size)
	}
	hb, err := src.view(8, int64(n))
	if err != nil {
		return nil, fmt.Errorf("safetensors %s: reading header: %w", path, err)
	}
	dataStart := 8 + int64(n)
	h, err := parseHeader(hb, size-dataStart)
	if err != nil {
		return nil, fmt.Errorf("safetensors %s: %w", path, err)
	}
	for i := range h.tensors {
		h.tensors[i].Offset += dataStart
	}
	return &File{path: path, src: src, dataStart: dataStart, hdr: h}, nil
}

// Path returns the path the file was opened with.
func (f *File) Path() string { return f.path }

// Names returns the tensor names, sorted.
func (f *File) Names() []string {
	names := make([]string, len(f.hdr.tensors))
	for i, t := range f.hdr.tensors {
		names[i] = t.Name
	}
	slices.Sort(names)
	return names
}

// Len returns the number of tensors.
func (f *File) Len() int { return len(f.hdr.tensors) }

// Info returns a tensor's description; ok is false if the file has no
// tensor of that name.
func (f *File) Info(name string) (info TensorInfo, ok bool) {
	i, ok := f.hdr.index[name]
	if !ok {
		return TensorInfo{}, false
	}
	info = f.hdr.tensors[i]
	info.Shape = slices.Clone(info.Shape)
	return info, true
}

// Metadata returns a copy of the header's "__metadata__" (transformers
// writes {"format": "pt"}), or nil if the header has none.
func (f *File) Metadata() map[string]string {
	return maps.Clone(f.hdr.metadata)
}

// Bytes returns the raw little-endian bytes of a tensor, in row-major order.
// With the memory map (Linux, macOS, BSDs) the slice is a zero-copy,
// read-only view: it is valid until Close, and writing to it faults. On
// other platforms it is a fresh copy.
func (f *File) Bytes(name string) ([]byte, error) {
	_, b, err := f.tensor(name)
	return b, err
}

// tensor returns a tensor's info and bytes.
func (f *File) tensor(name string) (TensorInfo, []byte, error) {
	if f.closed {
		return TensorInfo{}, nil, fmt.Errorf("safetensors %s: tensor %q: %w", f.path, name, ErrClosed)
	}
	i, ok := f.hdr.index[name]
	if !ok {
		return TensorInfo{}, nil, fmt.Errorf("safetensors %s: tensor %q: %w", f.path, name, ErrNotFound)
	}
	info := f.hdr.tensors[i]
	b, err := f.src.view(info.Offset, info.Size)
	if err != nil {
		return TensorInfo{}, nil, fmt.Errorf("safetensors %s: tensor %q: reading %d bytes at offset %d: %w",
			f.path, name, info.Size, info.Offset, err)
	}
	return info, b, nil
}

// Float32 returns a tensor as a new []float32 in row-major order. It
// converts F32 (copied), F16 and BF16 (exactly: every value is a float32)
// and F64 (rounded to nearest, ties to even, as torch's .float() does;
// magnitudes beyond float32's range become ±Inf). Other dtypes fail with
// ErrDType.
func (f *File) Float32(name string) ([]float32, error) {
	info, b, err := f.tensor(name)
	if err != nil {
		return nil, err
	}
	out, err := toFloat32(info.DType, b)
	if err != nil {
		return nil, fmt.Errorf("safetensors %s: tensor %q: %w", f.path, name, err)
	}
	return out, nil
}

// Float64 returns a tensor as a new []float64. F64, F32, F16 and BF16 are
// converted exactly; other dtypes fail with ErrDType.
func (f *File) Float64(name string) ([]float64, error) {
	info, b, err := f.tensor(name)
	if err != nil {
		return nil, err
	}
	out, err := toFloat64(info.DType, b)
	if err != nil {
		return nil, fmt.Errorf("safetensors %s: tensor %q: %w", f.path, name, err)
	}
	return out, nil
}

// Int64 returns an integer or BOOL tensor as a new []int64. I64, I32, I16,
// I8, U32, U16, U8 and BOOL convert exactly; U64 converts when every value
// fits, otherwise the error names the first element that does not. Float
// dtypes fail with ErrDType.
func (f *File) Int64(name string) ([]int64, error) {
	info, b, err := f.tensor(name)
	if err != nil {
		return nil, err
	}
	out, err := toInt64(info.DType, b)
	if err != nil {
		return nil, fmt.Errorf("safetensors %s: tensor %q: %w", f.path, name, err)
	}
	return out, nil
}

// Int32 returns an integer or BOOL tensor as a new []int32. I32, I16, I8,
// U16, U8 and BOOL convert exactly; I64, U32 and U64 (token ids are usually
// I64) convert when every value fits, otherwise the error names the first
// element that does not. Float dtypes fail with ErrDType.
func (f *File) Int32(name string) ([]int32, error) {
	info, b, err := f.tensor(name)
	if err != nil {
		return nil, err
	}
	out, err := toInt32(info.DType, b)
	if err != nil {
		return nil, fmt.Errorf("safetensors %s: tensor %q: %w", f.path, name, err)
	}
	return out, nil
}

// Bool returns a BOOL tensor as a new []bool (any non-zero byte is true).
// Other dtypes fail with ErrDType.
func (f *File) Bool(name string) ([]bool, error) {
	info, b, err := f.tensor(name)
	if err != nil {
		return nil, err
	}
	if info.DType != BOOL {
		return nil, fmt.Errorf("safetensors %s: tensor %q: %w: %v to bool", f.path, name, ErrDType, info.DType)
	}
	out := make([]bool, len(b))
	for i, v := range b {
		out[i] = v != 0
	}
	return out, nil
}

// Close releases the file (unmapping it). Slices returned by Bytes become
// invalid. Closing twice is a no-op.
func (f *File) Close() error {
	if f.closed {
		return nil
	}
	f.closed = true
	if err := f.src.close(); err != nil {
		return fmt.Errorf("safetensors %s: close: %w", f.path, err)
	}
	return nil
}

// source is where a File's bytes come from: a memory map or ReadAt.
type source interface {
	size() int64
	// view returns n bytes at off; off+n <= size() is guaranteed by callers.
	view(off, n int64) ([]byte, error)
	close() error
}

// bytesSource serves an in-memory file (tests and fuzzing).
type bytesSource []byte

func (b bytesSource) size() int64                       { return int64(len(b)) }
func (b bytesSource) view(off, n int64) ([]byte, error) { return b[off : off+n : off+n], nil }
func (b bytesSource) close() error                      { return nil }

// readAtSource reads from an *os.File on demand; it is the fallback where
// there is no memory map.
type readAtSource struct {
	f *os.File
	n int64
}

func (r *readAtSource) size() int64 { return r.n }

func (r *readAtSource) view(off, n int64) ([]byte, error) {
	if int64(int(n)) != n {
		return nil, fmt.Errorf("%d bytes do not fit in memory on this platform", n)
	}
	b := make([]byte, n)
	if _, err := r.f.ReadAt(b, off); err != nil {
		return nil, err
	}
	return b, nil
}

func (r *readAtSource) close() error { return r.f.Close() }
