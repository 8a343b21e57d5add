package safetensors

import (
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// writeSparse writes a valid file of about size bytes — 64 F32 tensors
// sharing size bytes — without holding the data in memory: the header is
// written and the file extended with Truncate (a sparse, zero-filled file).
func writeSparse(tb testing.TB, path string, size int64) {
	tb.Helper()
	const n = 64
	per := size / n / 4 * 4
	entries := make([]headerEntry, n)
	for i := range entries {
		entries[i] = headerEntry{name: fmt.Sprintf("model.layers.%d.weight", i), dtype: F32, shape: []int{int(per / 4)}, size: per}
	}
	writeOrder(entries)
	hdr, err := encodeHeader(entries, map[string]string{"format": "pt"})
	if err != nil {
		tb.Fatal(err)
	}
	f, err := os.Create(path)
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Write(binary.LittleEndian.AppendUint64(nil, uint64(len(hdr)))); err != nil {
		tb.Fatal(err)
	}
	if _, err := f.Write(hdr); err != nil {
		tb.Fatal(err)
	}
	if err := f.Truncate(8 + int64(len(hdr)) + n*per); err != nil {
		tb.Fatal(err)
	}
}

// BenchmarkOpen opens and closes files of 2 MB and 200 MB with the same
// header: with the memory map the cost does not depend on the data size.
func BenchmarkOpen(b *testing.B) {
	for _, size := range []int64{2 << 20, 200 << 20} {
		b.Run(fmt.Sprintf("%dMB", size>>20), func(b *testing.B) {
			path := filepath.Join(b.TempDir(), "big.safetensors")
			writeSparse(b, path, size)
			b.ReportAllocs()
			for b.Loop() {
				f, err := Open(path)
				if err != nil {
					b.Fatal(err)
				}
				f.Close()
			}
		})
	}
}

// BenchmarkFloat32FromBF16 measures the BF16 -> float32 getter.
func BenchmarkFloat32FromBF16(b *testing.B) {
	data := make([]float32, 1<<20)
	for i := range data {
		data[i] = float32(i) * 0.001
	}
	x, err := FromFloat32("w", []int{len(data)}, data, BF16)
	if err != nil {
		b.Fatal(err)
	}
	path := filepath.Join(b.TempDir(), "bf16.safetensors")
	if err := Write(path, []Tensor{x}, nil); err != nil {
		b.Fatal(err)
	}
	f := mustOpen(b, path)
	b.SetBytes(int64(len(x.Data)))
	for b.Loop() {
		if _, err := f.Float32("w"); err != nil {
			b.Fatal(err)
		}
	}
}

// TestSparseFileOpens checks the benchmark's generator (and that a large
// file opens without reading its data).
func TestSparseFileOpens(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.safetensors")
	writeSparse(t, path, 64<<20)
	f := mustOpen(t, path)
	if f.Len() != 64 {
		t.Fatalf("%d tensors", f.Len())
	}
	v, err := f.Float32("model.layers.63.weight")
	if err != nil || len(v) != (1<<20)/4 || v[0] != 0 {
		t.Fatalf("read %d floats, %v", len(v), err)
	}
}
