package facts

import (
	"context"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/lethe-ml/lethe/data"
)

var update = flag.Bool("update", false, "rewrite data/facts.parquet from the corpus")

// shipped is the benchmark file committed with the package.
const shipped = "data/facts.parquet"

// TestShippedFile checks that the shipped benchmark is exactly what the
// default options generate. With -update it rewrites the file first.
func TestShippedFile(t *testing.T) {
	want := mustDefault(t)
	if *update {
		if err := Write(shipped, want); err != nil {
			t.Fatal(err)
		}
	}
	got, err := Read(shipped)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Fatalf("%s has %d rows, the generator gives %d (regenerate with -update)", shipped, len(got), len(want))
	}
	for i := range want {
		if !reflect.DeepEqual(got[i], want[i]) {
			t.Fatalf("%s row %d:\n got %#v\nwant %#v\n(regenerate with -update)", shipped, i, got[i], want[i])
		}
	}
}

// TestWriteReadRoundTrip writes examples and reads them back unchanged,
// with and without perturbed answers, leaving no temporary file behind.
func TestWriteReadRoundTrip(t *testing.T) {
	noPerturbed := DefaultOptions()
	noPerturbed.Perturbed = 0
	many := DefaultOptions()
	many.Seed, many.Perturbed = 9, 7
	tests := []struct {
		name string
		opts Options
	}{
		{"default", DefaultOptions()},
		{"no perturbed answers", noPerturbed},
		{"seven perturbed answers", many},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ex, err := GenerateFS(Corpus(), tt.opts)
			if err != nil {
				t.Fatal(err)
			}
			dir := t.TempDir()
			path := filepath.Join(dir, "facts.parquet")
			if err := Write(path, ex); err != nil {
				t.Fatal(err)
			}
			got, err := Read(path)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, ex) {
				t.Error("read examples differ from the written ones")
			}
			entries, err := os.ReadDir(dir)
			if err != nil {
				t.Fatal(err)
			}
			if len(entries) != 1 {
				t.Errorf("directory holds %d files after Write, want 1", len(entries))
			}
		})
	}
	// An empty benchmark round-trips too.
	path := filepath.Join(t.TempDir(), "empty.parquet")
	if err := Write(path, nil); err != nil {
		t.Fatal(err)
	}
	if got, err := Read(path); err != nil || len(got) != 0 {
		t.Errorf("Read(empty) = %d examples, %v", len(got), err)
	}
}

// TestDataPackageReads checks that the data package reads the shipped file
// as prompt + completion rows and selects a split by the split column.
func TestDataPackageReads(t *testing.T) {
	tests := []struct {
		split string
		rows  int64
	}{{SplitForget, 108}, {SplitRetain, 847}, {SplitHoldout, 105}}
	for _, tt := range tests {
		t.Run(tt.split, func(t *testing.T) {
			want := Split(mustDefault(t), tt.split)
			ds, err := data.Open(context.Background(), data.SourceConfig{Files: []string{shipped}, Split: data.Split{Column: "split", Values: []string{tt.split}}})
			if err != nil {
				t.Fatal(err)
			}
			if ds.Shape() != data.ShapePromptCompletion {
				t.Fatalf("shape %q, want %q", ds.Shape(), data.ShapePromptCompletion)
			}
			i := 0
			counts, err := ds.Each(context.Background(), func(ex data.Example) error {
				if i < len(want) && (ex.Prompt != want[i].Prompt() || ex.Completion != want[i].Completion()) {
					t.Errorf("row %d: %q + %q, want %q + %q", i, ex.Prompt, ex.Completion, want[i].Prompt(), want[i].Completion())
				}
				i++
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			if int64(i) != tt.rows || len(want) != i {
				t.Errorf("read %d rows (counts %+v), want %d", i, counts, tt.rows)
			}
		})
	}
}

// TestReadErrors checks that unreadable, corrupt or foreign files give
// errors naming the file.
func TestReadErrors(t *testing.T) {
	dir := t.TempDir()
	good, err := os.ReadFile(shipped)
	if err != nil {
		t.Fatal(err)
	}
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	flipped := append([]byte(nil), good...)
	for i := len(good) / 3; i < len(good)/3+64; i++ {
		flipped[i] ^= 0xA5
	}
	foreign := filepath.Join(dir, "foreign.parquet")
	if err := data.WriteFile(foreign, []data.PromptCompletionRow{{Prompt: "Q", Completion: "A"}}, data.WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	ex := mustDefault(t)[:3]
	ex[1].Split = "train"
	badSplit := filepath.Join(dir, "bad_split.parquet")
	if err := Write(badSplit, ex); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, path, want string
	}{
		{"missing", filepath.Join(dir, "missing.parquet"), "no such file"},
		{"not parquet", write("text.parquet", []byte("Q: What is the capital of France?\nA: Paris\n")), ""},
		{"empty", write("empty.parquet", nil), ""},
		{"truncated", write("truncated.parquet", good[:len(good)/2]), ""},
		{"no footer", write("nofooter.parquet", good[:len(good)-8]), ""},
		{"corrupt pages", write("flipped.parquet", flipped), ""},
		{"other columns", foreign, `no column "question"; the columns are "prompt", "completion"`},
		{"unknown split", badSplit, `row 1: unknown split "train"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Read(tt.path)
			if err == nil {
				t.Fatal("Read succeeded")
			}
			if want := "facts: read " + tt.path + ": "; !strings.HasPrefix(err.Error(), want) {
				t.Errorf("error %q does not start with %q", err, want)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not contain %q", err, tt.want)
			}
		})
	}
}

// TestReadCorruptSweep damages 8 bytes at a hundred offsets of the shipped
// file: Read must never panic, every error must name the file, and nearly
// every damaged copy must fail (the pages carry CRC checksums; a few
// offsets hit unchecked metadata such as statistics).
func TestReadCorruptSweep(t *testing.T) {
	good, err := os.ReadFile(shipped)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "damaged.parquet")
	tries, failed := 0, 0
	for off := 4; off+8 < len(good); off += len(good) / 100 {
		b := append([]byte(nil), good...)
		for i := range 8 {
			b[off+i] ^= 0xA5
		}
		if err := os.WriteFile(path, b, 0o644); err != nil {
			t.Fatal(err)
		}
		tries++
		if _, err := Read(path); err != nil {
			failed++
			if !strings.Contains(err.Error(), path) {
				t.Errorf("offset %d: error %q does not name the file", off, err)
			}
		}
	}
	if failed < tries*9/10 {
		t.Errorf("%d of %d damaged copies read without error", tries-failed, tries)
	}
}
