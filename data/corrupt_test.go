package data

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestCorruptPages reads parquet-go's malformed files, whose footers are
// intact but whose first page of column "id" is not: the error names the
// file and the column. Reading "id" as the split column makes it read.
func TestCorruptPages(t *testing.T) {
	for _, name := range []string{"negative_page_size", "num_values_exceeds_data"} {
		t.Run(name, func(t *testing.T) {
			path := pgo + "malformed/" + name + ".parquet"
			ds, err := Open(context.Background(), SourceConfig{Files: []string{path}, Columns: Columns{Text: "name"}, Split: Split{Column: "id", Values: []string{"1"}}})
			if err != nil {
				t.Fatalf("Open: %v (the footer is intact)", err)
			}
			_, err = ds.Each(context.Background(), func(Example) error { return nil })
			if err == nil {
				t.Fatal("Each succeeded on corrupt pages")
			}
			for _, want := range []string{path, `column "id"`, "corrupted parquet page"} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not contain %q", err, want)
				}
			}
		})
	}
}

// TestCorruptedFixtures overwrites 8 bytes at many offsets of each fixture
// and reads the damaged copy: reading must never panic, and every error must
// name the file. Some offsets hit only string bytes of an uncompressed page
// and read fine; most must fail.
//
// text_brotli_v2.parquet is left out: parquet-go v0.32.0 decompresses
// brotli pages without bounding the output by the page's declared size, so
// some corrupt streams inflate to gigabytes before the read fails (with an
// error, not a crash, but too slowly for a unit test).
func TestCorruptedFixtures(t *testing.T) {
	dir := t.TempDir()
	for _, name := range []string{"chat_snappy.parquet", "chat_zstd.parquet", "prompt_completion_gzip.parquet", "text_plain_v1.parquet"} {
		t.Run(name, func(t *testing.T) {
			orig, err := os.ReadFile(fixtures + name)
			if err != nil {
				t.Fatal(err)
			}
			failed, tries, panics := 0, 0, 0
			step := max(len(orig)/97, 1)
			for off := 4; off+8 < len(orig); off += step {
				b := append([]byte(nil), orig...)
				for i := range 8 {
					b[off+i] ^= 0xA5
				}
				path := filepath.Join(dir, name)
				if err := os.WriteFile(path, b, 0o644); err != nil {
					t.Fatal(err)
				}
				tries++
				err := readCorrupt(path)
				if err == nil {
					continue
				}
				failed++
				if strings.Contains(err.Error(), "panicked") {
					panics++
					if !strings.Contains(err.Error(), "column ") {
						t.Errorf("offset %d: error %q does not name the column", off, err)
					}
				}
				if !strings.Contains(err.Error(), path) {
					t.Errorf("offset %d: error %q does not name the file", off, err)
				}
			}
			t.Logf("%d of %d corrupted copies failed to read (%d by a recovered panic of the decoder)", failed, tries, panics)
			if failed == 0 {
				t.Errorf("none of %d corrupted copies failed to read", tries)
			}
		})
	}
}

// readCorrupt reads every example of path, turning a panic into a test failure
// by letting it propagate (no recover here).
func readCorrupt(path string) error {
	ds, err := Open(context.Background(), SourceConfig{Files: []string{path}})
	if err != nil {
		return err
	}
	_, err = ds.Each(context.Background(), func(Example) error { return nil })
	return err
}

// TestTruncatedFixtures cuts each fixture at several lengths.
func TestTruncatedFixtures(t *testing.T) {
	dir := t.TempDir()
	for _, name := range []string{"chat_snappy.parquet", "prompt_completion_gzip.parquet", "text_plain_v1.parquet"} {
		orig, err := os.ReadFile(fixtures + name)
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range []int{0, 3, 4, 100, len(orig) / 3, len(orig) / 2, len(orig) - 9, len(orig) - 1} {
			path := filepath.Join(dir, name)
			if err := os.WriteFile(path, orig[:n], 0o644); err != nil {
				t.Fatal(err)
			}
			err := readCorrupt(path)
			if err == nil || !strings.Contains(err.Error(), path) {
				t.Errorf("%s cut to %d bytes: error = %v, want one naming the file", name, n, err)
			}
		}
	}
}
