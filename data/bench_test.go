package data

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
)

// BenchmarkEach streams a generated 100,000-row text file (38 MB of text,
// zstd, 25 row groups); b.SetBytes reports text throughput.
func BenchmarkEach(b *testing.B) {
	path := filepath.Join(b.TempDir(), "bench.parquet")
	rows := make([]TextRow, 100_000)
	var size int64
	for i := range rows {
		rows[i].Text = fmt.Sprintf("row %d: ", i) + strings.Repeat("the quick brown fox jumps over the lazy dog ", 1+i%17)
		size += int64(len(rows[i].Text))
	}
	if err := WriteFile(path, rows, WriteOptions{}); err != nil {
		b.Fatal(err)
	}
	ds, err := Open(context.Background(), SourceConfig{Files: []string{path}})
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(size)
	b.ResetTimer()
	for range b.N {
		var n int64
		if _, err := ds.Each(context.Background(), func(ex Example) error { n += int64(len(ex.Text)); return nil }); err != nil {
			b.Fatal(err)
		}
		if n != size {
			b.Fatalf("read %d bytes of text, want %d", n, size)
		}
	}
}
