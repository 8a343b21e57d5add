package data

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/lethe-ml/lethe/data/chat"
)

const (
	fixtures = "testdata/parquet/"
	pgo      = "testdata/parquet-go/"
)

// readAll opens cfg and returns every example with the read counts.
func readAll(t *testing.T, cfg SourceConfig) (*Dataset, []Example, Counts) {
	t.Helper()
	ds, err := Open(context.Background(), cfg)
	if err != nil {
		t.Fatalf("Open(%v): %v", cfg.Files, err)
	}
	var out []Example
	counts, err := ds.Each(context.Background(), func(ex Example) error {
		out = append(out, ex)
		return nil
	})
	if err != nil {
		t.Fatalf("Each(%v): %v", cfg.Files, err)
	}
	return ds, out, counts
}

func chatRow(i int) []chat.Message {
	return []chat.Message{
		{Role: "system", Content: "You are terse."},
		{Role: "user", Content: fmt.Sprintf("What is %d + %d?", i, i)},
		{Role: "assistant", Content: fmt.Sprint(2 * i)},
	}
}

func loremRow(i int) string { return fmt.Sprintf("line %d ", i) + strings.Repeat("lorem ipsum ", i%17) }

func TestReadFixtures(t *testing.T) {
	tests := []struct {
		name      string
		cfg       SourceConfig
		shape     Shape
		counts    Counts
		files     int
		wantRow   func(ex Example) Example // expected example for ex.Row (File/Row/Shape copied)
		firstRows []int64                  // expected Row of the first examples
	}{
		{
			name:   "chat snappy, 4 row groups",
			cfg:    SourceConfig{Files: []string{fixtures + "chat_snappy.parquet"}},
			shape:  ShapeMessages,
			counts: Counts{Rows: 500, Examples: 500},
			files:  1,
			wantRow: func(ex Example) Example {
				return Example{Messages: chatRow(int(ex.Row))}
			},
		},
		{
			name:   "chat zstd, 3 row groups",
			cfg:    SourceConfig{Files: []string{fixtures + "chat_zstd.parquet"}},
			shape:  ShapeMessages,
			counts: Counts{Rows: 500, Examples: 500},
			files:  1,
			wantRow: func(ex Example) Example {
				return Example{Messages: chatRow(int(ex.Row))}
			},
		},
		{
			name:   "prompt completion gzip, null completions skipped",
			cfg:    SourceConfig{Files: []string{fixtures + "prompt_completion_gzip.parquet"}},
			shape:  ShapePromptCompletion,
			counts: Counts{Rows: 300, Examples: 294, Nulls: 6},
			files:  1,
			wantRow: func(ex Example) Example {
				return Example{Prompt: fmt.Sprintf("Q%d: name the %dth prime?", ex.Row, ex.Row), Completion: fmt.Sprintf(" A%d", ex.Row)}
			},
			firstRows: []int64{0, 1, 2, 3, 4, 5, 6, 8},
		},
		{
			name:   "prompt completion, nulls read as empty",
			cfg:    SourceConfig{Files: []string{fixtures + "prompt_completion_gzip.parquet"}, Nulls: NullEmpty},
			shape:  ShapePromptCompletion,
			counts: Counts{Rows: 300, Examples: 300},
			files:  1,
			wantRow: func(ex Example) Example {
				c := fmt.Sprintf(" A%d", ex.Row)
				if ex.Row%50 == 7 {
					c = ""
				}
				return Example{Prompt: fmt.Sprintf("Q%d: name the %dth prime?", ex.Row, ex.Row), Completion: c}
			},
		},
		{
			name:   "split column forget (dictionary-encoded)",
			cfg:    SourceConfig{Files: []string{fixtures + "prompt_completion_gzip.parquet"}, Split: Split{Column: "split", Values: []string{"forget"}}},
			shape:  ShapePromptCompletion,
			counts: Counts{Rows: 300, Examples: 30, OutOfSplit: 270},
			files:  1,
			wantRow: func(ex Example) Example {
				return Example{Prompt: fmt.Sprintf("Q%d: name the %dth prime?", ex.Row, ex.Row), Completion: fmt.Sprintf(" A%d", ex.Row), Split: "forget"}
			},
			firstRows: []int64{0, 10, 20, 30},
		},
		{
			name:   "split column retain",
			cfg:    SourceConfig{Files: []string{fixtures + "prompt_completion_gzip.parquet"}, Split: Split{Column: "split", Values: []string{"retain"}}},
			shape:  ShapePromptCompletion,
			counts: Counts{Rows: 300, Examples: 264, Nulls: 6, OutOfSplit: 30},
			files:  1,
			wantRow: func(ex Example) Example {
				return Example{Prompt: fmt.Sprintf("Q%d: name the %dth prime?", ex.Row, ex.Row), Completion: fmt.Sprintf(" A%d", ex.Row), Split: "retain"}
			},
			firstRows: []int64{1, 2, 3, 4, 5, 6, 8, 9, 11},
		},
		{
			name:    "text v1 pages, uncompressed, plain",
			cfg:     SourceConfig{Files: []string{fixtures + "text_plain_v1.parquet"}},
			shape:   ShapeText,
			counts:  Counts{Rows: 1000, Examples: 1000},
			files:   1,
			wantRow: func(ex Example) Example { return Example{Text: loremRow(int(ex.Row))} },
		},
		{
			name:    "text v2 pages, brotli",
			cfg:     SourceConfig{Files: []string{fixtures + "text_brotli_v2.parquet"}},
			shape:   ShapeText,
			counts:  Counts{Rows: 1000, Examples: 1000},
			files:   1,
			wantRow: func(ex Example) Example { return Example{Text: loremRow(int(ex.Row))} },
		},
		{
			name:   "glob of both chat files",
			cfg:    SourceConfig{Files: []string{fixtures + "chat_*.parquet"}},
			shape:  ShapeMessages,
			counts: Counts{Rows: 1000, Examples: 1000},
			files:  2,
			wantRow: func(ex Example) Example {
				return Example{Messages: chatRow(int(ex.Row))}
			},
		},
		{
			name:   "text column renamed: parquet-go datapage_v2 (v2 pages, snappy, a null)",
			cfg:    SourceConfig{Files: []string{pgo + "datapage_v2.snappy.parquet"}, Shape: ShapeText, Columns: Columns{Text: "a"}},
			shape:  ShapeText,
			counts: Counts{Rows: 5, Examples: 4, Nulls: 1},
			files:  1,
			wantRow: func(ex Example) Example {
				return Example{Text: "abc"}
			},
			firstRows: []int64{0, 1, 2, 4},
		},
		{
			name:    "parquet-go delta_length_byte_array",
			cfg:     SourceConfig{Files: []string{pgo + "delta_length_byte_array.parquet"}, Columns: Columns{Text: "FRUIT"}},
			shape:   ShapeText,
			counts:  Counts{Rows: 1000, Examples: 1000},
			files:   1,
			wantRow: func(ex Example) Example { return Example{Text: fmt.Sprintf("apple_banana_mango%d", ex.Row*ex.Row)} },
		},
		{
			name:   "parquet-go lz4_raw, binary without STRING annotation",
			cfg:    SourceConfig{Files: []string{pgo + "lz4_raw_compressed.parquet"}, Columns: Columns{Text: "c1"}},
			shape:  ShapeText,
			counts: Counts{Rows: 4, Examples: 4},
			files:  1,
			wantRow: func(ex Example) Example {
				return Example{Text: []string{"abc", "def", "abc", "def"}[ex.Row]}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ds, got, counts := readAll(t, tt.cfg)
			if ds.Shape() != tt.shape {
				t.Errorf("shape = %q, want %q", ds.Shape(), tt.shape)
			}
			if counts != tt.counts {
				t.Errorf("counts = %+v, want %+v", counts, tt.counts)
			}
			if ds.NumRows() != tt.counts.Rows {
				t.Errorf("NumRows = %d, want %d", ds.NumRows(), tt.counts.Rows)
			}
			if len(ds.Files()) != tt.files {
				t.Errorf("files = %v, want %d", ds.Files(), tt.files)
			}
			if int64(len(got)) != tt.counts.Examples {
				t.Fatalf("got %d examples, want %d", len(got), tt.counts.Examples)
			}
			for i, ex := range got {
				want := tt.wantRow(ex)
				want.Shape, want.File, want.Row = tt.shape, ex.File, ex.Row
				if !reflect.DeepEqual(ex, want) {
					t.Fatalf("example %d = %+v, want %+v", i, ex, want)
				}
			}
			for i, row := range tt.firstRows {
				if got[i].Row != row {
					t.Errorf("example %d is row %d, want %d", i, got[i].Row, row)
				}
			}
		})
	}
}

