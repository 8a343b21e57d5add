package safetensors

import (
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// wantErr fails unless err wraps target (when non-nil) and mentions every
// fragment.
func wantErr(t testing.TB, err, target error, fragments ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("got no error, want one mentioning %q", fragments)
	}
	if target != nil && !errors.Is(err, target) {
		t.Errorf("error %q does not wrap %v", err, target)
	}
	for _, f := range fragments {
		if !strings.Contains(err.Error(), f) {
			t.Errorf("error %q does not mention %q", err, f)
		}
	}
}

// rawFile assembles a safetensors file from a header and a data length
// (the data bytes are a counting pattern).
func rawFile(header string, dataLen int) []byte {
	b := binary.LittleEndian.AppendUint64(nil, uint64(len(header)))
	b = append(b, header...)
	for i := range dataLen {
		b = append(b, byte(i))
	}
	return b
}

// withLength returns an 8-byte length n followed by rest.
func withLength(n uint64, rest string) []byte {
	return append(binary.LittleEndian.AppendUint64(nil, n), rest...)
}

const (
	tA = `"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}`
	tB = `"b":{"dtype":"I64","shape":[1],"data_offsets":[8,16]}`
)

// Malformed files: each must fail Open with an ErrFormat error naming the
// file and what is wrong.
var badFiles = []struct {
	name string
	file []byte
	want []string
}{
	{"empty file", nil, []string{"file is 0 bytes", "truncated"}},
	{"shorter than the length", []byte{1, 2, 3, 4, 5}, []string{"file is 5 bytes"}},
	{"header length past the end", withLength(1000, `{}`), []string{"header length 1000 runs past the end of the 10-byte file"}},
	{"header length over the limit", withLength(200_000_000, `{}`), []string{"over the format's limit of 100000000"}},
	{"header length 2^64-1", withLength(^uint64(0), `{}`), []string{"over the format's limit"}},
	{"header not UTF-8", rawFile("{\"\xff\xfe\":1}", 0), []string{"not valid UTF-8"}},
	{"header not JSON", rawFile(`hello!!!`, 0), []string{"header: invalid JSON"}},
	{"header an array", rawFile(`[1,2]   `, 0), []string{"not a JSON object (starts with an array)"}},
	{"header cut short", rawFile(`{"a":{"dtype":`, 0), []string{`tensor "a"`, "JSON ends early"}},
	{"trailing garbage", rawFile(`{}x`, 0), []string{`"x" after the JSON object`}},
	{"two objects", rawFile(`{} {}`, 0), []string{`"{}" after the JSON object`}},
	{"zero padding instead of spaces", rawFile("{}\x00\x00", 0), []string{"after the JSON object"}},
	{"offsets past the data", rawFile(`{"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}`, 12),
		[]string{`tensor "a"`, "data_offsets [0, 16] run past the end of the 12-byte data buffer"}},
	{"overlap", rawFile(`{`+tA+`,"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}`, 12),
		[]string{`tensor "b"`, `overlap tensor "a", which ends at 8`}},
	{"same offsets", rawFile(`{`+tA+`,"b":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}`, 8),
		[]string{"overlap tensor"}},
	{"gap", rawFile(`{`+tA+`,"b":{"dtype":"F32","shape":[2],"data_offsets":[12,20]}}`, 20),
		[]string{`tensor "b"`, `4-byte gap after tensor "a"`}},
	{"first tensor not at 0", rawFile(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}`, 12),
		[]string{`tensor "a"`, "first tensor must start at 0"}},
	{"bytes after the last tensor", rawFile(`{`+tA+`}`, 12),
		[]string{"cover 8 of the 12 bytes", `4 bytes after tensor "a"`}},
	{"data but no tensors", rawFile(`{}`, 8), []string{"no tensors but the data buffer has 8 bytes"}},
	{"shape and offsets disagree", rawFile(`{"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}`, 8),
		[]string{`tensor "a"`, "shape [3] of F32 needs 12 bytes but data_offsets [0, 8] span 8"}},
	{"dtype and offsets disagree", rawFile(`{"a":{"dtype":"F64","shape":[2],"data_offsets":[0,8]}}`, 8),
		[]string{`tensor "a"`, "of F64 needs 16 bytes"}},
	{"negative dimension", rawFile(`{"a":{"dtype":"F32","shape":[2,-1],"data_offsets":[0,0]}}`, 0),
		[]string{`tensor "a"`, `field "shape": element 1 is -1, want >= 0`}},
	{"fractional dimension", rawFile(`{"a":{"dtype":"F32","shape":[1.5],"data_offsets":[0,0]}}`, 0),
		[]string{`tensor "a"`, `element 0 is 1.5, want an integer`}},
	{"exponent dimension", rawFile(`{"a":{"dtype":"F32","shape":[1e3],"data_offsets":[0,0]}}`, 0),
		[]string{`element 0 is 1e3, want an integer`}},
	{"huge dimension", rawFile(`{"a":{"dtype":"F32","shape":[99999999999999999999],"data_offsets":[0,0]}}`, 0),
		[]string{`tensor "a"`, "too large"}},
	{"element count overflows", rawFile(`{"a":{"dtype":"F32","shape":[4294967296,4294967296,4],"data_offsets":[0,0]}}`, 0),
		[]string{`tensor "a"`, "overflows"}},
	{"byte size overflows", rawFile(`{"a":{"dtype":"F64","shape":[1152921504606846976],"data_offsets":[0,0]}}`, 0),
		[]string{`tensor "a"`, "overflows"}},
	{"dimension not a number", rawFile(`{"a":{"dtype":"F32","shape":[null],"data_offsets":[0,0]}}`, 0),
		[]string{`tensor "a"`, "element 0 is null"}},
	{"shape not an array", rawFile(`{"a":{"dtype":"F32","shape":4,"data_offsets":[0,16]}}`, 16),
		[]string{`tensor "a"`, `field "shape" is the number 4, want an array`}},
	{"unknown dtype", rawFile(`{"a":{"dtype":"F128","shape":[1],"data_offsets":[0,16]}}`, 16),
		[]string{`tensor "a"`, `unknown dtype "F128"`}},
	{"lower-case dtype", rawFile(`{"a":{"dtype":"f32","shape":[1],"data_offsets":[0,4]}}`, 4),
		[]string{`unknown dtype "f32"`}},
	{"dtype not a string", rawFile(`{"a":{"dtype":5,"shape":[1],"data_offsets":[0,4]}}`, 4),
		[]string{`tensor "a"`, `field "dtype" is the number 5`}},
	{"duplicate tensor", rawFile(`{`+tA+`,`+tA+`}`, 8), []string{`tensor "a" appears twice in the header`}},
	{"duplicate field", rawFile(`{"a":{"dtype":"F32","dtype":"F32","shape":[2],"data_offsets":[0,8]}}`, 8),
		[]string{`tensor "a"`, `field "dtype" appears twice`}},
	{"missing data_offsets", rawFile(`{"a":{"dtype":"F32","shape":[2]}}`, 8),
		[]string{`tensor "a"`, `field "data_offsets" is missing`}},
	{"missing dtype", rawFile(`{"a":{"shape":[2],"data_offsets":[0,8]}}`, 8),
		[]string{`tensor "a"`, `field "dtype" is missing`}},
	{"case-folded field name", rawFile(`{"a":{"DTYPE":"F32","shape":[2],"data_offsets":[0,8]}}`, 8),
		[]string{`field "dtype" is missing`}},
	{"three offsets", rawFile(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8,8]}}`, 8),
		[]string{`tensor "a"`, `"data_offsets" has 3 numbers`}},
	{"negative offset", rawFile(`{"a":{"dtype":"F32","shape":[0],"data_offsets":[-4,0]}}`, 0),
		[]string{`tensor "a"`, `field "data_offsets": element 0 is -4`}},
	{"offsets backwards", rawFile(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[8,0]}}`, 8),
		[]string{`tensor "a"`, "data_offsets [8, 0] end before they begin"}},
	{"tensor entry not an object", rawFile(`{"a":5}`, 0), []string{`tensor "a"`, "entry is the number 5"}},
	{"metadata value not a string", rawFile(`{"__metadata__":{"format":"pt","n":1}}`, 0),
		[]string{`key "__metadata__": value of "n" is the number 1, want a string`}},
	{"metadata an array", rawFile(`{"__metadata__":["pt"]}`, 0), []string{`"__metadata__" is an array, want an object of strings`}},
	{"metadata twice", rawFile(`{"__metadata__":{},"__metadata__":{}}`, 0), []string{`"__metadata__" appears twice`}},
	{"metadata key twice", rawFile(`{"__metadata__":{"k":"1","k":"2"}}`, 0), []string{`"k" appears twice`}},
	{"F4 not on a byte boundary", rawFile(`{"a":{"dtype":"F4","shape":[3],"data_offsets":[0,1]}}`, 1),
		[]string{`tensor "a"`, "3 elements of 4-bit F4 do not end on a byte boundary"}},
}

