package main

import (
	"bytes"
	"fmt"
	"strings"
	"testing"

	"github.com/lethe-ml/lethe/data/chat"
	"github.com/lethe-ml/lethe/data/tokenizer"
)

const (
	parquetDir = "../../data/testdata/parquet/"
	llama3Tok  = "../../data/tokenizer/testdata/llama3.tokenizer.json.gz"
)

// runData runs lethe in-process and returns stdout.
func runData(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	root := newRootCmd(strings.NewReader(""), &out, &errOut)
	root.SetArgs(args)
	err := root.Execute()
	return out.String(), err
}

func TestDataInspect(t *testing.T) {
	out, err := runData(t, "data", "inspect", parquetDir+"prompt_completion_gzip.parquet", "--split-column", "split", "--split-value", "forget", "--samples", "2")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"file: " + parquetDir + "prompt_completion_gzip.parquet\n  rows: 300 in 1 row group(s) (300)\n  compression: GZIP\n",
		"      optional binary completion (STRING);\n",
		`shape: prompt_completion (columns "prompt" and "completion"; split column "split" in ["forget"])`,
		`prompt_completion_gzip.parquet row 0: {"prompt":"Q0: name the 0th prime?","completion":" A0","split":"forget"}` + "\n" +
			`  prompt_completion_gzip.parquet row 10: {"prompt":"Q10: name the 10th prime?","completion":" A10","split":"forget"}` + "\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "row 20") {
		t.Errorf("--samples 2 printed a third example:\n%s", out)
	}
	out, err = runData(t, "data", "inspect", parquetDir+"text_*.parquet", "--text-column", "body", "--samples", "1")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "total: 2 file(s), 2000 rows\n") || !strings.Contains(out, `shape: not detected: open `+parquetDir+`text_brotli_v2.parquet: cannot detect the dataset shape: no column "messages"`) {
		t.Errorf("renamed text column:\n%s", out)
	}
}

func TestDataErrors(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"data", "inspect"}, "requires at least 1 arg"},
		{[]string{"data", "inspect", parquetDir + "missing.parquet"}, "missing.parquet: no such file"},
		{[]string{"data", "inspect", parquetDir + "chat_zstd.parquet", "--shape", "chat"}, `source.shape: unknown shape "chat"`},
		{[]string{"data", "stats", parquetDir + "chat_zstd.parquet"}, "--tokenizer is required"},
		{[]string{"data", "stats", "--tokenizer", "nope.json", parquetDir + "chat_zstd.parquet"}, "--tokenizer: load tokenizer"},
		{[]string{"data", "stats", "--tokenizer", llama3Tok, "--chat-template", "vicuna", parquetDir + "chat_zstd.parquet"}, `--chat-template: unknown built-in chat template "vicuna"`},
		{[]string{"data", "stats", "--tokenizer", "../../data/tokenizer/testdata/bert-base-uncased.tokenizer.json.gz", parquetDir + "chat_zstd.parquet"},
			"a messages dataset needs a chat template"},
		{[]string{"data", "stats", "--tokenizer", "../../data/tokenizer/testdata/bert-base-uncased.tokenizer.json.gz", "--append-eos", parquetDir + "text_plain_v1.parquet"},
			"--append-eos: ../../data/tokenizer/testdata/bert-base-uncased.tokenizer.json.gz: no tokenizer_config.json naming an eos_token"},
	}
	for _, tt := range tests {
		_, err := runData(t, tt.args...)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("lethe %s: error = %v, want it to contain %q", strings.Join(tt.args, " "), err, tt.want)
		}
	}
}

func TestDataStatsMessages(t *testing.T) {
	out, err := runData(t, "data", "stats", "--tokenizer", llama3Tok, "--chat-template", "llama3", parquetDir+"chat_zstd.parquet")
	if err != nil {
		t.Fatal(err)
	}
	// Cross-check against rendering and encoding each conversation directly.
	tok, err := tokenizer.Load(llama3Tok)
	if err != nil {
		t.Fatal(err)
	}
	tmpl, err := chat.Builtin("llama3")
	if err != nil {
		t.Fatal(err)
	}
	total, longest := 0, 0
	for i := range 500 {
		text, err := tmpl.Render([]chat.Message{
			{Role: "system", Content: "You are terse."},
			{Role: "user", Content: fmt.Sprintf("What is %d + %d?", i, i)},
			{Role: "assistant", Content: fmt.Sprint(2 * i)},
		}, chat.Options{})
		if err != nil {
			t.Fatal(err)
		}
		enc, err := tok.Encode(text, false)
		if err != nil {
			t.Fatal(err)
		}
		total += enc.Len()
		longest = max(longest, enc.Len())
	}
	// The loss covers the reply (one number token) and <|eot_id|>.
	for _, want := range []string{
		"shape        messages\n",
		"examples     500 (null rows skipped: 0, outside the split: 0)\n",
		fmt.Sprintf("tokens       %d (mean %.1f per example)\n", total, float64(total)/500),
		"loss tokens  1000\n",
		fmt.Sprintf("max          %d\n", longest),
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

func TestDataStatsPromptCompletion(t *testing.T) {
	out, err := runData(t, "data", "stats", "--tokenizer", llama3Tok, "--append-eos", "--special", "--split-column", "split", "--split-value", "forget", parquetDir+"prompt_completion_gzip.parquet")
	if err != nil {
		t.Fatal(err)
	}
	tok, err := tokenizer.Load(llama3Tok)
	if err != nil {
		t.Fatal(err)
	}
	total := 0
	for i := 0; i < 300; i += 10 {
		enc, err := tok.Encode(fmt.Sprintf("Q%d: name the %dth prime? A%d", i, i, i), true)
		if err != nil {
			t.Fatal(err)
		}
		total += enc.Len() + 1 // + EOS
	}
	for _, want := range []string{
		"examples     30 (null rows skipped: 0, outside the split: 270)\n",
		fmt.Sprintf("tokens       %d (mean %.1f per example)\n", total, float64(total)/30),
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}