func TestReadNullsCounted(t *testing.T) {
	// parquet-go's delta_byte_array.parquet: c_first_name has 32 nulls, c_login is all null.
	_, got, counts := readAll(t, SourceConfig{Files: []string{pgo + "delta_byte_array.parquet"}, Columns: Columns{Text: "c_first_name"}})
	if want := (Counts{Rows: 1000, Examples: 968, Nulls: 32}); counts != want {
		t.Errorf("counts = %+v, want %+v", counts, want)
	}
	if got[0].Text != "Mark" || got[1].Text != "Lisa" || got[2].Text != "Evelyn" {
		t.Errorf("first names = %q, %q, %q; want Mark, Lisa, Evelyn", got[0].Text, got[1].Text, got[2].Text)
	}
	_, got, counts = readAll(t, SourceConfig{Files: []string{pgo + "delta_byte_array.parquet"}, Columns: Columns{Text: "c_login"}})
	if want := (Counts{Rows: 1000, Nulls: 1000}); counts != want || len(got) != 0 {
		t.Errorf("c_login: counts = %+v, %d examples; want %+v and none", counts, len(got), want)
	}
}

func TestNullError(t *testing.T) {
	ds, err := Open(context.Background(), SourceConfig{Files: []string{fixtures + "prompt_completion_gzip.parquet"}, Nulls: NullError})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	_, err = ds.Each(context.Background(), func(Example) error { n++; return nil })
	for _, want := range []string{"prompt_completion_gzip.parquet", `column "completion" is null`, "row 7"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error = %v, want it to contain %q", err, want)
		}
	}
	if n != 7 {
		t.Errorf("%d examples before the error, want 7", n)
	}
}

