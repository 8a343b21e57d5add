package data

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/lethe-ml/lethe/data/chat"
	"github.com/parquet-go/parquet-go"
)

func TestWriteExamplesRoundTrip(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		shape    Shape
		examples []Example
	}{
		{ShapeText, []Example{{Text: "first"}, {Text: ""}, {Text: "naïve 東京 🤗\nline"}}},
		{ShapePromptCompletion, []Example{{Prompt: "Q1", Completion: " A1"}, {Prompt: "Q2", Completion: ""}}},
		{ShapeMessages, []Example{
			{Messages: []chat.Message{{Role: "user", Content: "hi"}, {Role: "assistant", Content: "hello"}}},
			{Messages: nil},
			{Messages: []chat.Message{{Role: "system", Content: ""}, {Role: "user", Content: "x"}, {Role: "assistant", Content: "y"}, {Role: "user", Content: "z"}}},
		}},
	}
	for _, tt := range tests {
		for _, compression := range []string{"", "snappy", "gzip", "lz4", "none"} {
			t.Run(string(tt.shape)+"/"+compression, func(t *testing.T) {
				path := filepath.Join(dir, string(tt.shape)+compression+".parquet")
				for i := range tt.examples {
					tt.examples[i].Shape = tt.shape
				}
				if err := WriteExamples(path, tt.shape, tt.examples, WriteOptions{Compression: compression, RowGroupRows: 2}); err != nil {
					t.Fatal(err)
				}
				ds, got, counts := readAll(t, SourceConfig{Files: []string{path}})
				if ds.Shape() != tt.shape {
					t.Errorf("detected shape %q, want %q", ds.Shape(), tt.shape)
				}
				if n := int64(len(tt.examples)); counts.Rows != n || counts.Examples != n {
					t.Errorf("counts = %+v, want %d rows", counts, n)
				}
				if want := (len(tt.examples) + 1) / 2; len(ds.files[0].rowGroups) != want {
					t.Errorf("%d row groups, want %d", len(ds.files[0].rowGroups), want)
				}
				for i := range got {
					want := tt.examples[i]
					want.File, want.Row = path, int64(i)
					if !reflect.DeepEqual(got[i], want) {
						t.Errorf("row %d = %+v, want %+v", i, got[i], want)
					}
				}
				assertNoTemp(t, dir)
			})
		}
	}
}

// logitsRow is the kind of struct a distillation cache writes.
type logitsRow struct {
	ID      int64     `parquet:"id"`
	Tokens  []int32   `parquet:"tokens,list"`
	TopK    []float32 `parquet:"top_k,list"`
	Teacher *string   `parquet:"teacher,optional"`
}

func TestWriterGenericStructs(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "logits.parquet")
	name := "smollm"
	rows := []logitsRow{
		{ID: 1, Tokens: []int32{5, 6, 7}, TopK: []float32{0.5, -1.25}, Teacher: &name},
		{ID: 2, Tokens: nil, TopK: []float32{3}},
	}
	w, err := Create[logitsRow](path, WriteOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Abort()
	if err := w.Write(rows[0]); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Fatalf("the destination exists before Close: %v", err)
	}
	if err := w.Write(rows[1]); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	got, err := parquet.ReadFile[logitsRow](path)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].ID != 1 || !reflect.DeepEqual(got[0].Tokens, []int32{5, 6, 7}) || !reflect.DeepEqual(got[0].TopK, []float32{0.5, -1.25}) ||
		got[0].Teacher == nil || *got[0].Teacher != "smollm" || got[1].ID != 2 || len(got[1].Tokens) != 0 || got[1].Teacher != nil {
		t.Errorf("read back %+v", got)
	}
	st, _ := os.Stat(path)
	if st.Mode().Perm() != 0o644 {
		t.Errorf("mode %v, want 0644", st.Mode().Perm())
	}
	assertNoTemp(t, dir)
}

func TestWriterAtomicity(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "out.parquet")
	if err := WriteExamples(path, ShapeText, []Example{{Shape: ShapeText, Text: "old"}}, WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	// An aborted rewrite leaves the old file whole and no temporary file.
	w, err := Create[TextRow](path, WriteOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Write(TextRow{"new"}); err != nil {
		t.Fatal(err)
	}
	if err := w.Abort(); err != nil {
		t.Fatal(err)
	}
	if err := w.Write(TextRow{"late"}); err == nil || !strings.Contains(err.Error(), "closed") {
		t.Errorf("Write after Abort: %v", err)
	}
	_, got, _ := readAll(t, SourceConfig{Files: []string{path}})
	if len(got) != 1 || got[0].Text != "old" {
		t.Errorf("after an aborted rewrite the file holds %+v", got)
	}
	assertNoTemp(t, dir)
	// A failing WriteExamples (wrong shape) leaves nothing either.
	err = WriteExamples(filepath.Join(dir, "bad.parquet"), ShapeText, []Example{{Shape: ShapeMessages}}, WriteOptions{})
	if err == nil || !strings.Contains(err.Error(), `example 0 has shape "messages", not "text"`) {
		t.Errorf("shape mismatch: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "bad.parquet")); !os.IsNotExist(err) {
		t.Errorf("bad.parquet exists: %v", err)
	}
	assertNoTemp(t, dir)
	if err := WriteFile(filepath.Join(dir, "x.parquet"), []TextRow{{"a"}}, WriteOptions{Compression: "lzo"}); err == nil || !strings.Contains(err.Error(), `unknown compression "lzo"`) {
		t.Errorf("bad compression: %v", err)
	}
	if err := WriteFile(filepath.Join(dir, "missing", "x.parquet"), []TextRow{{"a"}}, WriteOptions{}); err == nil || !strings.Contains(err.Error(), "missing/x.parquet") {
		t.Errorf("missing directory: %v", err)
	}
	if _, err := Create[struct{ C chan int }](filepath.Join(dir, "chan.parquet"), WriteOptions{}); err == nil {
		t.Error("a struct with a channel field was accepted")
	}
	assertNoTemp(t, dir)
}

func assertNoTemp(t *testing.T, dir string) {
	t.Helper()
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if strings.Contains(e.Name(), ".tmp-") {
			t.Errorf("temporary file %s left behind", e.Name())
		}
	}
}

func TestWrittenFilesFeedTheLoader(t *testing.T) {
	dir := t.TempDir()
	var exs []Example
	for i := range 50 {
		exs = append(exs, Example{Shape: ShapeMessages, Messages: []chat.Message{{Role: "user", Content: strings.Repeat("q", i%7)}, {Role: "assistant", Content: strings.Repeat("a", 1+i%5)}}})
	}
	path := filepath.Join(dir, "gen.parquet")
	if err := WriteExamples(path, ShapeMessages, exs, WriteOptions{RowGroupRows: 8}); err != nil {
		t.Fatal(err)
	}
	l := newTestLoader(t, SourceConfig{Files: []string{path}}, LoaderConfig{Collate: CollateConfig{BatchSize: 4, MaxLength: 64}, Shuffle: true, Seed: 5, WindowRows: 16})
	batches, it := drain(t, l, Position{}, -1)
	loss := 0
	for _, b := range batches {
		loss += b.LossTokens
	}
	// Each example trains on its reply and the template's "</>": 1+i%5 + 3 tokens.
	want := 0
	for i := range 50 {
		want += 1 + i%5 + 3
	}
	if loss != want || it.Counts().Read.Examples != 50 {
		t.Errorf("%d loss tokens over %d examples, want %d over 50", loss, it.Counts().Read.Examples, want)
	}
}
