package safetensors

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// readHeader returns the JSON header of a file written to path.
func readHeader(t *testing.T, path string) string {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	n := binary.LittleEndian.Uint64(raw)
	return string(raw[8 : 8+n])
}

func TestWriteLayoutMatchesRustSerializer(t *testing.T) {
	must := func(t Tensor, err error) Tensor {
		if err != nil {
			panic(err)
		}
		return t
	}
	tensors := []Tensor{
		must(FromFloat32("b", []int{2}, []float32{1, 2}, F32)),
		must(FromFloat32("a", []int{1}, []float32{3}, F32)),
		must(FromFloat32("h", []int{3}, []float32{1, -2.5, 65504}, BF16)),
		must(FromInt64("ids", []int{1, 1}, []int64{-1})),
		must(FromFloat32("g", nil, []float32{0.5}, F16)),
		must(FromBool("mask", []int{2}, []bool{true, false})),
		must(FromInt32("c", []int{1}, []int32{7})),
	}
	path := filepath.Join(t.TempDir(), "w.safetensors")
	if err := Write(path, tensors, map[string]string{"format": "pt"}); err != nil {
		t.Fatal(err)
	}
	// I64 (rank 21) > F32 (18) > I32 (16) > BF16 (15) > F16 (14) > BOOL (1),
	// then by name; offsets contiguous; the header padded with spaces.
	want := `{"__metadata__":{"format":"pt"},` +
		`"ids":{"dtype":"I64","shape":[1,1],"data_offsets":[0,8]},` +
		`"a":{"dtype":"F32","shape":[1],"data_offsets":[8,12]},` +
		`"b":{"dtype":"F32","shape":[2],"data_offsets":[12,20]},` +
		`"c":{"dtype":"I32","shape":[1],"data_offsets":[20,24]},` +
		`"h":{"dtype":"BF16","shape":[3],"data_offsets":[24,30]},` +
		`"g":{"dtype":"F16","shape":[],"data_offsets":[30,32]},` +
		`"mask":{"dtype":"BOOL","shape":[2],"data_offsets":[32,34]}}`
	want += strings.Repeat(" ", (8-len(want)%8)%8)
	if got := readHeader(t, path); got != want {
		t.Errorf("header\n got %q\nwant %q", got, want)
	}
	raw, _ := os.ReadFile(path)
	data := raw[8+len(want):]
	wantData := []byte{
		0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, // ids -1
		0x00, 0x00, 0x40, 0x40, // a 3
		0x00, 0x00, 0x80, 0x3f, 0x00, 0x00, 0x00, 0x40, // b 1 2
		0x07, 0x00, 0x00, 0x00, // c 7
		0x80, 0x3f, 0x20, 0xc0, 0x80, 0x47, // h bf16 1 -2.5 65504->65536
		0x00, 0x38, // g f16 0.5
		0x01, 0x00, // mask
	}
	if !bytes.Equal(data, wantData) {
		t.Errorf("data\n got % x\nwant % x", data, wantData)
	}
}