func TestOpenRejectsMalformedFiles(t *testing.T) {
	dir := t.TempDir()
	for i, tt := range badFiles {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(dir, "bad"+string(rune('A'+i%26))+".safetensors")
			if err := os.WriteFile(path, tt.file, 0o644); err != nil {
				t.Fatal(err)
			}
			f, err := Open(path)
			if err == nil {
				f.Close()
			}
			wantErr(t, err, ErrFormat, append([]string{"safetensors " + path + ": "}, tt.want...)...)
			// The in-memory path gives the same answer.
			_, err = newFile("mem", bytesSource(tt.file))
			wantErr(t, err, ErrFormat, tt.want...)
		})
	}
}

// Valid but unusual headers that must be accepted.
func TestOpenAcceptsValidEdgeCases(t *testing.T) {
	tests := []struct {
		name  string
		file  []byte
		names []string
		check func(t *testing.T, f *File)
	}{
		{"empty header", rawFile(`{}`, 0), []string{}, nil},
		{"space padding", rawFile(`{`+tA+`}       `, 8), []string{"a"}, nil},
		{"whitespace everywhere", rawFile(" \n{ \"a\" : {\"dtype\" :\t\"F32\", \"shape\": [ 2 ] ,\"data_offsets\":[0 ,8]} }\r\n ", 8), []string{"a"}, nil},
		{"offsets out of key order", rawFile(`{`+tB+`,`+tA+`}`, 16), []string{"a", "b"}, func(t *testing.T, f *File) {
			b, _ := f.Info("b")
			hdr := int64(len(`{` + tB + `,` + tA + `}`))
			if b.Offset != 8+hdr+8 || b.Size != 8 {
				t.Errorf("b: offset %d size %d", b.Offset, b.Size)
			}
			v, err := f.Int64("b")
			if err != nil || v[0] != 0x0f0e0d0c0b0a0908 {
				t.Errorf("b = %#x, %v", v, err)
			}
		}},
		{"unknown fields are ignored, as serde does", rawFile(`{"a":{"dtype":"F32","extra":{"x":[1,{}]},"shape":[2],"data_offsets":[0,8]}}`, 8), []string{"a"}, nil},
		{"null metadata", rawFile(`{"__metadata__":null,`+tA+`}`, 8), []string{"a"}, func(t *testing.T, f *File) {
			if f.Metadata() != nil {
				t.Errorf("Metadata() = %v", f.Metadata())
			}
		}},
		{"empty metadata", rawFile(`{"__metadata__":{},`+tA+`}`, 8), []string{"a"}, func(t *testing.T, f *File) {
			if md := f.Metadata(); md == nil || len(md) != 0 {
				t.Errorf("Metadata() = %#v, want empty non-nil", md)
			}
		}},
		{"scalar and empty tensors", rawFile(`{"s":{"dtype":"F64","shape":[],"data_offsets":[0,8]},"z":{"dtype":"F32","shape":[0,3],"data_offsets":[8,8]},"z2":{"dtype":"I8","shape":[0],"data_offsets":[8,8]}}`, 8),
			[]string{"s", "z", "z2"}, func(t *testing.T, f *File) {
				z, _ := f.Info("z")
				if z.Size != 0 || z.NumElements() != 0 {
					t.Errorf("z: %+v", z)
				}
				s, _ := f.Info("s")
				if s.NumElements() != 1 || len(s.Shape) != 0 {
					t.Errorf("s: %+v", s)
				}
				v, err := f.Float32("z")
				if err != nil || len(v) != 0 {
					t.Errorf("Float32(z) = %v, %v", v, err)
				}
			}},
		{"unicode and escaped names", rawFile(`{"caf\u00e9 \"q\"":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}`, 1), []string{`café "q"`}, nil},
		{"F4 on a byte boundary", rawFile(`{"a":{"dtype":"F4","shape":[2,3],"data_offsets":[0,3]}}`, 3), []string{"a"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "ok.safetensors")
			if err := os.WriteFile(path, tt.file, 0o644); err != nil {
				t.Fatal(err)
			}
			f := mustOpen(t, path)
			if got := f.Names(); !slices.Equal(got, tt.names) {
				t.Errorf("Names() = %q, want %q", got, tt.names)
			}
			if tt.check != nil {
				tt.check(t, f)
			}
		})
	}
}