func TestSnappyAndZstdHoldTheSameRows(t *testing.T) {
	_, a, _ := readAll(t, SourceConfig{Files: []string{fixtures + "chat_snappy.parquet"}})
	_, b, _ := readAll(t, SourceConfig{Files: []string{fixtures + "chat_zstd.parquet"}})
	if len(a) != len(b) {
		t.Fatalf("%d and %d rows", len(a), len(b))
	}
	for i := range a {
		if !reflect.DeepEqual(a[i].Messages, b[i].Messages) {
			t.Fatalf("row %d differs: %v vs %v", i, a[i].Messages, b[i].Messages)
		}
	}
}

func TestMessagesNullsAndEmptyLists(t *testing.T) {
	// A messages column as pyarrow lays it out cannot be written by
	// parquet-go with nulls inside, so decode levels directly: an optional
	// list (def 1), repeated list (2), optional element (3), optional role (4).
	m := messagesColumn{name: "messages", role: scalarColumn{name: "messages.list.element.role"}, listNonNull: 1, listNonEmpty: 2, elementNonNull: 3}
	tests := []struct {
		name         string
		roles, conts []cell
		wantNull     string
		wantMessages []chat.Message
	}{
		{"null list", []cell{{def: 0, null: true}}, []cell{{def: 0, null: true}}, "messages", nil},
		{"empty list", []cell{{def: 1, null: true}}, []cell{{def: 1, null: true}}, "", nil},
		{"null element", []cell{{def: 4, s: "user"}, {rep: 1, def: 2, null: true}}, []cell{{def: 4, s: "hi"}, {rep: 1, def: 2, null: true}},
			"messages[1]", []chat.Message{{Role: "user", Content: "hi"}}},
		{"null role", []cell{{def: 3, null: true}}, []cell{{def: 4, s: "x"}}, "messages[0].role", []chat.Message{{Content: "x"}}},
		{"null content reads as empty", []cell{{def: 4, s: "assistant"}}, []cell{{def: 3, null: true}}, "", []chat.Message{{Role: "assistant"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var ex Example
			null, err := m.decode(tt.roles, tt.conts, &ex)
			if err != nil {
				t.Fatal(err)
			}
			if null != tt.wantNull || !reflect.DeepEqual(ex.Messages, tt.wantMessages) {
				t.Errorf("decode = %q, %v; want %q, %v", null, ex.Messages, tt.wantNull, tt.wantMessages)
			}
		})
	}
	var ex Example
	if _, err := m.decode([]cell{{def: 4}}, nil, &ex); err == nil || !strings.Contains(err.Error(), "disagree") {
		t.Errorf("mismatched role/content counts: error = %v", err)
	}
}

func TestSplitByFraction(t *testing.T) {
	rowsOf := func(cfg SourceConfig) map[string]bool {
		_, got, _ := readAll(t, cfg)
		out := map[string]bool{}
		for _, ex := range got {
			out[fmt.Sprintf("%s:%d", filepath.Base(ex.File), ex.Row)] = true
		}
		return out
	}
	files := []string{fixtures + "text_*.parquet"} // 2 files, 2000 rows
	split := func(seed uint64, part string) SourceConfig {
		return SourceConfig{Files: files, Split: Split{Fraction: 0.1, Seed: seed, Part: part}}
	}
	eval, train := rowsOf(split(7, PartEval)), rowsOf(split(7, PartTrain))
	if len(eval) != 200 || len(train) != 1800 {
		t.Fatalf("eval %d rows, train %d; want exactly 200 and 1800", len(eval), len(train))
	}
	for k := range eval {
		if train[k] {
			t.Fatalf("row %s is in both parts", k)
		}
	}
	if again := rowsOf(split(7, PartEval)); !reflect.DeepEqual(again, eval) {
		t.Error("the same seed chose other rows")
	}
	other := rowsOf(split(8, PartEval))
	same := 0
	for k := range other {
		if eval[k] {
			same++
		}
	}
	if len(other) != 200 || same > 60 { // independent 10% draws share about 20 rows
		t.Errorf("seed 8: %d rows, %d shared with seed 7", len(other), same)
	}
	inFirst := 0
	for k := range eval {
		if strings.HasPrefix(k, "text_brotli") {
			inFirst++
		}
	}
	if inFirst < 60 || inFirst > 140 {
		t.Errorf("%d of 200 eval rows in the first file; the permutation should spread them", inFirst)
	}
}

func TestPermutationIsABijection(t *testing.T) {
	for _, n := range []uint64{1, 2, 3, 7, 64, 65, 1000, 4097} {
		p := newPermutation(n, 42)
		seen := make([]bool, n)
		for i := range n {
			j := p.at(i)
			if j >= n || seen[j] {
				t.Fatalf("n=%d: at(%d) = %d repeats or leaves the range", n, i, j)
			}
			seen[j] = true
		}
	}
}

func TestOpenErrors(t *testing.T) {
	dir := t.TempDir()
	data, err := os.ReadFile(fixtures + "chat_zstd.parquet")
	if err != nil {
		t.Fatal(err)
	}
	truncated := filepath.Join(dir, "truncated.parquet")
	os.WriteFile(truncated, data[:len(data)/2], 0o644)
	noFooter := filepath.Join(dir, "no_footer.parquet")
	os.WriteFile(noFooter, data[:len(data)-4], 0o644)
	badFooterLen := filepath.Join(dir, "bad_footer_length.parquet")
	b := append([]byte(nil), data...)
	copy(b[len(b)-8:], []byte{0xff, 0xff, 0xff, 0x7f})
	os.WriteFile(badFooterLen, b, 0o644)
	tiny := filepath.Join(dir, "tiny.parquet")
	os.WriteFile(tiny, []byte("PAR1"), 0o644)

	tests := []struct {
		name string
		cfg  SourceConfig
		want []string
	}{
		{"missing file", SourceConfig{Files: []string{fixtures + "nope.parquet"}}, []string{"nope.parquet", "no such file"}},
		{"glob without match", SourceConfig{Files: []string{fixtures + "nope_*.parquet"}}, []string{`no files match "testdata/parquet/nope_*.parquet"`}},
		{"directory", SourceConfig{Files: []string{"testdata/parquet"}}, []string{"testdata/parquet is a directory"}},
		{"truncated", SourceConfig{Files: []string{truncated}}, []string{"truncated.parquet", "not a readable Parquet file"}},
		{"footer magic cut", SourceConfig{Files: []string{noFooter}}, []string{"no_footer.parquet", "not a readable Parquet file", "no Parquet magic at the end of the file"}},
		{"footer length corrupt", SourceConfig{Files: []string{badFooterLen}}, []string{"bad_footer_length.parquet", "not a readable Parquet file", "the footer length 2147483647 does not fit in the file's 7424 bytes"}},
		{"4-byte file", SourceConfig{Files: []string{tiny}}, []string{"tiny.parquet", "not a readable Parquet file", "4 bytes is too short"}},
		{"negative row count (parquet-go malformed)", SourceConfig{Files: []string{pgo + "malformed/negative_row_group_num_rows.parquet"}}, []string{"negative_row_group_num_rows.parquet", "num_rows"}},
		{"wrong column type", SourceConfig{Files: []string{fixtures + "chat_snappy.parquet"}, Shape: ShapeText, Columns: Columns{Text: "id"}},
			[]string{"chat_snappy.parquet", `text column "id" has type INT64, want a string`}},
		{"struct list as text", SourceConfig{Files: []string{fixtures + "chat_snappy.parquet"}, Shape: ShapeText, Columns: Columns{Text: "messages"}},
			[]string{"chat_snappy.parquet", `text column "messages" is a list (or map), want a string`}},
		{"list as text", SourceConfig{Files: []string{pgo + "list_columns.parquet"}, Columns: Columns{Text: "utf8_list"}},
			[]string{"list_columns.parquet", `text column "utf8_list" is a list (or map), want a string`}},
		{"missing configured column", SourceConfig{Files: []string{fixtures + "prompt_completion_gzip.parquet"}, Shape: ShapeText, Columns: Columns{Text: "body"}},
			[]string{"prompt_completion_gzip.parquet", `no text column "body"; the columns are "prompt", "completion", "split"`}},
		{"missing completion", SourceConfig{Files: []string{fixtures + "prompt_completion_gzip.parquet"}, Columns: Columns{Completion: "answer"}, Shape: ShapePromptCompletion},
			[]string{`no completion column "answer"`}},
		{"list of strings as messages", SourceConfig{Files: []string{pgo + "list_columns.parquet"}, Columns: Columns{Messages: "utf8_list"}},
			[]string{"list_columns.parquet", `messages column "utf8_list" is a list of STRING, want a list of {role, content} structs`}},
		{"messages with other field names", SourceConfig{Files: []string{fixtures + "chat_zstd.parquet"}, Columns: Columns{Role: "speaker"}},
			[]string{"chat_zstd.parquet", `the list's elements have fields "role", "content", want "speaker" and "content"`}},
		{"scalar as messages", SourceConfig{Files: []string{fixtures + "chat_zstd.parquet"}, Columns: Columns{Messages: "id"}},
			[]string{`messages column "id" is a INT64`}},
		{"legacy repeated group with int field", SourceConfig{Files: []string{pgo + "repeated_no_annotation.parquet"}, Columns: Columns{Messages: "phoneNumbers", Role: "number", Content: "kind"}},
			[]string{`messages field "phoneNumbers.phone.number" has type INT64`}},
		{"list of nulls as messages (parquet-go null_list)", SourceConfig{Files: []string{pgo + "null_list.parquet"}, Columns: Columns{Messages: "emptylist"}},
			[]string{"null_list.parquet", `messages column "emptylist" is a list of NULL, want a list of {role, content} structs`}},
		{"undetectable shape", SourceConfig{Files: []string{pgo + "empty.parquet"}},
			[]string{"empty.parquet", `cannot detect the dataset shape`, `the columns are "value"`}},
		{"missing split column", SourceConfig{Files: []string{fixtures + "text_plain_v1.parquet"}, Split: Split{Column: "fold", Values: []string{"1"}}},
			[]string{"text_plain_v1.parquet", `no split column "fold"`}},
		{"second file lacks the column", SourceConfig{Files: []string{fixtures + "text_plain_v1.parquet", fixtures + "prompt_completion_gzip.parquet"}},
			[]string{"prompt_completion_gzip.parquet", `no text column "text"`}},
		{"no files", SourceConfig{}, []string{"source.files: no files given"}},
		{"unknown shape", SourceConfig{Files: []string{"x"}, Shape: "chat"}, []string{`source.shape: unknown shape "chat"`}},
		{"unknown null policy", SourceConfig{Files: []string{"x"}, Nulls: "drop"}, []string{`source.nulls: unknown policy "drop"`}},
		{"split one-of", SourceConfig{Files: []string{"x"}, Split: Split{Column: "s", Values: []string{"a"}, Fraction: 0.5, Part: PartEval}}, []string{"mutually exclusive"}},
		{"split fraction range", SourceConfig{Files: []string{"x"}, Split: Split{Fraction: 1.5, Part: PartEval}}, []string{"source.split.fraction: must be in (0, 1), got 1.5"}},
		{"split part", SourceConfig{Files: []string{"x"}, Split: Split{Fraction: 0.5}}, []string{`source.split.part: must be "train" or "eval", got ""`}},
		{"split values", SourceConfig{Files: []string{"x"}, Split: Split{Column: "s"}}, []string{`source.split.values: no values given for column "s"`}},
		{"same columns", SourceConfig{Files: []string{"x"}, Columns: Columns{Prompt: "q", Completion: "q"}}, []string{`prompt and completion are the same column "q"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Open(context.Background(), tt.cfg)
			if err == nil {
				t.Fatal("Open succeeded")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

func TestConcurrentReads(t *testing.T) {
	ds, err := Open(context.Background(), SourceConfig{Files: []string{fixtures + "chat_*.parquet"}})
	if err != nil {
		t.Fatal(err)
	}
	errs := make(chan error, 4)
	for range 4 {
		go func() {
			n := 0
			_, err := ds.Each(context.Background(), func(ex Example) error {
				if !reflect.DeepEqual(ex.Messages, chatRow(int(ex.Row))) {
					return fmt.Errorf("row %d of %s: %v", ex.Row, ex.File, ex.Messages)
				}
				n++
				return nil
			})
			if err == nil && n != 1000 {
				err = fmt.Errorf("%d examples", n)
			}
			errs <- err
		}()
	}
	for range 4 {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
}

func TestEachStopsOnCallbackErrorAndCancel(t *testing.T) {
	ds, err := Open(context.Background(), SourceConfig{Files: []string{fixtures + "text_plain_v1.parquet"}})
	if err != nil {
		t.Fatal(err)
	}
	stop := fmt.Errorf("stop")
	n := 0
	counts, err := ds.Each(context.Background(), func(Example) error {
		if n++; n == 5 {
			return stop
		}
		return nil
	})
	if err != stop || counts.Examples != 5 {
		t.Errorf("Each = %+v, %v; want the callback's own error after 5 examples", counts, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := ds.Each(ctx, func(Example) error { return nil }); err != context.Canceled {
		t.Errorf("cancelled Each: %v", err)
	}
}
