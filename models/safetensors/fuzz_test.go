package safetensors

import (
	"encoding/binary"
	"os"
	"testing"
)

// FuzzParseHeader feeds arbitrary headers and data lengths to the parser:
// it must never panic, and whatever it accepts must satisfy the format's
// invariants. The seed corpus (valid headers and every malformed file of
// badFiles) runs with go test; fuzz with
//
//	go test ./models/safetensors/ -run '^$' -fuzz FuzzParseHeader
func FuzzParseHeader(f *testing.F) {
	seeds := []string{
		`{}`,
		`{` + tA + `,` + tB + `}`,
		`{"__metadata__":{"format":"pt"},` + tA + `}    `,
		`{"s":{"dtype":"F64","shape":[],"data_offsets":[0,8]},"z":{"dtype":"F32","shape":[0,3],"data_offsets":[8,8]}}`,
		`{"a":{"dtype":"F4","shape":[2,3],"data_offsets":[0,3]}}`,
		`{"a":{"dtype":"F32","extra":{"x":[1,{}]},"shape":[2],"data_offsets":[0,8]}}`,
	}
	for _, s := range seeds {
		f.Add([]byte(s), uint32(16))
	}
	for _, bf := range badFiles {
		if len(bf.file) >= 8 {
			n := binary.LittleEndian.Uint64(bf.file)
			if n <= uint64(len(bf.file)-8) {
				f.Add(bf.file[8:8+n], uint32(len(bf.file)-8-int(n)))
			}
		}
	}
	if raw, err := os.ReadFile("../testdata/hf/llama/lora/adapter_model.safetensors"); err == nil {
		n := binary.LittleEndian.Uint64(raw)
		f.Add(raw[8:8+n], uint32(len(raw)-8-int(n)))
	}
	f.Fuzz(func(t *testing.T, hdr []byte, dataLen uint32) {
		h, err := parseHeader(hdr, int64(dataLen))
		if err != nil {
			return
		}
		checkInvariants(t, h, int64(dataLen))
		// The whole-file path agrees.
		file := binary.LittleEndian.AppendUint64(nil, uint64(len(hdr)))
		file = append(file, hdr...)
		file = append(file, make([]byte, dataLen)...)
		if dataLen <= 1<<20 { // keep the fuzzer's memory in check
			if _, err := newFile("fuzz", bytesSource(file)); err != nil {
				t.Fatalf("parseHeader accepted %q but newFile failed: %v", hdr, err)
			}
		}
	})
}

func checkInvariants(t *testing.T, h *header, dataLen int64) {
	t.Helper()
	var next int64
	seen := map[string]bool{}
	for i, info := range h.tensors {
		if info.Name == metadataKey || seen[info.Name] {
			t.Fatalf("tensor %q: reserved or duplicate name accepted", info.Name)
		}
		seen[info.Name] = true
		if h.index[info.Name] != i {
			t.Fatalf("index[%q] = %d, want %d", info.Name, h.index[info.Name], i)
		}
		if !info.DType.Valid() {
			t.Fatalf("tensor %q: invalid dtype accepted", info.Name)
		}
		want, err := byteSize(info.DType, info.Shape)
		if err != nil || want != info.Size {
			t.Fatalf("tensor %q: shape %v %v size %d, byteSize %d %v", info.Name, info.Shape, info.DType, info.Size, want, err)
		}
		if info.Offset != next {
			t.Fatalf("tensor %q: offset %d, want %d (contiguous)", info.Name, info.Offset, next)
		}
		next += info.Size
	}
	if next != dataLen {
		t.Fatalf("tensors cover %d bytes of %d", next, dataLen)
	}
	if len(h.index) != len(h.tensors) {
		t.Fatalf("index has %d entries for %d tensors", len(h.index), len(h.tensors))
	}
}

// FuzzOpenBytes feeds whole files, length prefix included, to the reader and
// reads every tensor it accepts with every getter: no input may panic.
func FuzzOpenBytes(f *testing.F) {
	for _, bf := range badFiles {
		f.Add(bf.file)
	}
	f.Add(rawFile(`{`+tA+`,`+tB+`}`, 16))
	f.Add(rawFile(`{"x":{"dtype":"BF16","shape":[2],"data_offsets":[0,4]},"y":{"dtype":"U64","shape":[1],"data_offsets":[4,12]}}`, 12))
	f.Fuzz(func(t *testing.T, file []byte) {
		fl, err := newFile("fuzz", bytesSource(file))
		if err != nil {
			return
		}
		for _, n := range fl.Names() {
			fl.Bytes(n)
			fl.Float32(n)
			fl.Float64(n)
			fl.Int64(n)
			fl.Int32(n)
			fl.Bool(n)
		}
	})
}