func TestWriteMetadataNilEmptyAndSorted(t *testing.T) {
	x, _ := FromUint8("x", []int{1}, []uint8{9})
	tests := []struct {
		name string
		md   map[string]string
		want string
	}{
		{"nil omits the key", nil, `{"x":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}`},
		{"empty writes {}", map[string]string{}, `{"__metadata__":{},"x":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}`},
		{"keys sorted", map[string]string{"z": "1", "a": "2", "m": "3"}, `{"__metadata__":{"a":"2","m":"3","z":"1"},"x":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "m.safetensors")
			if err := Write(path, []Tensor{x}, tt.md); err != nil {
				t.Fatal(err)
			}
			if got := strings.TrimRight(readHeader(t, path), " "); got != tt.want {
				t.Errorf("header %q, want %q", got, tt.want)
			}
			f := mustOpen(t, path)
			if md := f.Metadata(); (md == nil) != (tt.md == nil) || len(md) != len(tt.md) {
				t.Errorf("read back metadata %#v, wrote %#v", md, tt.md)
			}
		})
	}
}

// Names are escaped as serde_json escapes them, and read back intact.
func TestWriteEscapesNamesLikeSerdeJSON(t *testing.T) {
	name := "q\"\\\n\t\x01\x1f\x7f é😀<>&"
	x, _ := FromUint8(name, []int{1}, []uint8{1})
	path := filepath.Join(t.TempDir(), "e.safetensors")
	if err := Write(path, []Tensor{x}, map[string]string{"k\"": "v\n"}); err != nil {
		t.Fatal(err)
	}
	want := `{"__metadata__":{"k\"":"v\n"},"q\"\\\n\t\u0001\u001f` + "\x7f é😀<>&" + `":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}`
	if got := strings.TrimRight(readHeader(t, path), " "); got != want {
		t.Errorf("header\n got %q\nwant %q", got, want)
	}
	f := mustOpen(t, path)
	if !slices.Equal(f.Names(), []string{name}) || f.Metadata()["k\""] != "v\n" {
		t.Errorf("read back %q %q", f.Names(), f.Metadata())
	}
}

// Every dtype survives a write and a read with its exact bytes, and the
// file is laid out in the Rust serializer's order.
func TestRoundTripEveryDType(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	var tensors []Tensor
	for _, d := range DTypes() {
		for _, shape := range [][]int{{2, 4}, {}, {0, 5}} {
			if d.Bits()%8 != 0 && len(shape) == 0 {
				continue // a sub-byte scalar is not a whole byte
			}
			size, err := byteSize(d, shape)
			if err != nil {
				t.Fatal(err)
			}
			data := make([]byte, size)
			for i := range data {
				data[i] = byte(rng.Uint32())
			}
			if d == BOOL {
				for i := range data {
					data[i] &= 1
				}
			}
			name := fmt.Sprintf("%v/%v", d, shape)
			tensors = append(tensors, Tensor{Name: name, DType: d, Shape: shape, Data: data})
		}
	}
	path := filepath.Join(t.TempDir(), "all.safetensors")
	if err := Write(path, tensors, nil); err != nil {
		t.Fatal(err)
	}
	f := mustOpen(t, path)
	if f.Len() != len(tensors) {
		t.Fatalf("%d tensors read, %d written", f.Len(), len(tensors))
	}
	hdrLen := int64(len(readHeader(t, path)))
	if hdrLen%8 != 0 {
		t.Errorf("header length %d is not a multiple of 8", hdrLen)
	}
	for _, w := range tensors {
		info, ok := f.Info(w.Name)
		if !ok {
			t.Fatalf("%s missing", w.Name)
		}
		if info.DType != w.DType || !slices.Equal(info.Shape, w.Shape) || info.Size != int64(len(w.Data)) {
			t.Errorf("%s: read %v %v %d, wrote %v %v %d", w.Name, info.DType, info.Shape, info.Size, w.DType, w.Shape, len(w.Data))
		}
		got, err := f.Bytes(w.Name)
		if err != nil || !bytes.Equal(got, w.Data) {
			t.Errorf("%s: bytes % x (%v), wrote % x", w.Name, got, err, w.Data)
		}
		raw, _ := os.ReadFile(path)
		if !bytes.Equal(raw[info.Offset:info.Offset+info.Size], w.Data) {
			t.Errorf("%s: Offset %d does not point at the data", w.Name, info.Offset)
		}
	}
	// Offsets follow the dtype order (descending), then names.
	byOffset := slices.Clone(tensors)
	slices.SortFunc(byOffset, func(a, b Tensor) int {
		ia, _ := f.Info(a.Name)
		ib, _ := f.Info(b.Name)
		if ia.Offset != ib.Offset {
			return cmpInt64(ia.Offset, ib.Offset)
		}
		return cmpInt64(ia.Size, ib.Size)
	})
	for i := 1; i < len(byOffset); i++ {
		a, b := byOffset[i-1], byOffset[i]
		if a.DType < b.DType {
			t.Errorf("%s (%v) is written before %s (%v)", a.Name, a.DType, b.Name, b.DType)
		}
	}
	// Writing the same tensors again, in another order, gives the same bytes.
	first, _ := os.ReadFile(path)
	slices.Reverse(tensors)
	path2 := filepath.Join(t.TempDir(), "again.safetensors")
	if err := Write(path2, tensors, nil); err != nil {
		t.Fatal(err)
	}
	if second, _ := os.ReadFile(path2); !bytes.Equal(first, second) {
		t.Error("output depends on the input order")
	}
}

func TestTypedGettersConvert(t *testing.T) {
	must := func(t Tensor, err error) Tensor {
		if err != nil {
			panic(err)
		}
		return t
	}
	le := func(n int, vals ...uint64) []byte {
		var b []byte
		for _, v := range vals {
			var word [8]byte
			binary.LittleEndian.PutUint64(word[:], v)
			b = append(b, word[:n]...)
		}
		return b
	}
	tensors := []Tensor{
		must(FromFloat32("f32", []int{3}, []float32{1, -2.5, 0.1}, F32)),
		must(FromFloat32("f16", []int{3}, []float32{1, -2.5, 0.1}, F16)),
		must(FromFloat32("bf16", []int{3}, []float32{1, -2.5, 0.1}, BF16)),
		must(FromFloat64("f64", []int{3}, []float64{1, -2.5, 1e39}, F64)),
		must(FromInt64("i64", []int{3}, []int64{-1, 5, 1 << 40})),
		must(FromInt32("i32", []int{2}, []int32{-7, math.MaxInt32})),
		{Name: "i16", DType: I16, Shape: []int{2}, Data: le(2, 0xfffe, 300)},
		{Name: "u16", DType: U16, Shape: []int{2}, Data: le(2, 0xfffe, 300)},
		{Name: "i8", DType: I8, Shape: []int{2}, Data: []byte{0xff, 7}},
		must(FromUint8("u8", []int{2}, []uint8{255, 7})),
		{Name: "u32", DType: U32, Shape: []int{2}, Data: le(4, 0xffffffff, 3)},
		{Name: "u64", DType: U64, Shape: []int{1}, Data: le(8, 1<<63)},
		{Name: "u64small", DType: U64, Shape: []int{1}, Data: le(8, 42)},
		must(FromBool("bool", []int{3}, []bool{true, false, true})),
		{Name: "f8", DType: F8_E4M3, Shape: []int{1}, Data: []byte{0x38}},
	}
	path := filepath.Join(t.TempDir(), "g.safetensors")
	if err := Write(path, tensors, nil); err != nil {
		t.Fatal(err)
	}
	f := mustOpen(t, path)

	f32s := map[string][]float32{
		"f32":  {1, -2.5, 0.1},
		"f16":  {1, -2.5, 0.0999755859375},
		"bf16": {1, -2.5, 0.10009765625},
		"f64":  {1, -2.5, float32(math.Inf(1))},
	}
	for n, want := range f32s {
		if got, err := f.Float32(n); err != nil || !slices.Equal(got, want) {
			t.Errorf("Float32(%s) = %v, %v; want %v", n, got, err, want)
		}
	}
	if got, err := f.Float64("f64"); err != nil || got[2] != 1e39 {
		t.Errorf("Float64(f64) = %v, %v", got, err)
	}
	if got, err := f.Float64("f16"); err != nil || got[2] != 0.0999755859375 {
		t.Errorf("Float64(f16) = %v, %v", got, err)
	}
	i64s := map[string][]int64{
		"i64": {-1, 5, 1 << 40}, "i32": {-7, math.MaxInt32}, "i16": {-2, 300}, "u16": {65534, 300},
		"i8": {-1, 7}, "u8": {255, 7}, "u32": {4294967295, 3}, "u64small": {42}, "bool": {1, 0, 1},
	}
	for n, want := range i64s {
		if got, err := f.Int64(n); err != nil || !slices.Equal(got, want) {
			t.Errorf("Int64(%s) = %v, %v; want %v", n, got, err, want)
		}
	}
	i32s := map[string][]int32{"i32": {-7, math.MaxInt32}, "i16": {-2, 300}, "u8": {255, 7}, "bool": {1, 0, 1}, "u64small": {42}}
	for n, want := range i32s {
		if got, err := f.Int32(n); err != nil || !slices.Equal(got, want) {
			t.Errorf("Int32(%s) = %v, %v; want %v", n, got, err, want)
		}
	}
	if got, err := f.Bool("bool"); err != nil || !slices.Equal(got, []bool{true, false, true}) {
		t.Errorf("Bool = %v, %v", got, err)
	}
	// Out-of-range narrowing names the element.
	_, err := f.Int32("i64")
	wantErr(t, err, nil, path, `tensor "i64"`, "I64 element 2 is 1099511627776, beyond int32")
	_, err = f.Int32("u32")
	wantErr(t, err, nil, `tensor "u32"`, "U32 element 0 is 4294967295")
	_, err = f.Int64("u64")
	wantErr(t, err, nil, `tensor "u64"`, "U64 element 0 is 9223372036854775808, beyond int64")
	// Unsupported conversions.
	for _, get := range []func(string) error{
		func(n string) error { _, err := f.Float32(n); return err },
		func(n string) error { _, err := f.Float64(n); return err },
	} {
		wantErr(t, get("f8"), ErrDType, `tensor "f8"`, "F8_E4M3")
		wantErr(t, get("i64"), ErrDType, `tensor "i64"`)
	}
	_, err = f.Int64("f16")
	wantErr(t, err, ErrDType, `tensor "f16"`, "F16 to int64")
	_, err = f.Int32("f32")
	wantErr(t, err, ErrDType, `tensor "f32"`, "F32 to int32")
}

func TestWriteRejectsBadTensors(t *testing.T) {
	ok, _ := FromFloat32("ok", []int{1}, []float32{1}, F32)
	tests := []struct {
		name    string
		tensors []Tensor
		want    []string
	}{
		{"duplicate names", []Tensor{ok, ok}, []string{`tensor "ok": the name appears twice`}},
		{"reserved name", []Tensor{{Name: "__metadata__", DType: U8, Shape: []int{0}}}, []string{`"__metadata__": the name is reserved`}},
		{"invalid UTF-8 name", []Tensor{{Name: "a\xff", DType: U8, Shape: []int{0}}}, []string{"not valid UTF-8"}},
		{"invalid dtype", []Tensor{{Name: "d", DType: DType(200), Shape: []int{0}}}, []string{`tensor "d": invalid dtype DType(200)`}},
		{"zero dtype", []Tensor{{Name: "d", Shape: []int{0}}}, []string{`tensor "d": invalid dtype`}},
		{"negative dimension", []Tensor{{Name: "n", DType: F32, Shape: []int{2, -3}}}, []string{`tensor "n"`, "dimension 1 is -3"}},
		{"short data", []Tensor{{Name: "s", DType: F32, Shape: []int{2, 2}, Data: make([]byte, 12)}}, []string{`tensor "s": shape [2 2] of F32 needs 16 bytes, Data has 12`}},
		{"long data", []Tensor{{Name: "l", DType: U8, Shape: []int{}, Data: make([]byte, 2)}}, []string{`tensor "l"`, "needs 1 bytes, Data has 2"}},
		{"F4 odd count", []Tensor{{Name: "q", DType: F4, Shape: []int{3}, Data: make([]byte, 2)}}, []string{`tensor "q"`, "byte boundary"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "bad.safetensors")
			err := Write(path, tt.tensors, nil)
			wantErr(t, err, nil, append([]string{"safetensors " + path}, tt.want...)...)
			if ents, _ := os.ReadDir(dir); len(ents) != 0 {
				t.Errorf("left %v behind", ents)
			}
		})
	}
	path := filepath.Join(t.TempDir(), "md.safetensors")
	wantErr(t, Write(path, []Tensor{ok}, map[string]string{"k": "\xff"}), nil, `metadata "k"`, "UTF-8")
}

// Write replaces a file atomically: a File open on the old contents keeps
// reading them, failures leave nothing behind.
func TestWriteIsAtomic(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "m.safetensors")
	v1, _ := FromFloat32("w", []int{2}, []float32{1, 2}, F32)
	v2, _ := FromFloat32("w", []int{3}, []float32{7, 8, 9}, F32)
	if err := Write(path, []Tensor{v1}, nil); err != nil {
		t.Fatal(err)
	}
	old := mustOpen(t, path)
	if err := Write(path, []Tensor{v2}, nil); err != nil {
		t.Fatal(err)
	}
	if got, _ := old.Float32("w"); !slices.Equal(got, []float32{1, 2}) {
		t.Errorf("old mapping reads %v after the rewrite", got)
	}
	if got, _ := mustOpen(t, path).Float32("w"); !slices.Equal(got, []float32{7, 8, 9}) {
		t.Errorf("new file reads %v", got)
	}
	if st, _ := os.Stat(path); st.Mode().Perm() != 0o644 {
		t.Errorf("mode %v, want 0644", st.Mode().Perm())
	}
	// The target is a directory: the rename fails and the temp file goes.
	target := filepath.Join(dir, "adir")
	if err := os.Mkdir(target, 0o755); err != nil {
		t.Fatal(err)
	}
	wantErr(t, Write(target, []Tensor{v1}, nil), nil, "safetensors "+target)
	// A missing directory is an error too.
	wantErr(t, Write(filepath.Join(dir, "no", "such.safetensors"), []Tensor{v1}, nil), os.ErrNotExist, "no/such.safetensors")
	ents, _ := os.ReadDir(dir)
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	if !slices.Equal(names, []string{"adir", "m.safetensors"}) {
		t.Errorf("directory holds %v, want only adir and m.safetensors", names)
	}
}

func TestFromHelpers(t *testing.T) {
	_, err := FromFloat32("w", []int{2, 2}, []float32{1, 2, 3}, F32)
	wantErr(t, err, nil, `tensor "w"`, "shape [2 2] holds 4 elements, data has 3")
	_, err = FromFloat32("w", []int{-1}, nil, F32)
	wantErr(t, err, nil, `tensor "w"`, "negative")
	_, err = FromFloat32("w", []int{1}, []float32{1}, I32)
	wantErr(t, err, ErrDType, `tensor "w"`, "float32 to I32")
	_, err = FromFloat64("w", []int{1}, []float64{1}, I64)
	wantErr(t, err, ErrDType, `tensor "w"`)
	// float64 -> F16 rounds through float32, as torch does: 1 + 2^-11 +
	// 2^-40 is 1 + 2^-11 in float32, a tie that goes to 1.0.
	h, err := FromFloat64("h", []int{1}, []float64{1 + 0x1p-11 + 0x1p-40}, F16)
	if err != nil || binary.LittleEndian.Uint16(h.Data) != 0x3c00 {
		t.Errorf("FromFloat64 F16 = % x, %v; want 00 3c", h.Data, err)
	}
	shape := []int{2}
	x, _ := FromInt64("x", shape, []int64{1, 2})
	shape[0] = 5
	if x.Shape[0] != 2 {
		t.Error("FromInt64 keeps the caller's shape slice")
	}
	src := []uint8{1, 2}
	u, _ := FromUint8("u", []int{2}, src)
	src[0] = 9
	if u.Data[0] != 1 {
		t.Error("FromUint8 aliases the caller's data")
	}
}