func TestOpenErrors(t *testing.T) {
	_, err := Open(filepath.Join(t.TempDir(), "missing.safetensors"))
	wantErr(t, err, os.ErrNotExist, "missing.safetensors")
	dir := t.TempDir()
	_, err = Open(dir)
	wantErr(t, err, nil, dir)
}

func TestFileAccessErrors(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.safetensors")
	if err := os.WriteFile(path, rawFile(`{`+tA+`,`+tB+`}`, 16), 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := f.Info("nope"); ok {
		t.Error("Info(nope) found")
	}
	_, err = f.Bytes("nope")
	wantErr(t, err, ErrNotFound, path, `tensor "nope"`)
	_, err = f.Float32("b")
	wantErr(t, err, ErrDType, path, `tensor "b"`, "I64 to float32")
	_, err = f.Bool("a")
	wantErr(t, err, ErrDType, path, `tensor "a"`)
	// Info returns a copy.
	info, _ := f.Info("a")
	info.Shape[0] = 99
	if again, _ := f.Info("a"); again.Shape[0] != 2 {
		t.Error("Info exposes the internal shape")
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	_, err = f.Bytes("a")
	wantErr(t, err, ErrClosed, path, `tensor "a"`)
	_, err = f.Float32("a")
	wantErr(t, err, ErrClosed)
	// The header stays readable after Close.
	if len(f.Names()) != 2 {
		t.Error("Names after Close")
	}
}

// The ReadAt fallback (platforms without mmap) reads the same bytes as the
// memory map.
func TestReadAtFallbackMatchesMmap(t *testing.T) {
	const path = "../testdata/hf/llama/expected.safetensors"
	osf, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	st, _ := osf.Stat()
	fb, err := newFile(path, &readAtSource{f: osf, n: st.Size()})
	if err != nil {
		t.Fatal(err)
	}
	defer fb.Close()
	mm := mustOpen(t, path)
	if !slices.Equal(fb.Names(), mm.Names()) {
		t.Fatalf("names differ: %v vs %v", fb.Names(), mm.Names())
	}
	for _, n := range mm.Names() {
		a, err1 := fb.Bytes(n)
		b, err2 := mm.Bytes(n)
		if err1 != nil || err2 != nil || string(a) != string(b) {
			t.Errorf("%s: fallback %d bytes (%v), mmap %d bytes (%v)", n, len(a), err1, len(b), err2)
		}
	}
	if v, err := fb.Int64("input_ids"); err != nil || v[0] != 109 {
		t.Errorf("input_ids = %v, %v", v, err)
	}
}
