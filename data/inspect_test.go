package data

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
)

func TestInspect(t *testing.T) {
	var out bytes.Buffer
	opts := InspectOptions{
		Source:   SourceConfig{Files: []string{fixtures + "prompt_completion_gzip.parquet"}, Split: Split{Column: "split", Values: []string{"forget"}}},
		Samples:  3,
		MaxChars: 12,
	}
	if err := Inspect(context.Background(), opts, &out); err != nil {
		t.Fatal(err)
	}
	want := `file: testdata/parquet/prompt_completion_gzip.parquet
  rows: 300 in 1 row group(s) (300)
  compression: GZIP
  created by: parquet-cpp-arrow version 25.0.1
  schema:
    message schema {
      optional binary prompt (STRING);
      optional binary completion (STRING);
      optional binary split (STRING);
    }
total: 1 file(s), 300 rows
shape: prompt_completion (columns "prompt" and "completion"; split column "split" in ["forget"])
samples:
  prompt_completion_gzip.parquet row 0: {"prompt":"Q0: name the… (11 more characters)","completion":" A0","split":"forget"}
  prompt_completion_gzip.parquet row 10: {"prompt":"Q10: name th… (13 more characters)","completion":" A10","split":"forget"}
  prompt_completion_gzip.parquet row 20: {"prompt":"Q20: name th… (13 more characters)","completion":" A20","split":"forget"}
`
	if out.String() != want {
		t.Errorf("Inspect printed\n%s\nwant\n%s", out.String(), want)
	}
}

func TestInspectSeveralFilesAndUnknownShape(t *testing.T) {
	var out bytes.Buffer
	err := Inspect(context.Background(), InspectOptions{Source: SourceConfig{Files: []string{fixtures + "chat_*.parquet"}}, Samples: 1}, &out)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"file: testdata/parquet/chat_snappy.parquet\n  rows: 500 in 4 row group(s) (128, 128, 128, 116)\n  compression: SNAPPY\n",
		"file: testdata/parquet/chat_zstd.parquet\n  rows: 500 in 3 row group(s) (200, 200, 100)\n  compression: ZSTD\n",
		"          optional group element {\n            optional binary role (STRING);\n",
		"total: 2 file(s), 1000 rows\nshape: messages (column \"messages\", fields \"role\" and \"content\")\n",
		`chat_snappy.parquet row 0: {"messages":[{"role":"system","content":"You are terse."},{"role":"user","content":"What is 0 + 0?"},{"role":"assistant","content":"0"}]}` + "\n",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
	out.Reset()
	if err := Inspect(context.Background(), InspectOptions{Source: SourceConfig{Files: []string{pgo + "empty.parquet"}}, Samples: 3}, &out); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "rows: 0 in 0 row group(s)\n") || !strings.Contains(out.String(), `shape: not detected: open testdata/parquet-go/empty.parquet: cannot detect the dataset shape`) {
		t.Errorf("empty.parquet:\n%s", out.String())
	}
	err = Inspect(context.Background(), InspectOptions{Source: SourceConfig{Files: []string{pgo + "malformed/negative_row_group_num_rows.parquet"}}}, &out)
	if err == nil || !strings.Contains(err.Error(), "negative_row_group_num_rows.parquet") {
		t.Errorf("malformed file: error = %v", err)
	}
}

func TestStats(t *testing.T) {
	var out bytes.Buffer
	st, err := Stats(context.Background(), StatsOptions{
		Source:   SourceConfig{Files: []string{fixtures + "prompt_completion_gzip.parquet"}},
		Tokenize: TokenizeConfig{AppendEOS: true, EOSID: fakeEOS},
		Encoder:  byteEncoder{},
	}, &out)
	if err != nil {
		t.Fatal(err)
	}
	// One token per byte, plus EOS; the loss covers the completion and EOS.
	var lengths []int
	var tokens, loss int64
	for i := range 300 {
		if i%50 == 7 {
			continue
		}
		p, c := fmt.Sprintf("Q%d: name the %dth prime?", i, i), fmt.Sprintf(" A%d", i)
		lengths = append(lengths, len(p)+len(c)+1)
		tokens += int64(len(p) + len(c) + 1)
		loss += int64(len(c) + 1)
	}
	slices.Sort(lengths)
	rank := func(p int) int { return lengths[(p*len(lengths)+99)/100-1] }
	want := LengthStats{
		Shape:    ShapePromptCompletion,
		Counts:   Counts{Rows: 300, Examples: 294, Nulls: 6},
		Examples: 294, Tokens: tokens, LossTokens: loss, Mean: float64(tokens) / 294,
		P50: rank(50), P90: rank(90), P95: rank(95), P99: rank(99), Max: lengths[293],
	}
	if st != want {
		t.Errorf("Stats = %+v\nwant    %+v", st, want)
	}
	if st.P50 != 33 || st.Max != 33 || lengths[0] != 27 {
		t.Errorf("p50 %d, max %d, min %d; want 33, 33, 27", st.P50, st.Max, lengths[0])
	}
	wantOut := fmt.Sprintf(`shape        prompt_completion
rows         300
examples     294 (null rows skipped: 6, outside the split: 0)
tokens       %d (mean %.1f per example)
loss tokens  %d
p50          33
p90          33
p95          33
p99          33
max          33
`, tokens, want.Mean, loss)
	if out.String() != wantOut {
		t.Errorf("printed\n%s\nwant\n%s", out.String(), wantOut)
	}
}

func TestStatsPercentiles(t *testing.T) {
	sorted := make([]int, 200)
	for i := range sorted {
		sorted[i] = i + 1
	}
	for p, want := range map[int]int{50: 100, 90: 180, 95: 190, 99: 198, 100: 200} {
		if got := percentile(sorted, p); got != want {
			t.Errorf("p%d of 1..200 = %d, want %d", p, got, want)
		}
	}
	if got := percentile([]int{7}, 99); got != 7 {
		t.Errorf("p99 of one value = %d", got)
	}
}

func TestStatsMessagesNeedATemplate(t *testing.T) {
	opts := StatsOptions{Source: SourceConfig{Files: []string{fixtures + "chat_zstd.parquet"}}, Encoder: byteEncoder{}}
	if _, err := Stats(context.Background(), opts, nil); err == nil || !strings.Contains(err.Error(), "needs a chat template") {
		t.Errorf("error = %v", err)
	}
	opts.Chat = RenderFunc(fakeChat)
	st, err := Stats(context.Background(), opts, nil)
	if err != nil {
		t.Fatal(err)
	}
	// Row i renders as <system>You are terse.</><user>What is i + i?</><assistant>2i</>.
	maxLen := 0
	for i := range 500 {
		s, _ := fakeChat(chatRow(i), false)
		maxLen = max(maxLen, len(s))
	}
	if st.Examples != 500 || st.Max != maxLen {
		t.Errorf("stats = %+v, want 500 examples, max %d", st, maxLen)
	}
}
