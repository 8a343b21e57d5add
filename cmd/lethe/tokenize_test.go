package main

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"io"
	"os"
	"slices"
	"strings"
	"testing"
)

// runCLI runs lethe in-process with args and stdin, returning stdout.
func runCLI(t *testing.T, stdin string, args ...string) (string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	root := newRootCmd(strings.NewReader(stdin), &out, &errOut)
	root.SetArgs(args)
	err := root.Execute()
	return out.String(), err
}

func TestTokenizeMatchesGolden(t *testing.T) {
	f, err := os.Open("../../data/tokenizer/testdata/golden.json.gz")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	var golden struct {
		Cases map[string][]struct {
			Text           string   `json:"text"`
			IDs            []int    `json:"ids"`
			IDsWithSpecial []int    `json:"ids_with_special"`
			Tokens         []string `json:"tokens"`
			Decoded        string   `json:"decoded"`
		} `json:"cases"`
	}
	if err := json.Unmarshal(raw, &golden); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ name, path string }{
		{"llama3", "../../data/tokenizer/testdata/llama3.tokenizer.json.gz"},
		{"gpt2", ""}, // the embedded default
		{"bert-base-uncased", "../../data/tokenizer/testdata/bert-base-uncased.tokenizer.json.gz"},
	} {
		cases := golden.Cases[tc.name]
		var in strings.Builder
		for _, c := range cases {
			line, _ := json.Marshal(c.Text)
			in.Write(line)
			in.WriteByte('\n')
		}
		for _, special := range []bool{false, true} {
			args := []string{"tokenize"}
			if tc.path != "" {
				args = append(args, "--tokenizer", tc.path)
			}
			if special {
				args = append(args, "--special")
			}
			out, err := runCLI(t, in.String(), args...)
			if err != nil {
				t.Fatalf("%s: %v", tc.name, err)
			}
			lines := strings.Split(strings.TrimSpace(out), "\n")
			if len(lines) != len(cases) {
				t.Fatalf("%s: %d output lines for %d inputs", tc.name, len(lines), len(cases))
			}
			var decodeIn strings.Builder
			for i, l := range lines {
				var got struct {
					IDs    []int    `json:"ids"`
					Tokens []string `json:"tokens"`
				}
				if err := json.Unmarshal([]byte(l), &got); err != nil {
					t.Fatalf("%s line %d: %v", tc.name, i, err)
				}
				want := cases[i].IDs
				if special {
					want = cases[i].IDsWithSpecial
				}
				if !slices.Equal(got.IDs, want) || len(got.IDs) != len(got.Tokens) {
					t.Errorf("%s case %d special=%v: ids %v, want %v", tc.name, i, special, got.IDs, want)
				}
				if !special {
					ids, _ := json.Marshal(map[string][]int{"ids": got.IDs})
					decodeIn.Write(ids)
					decodeIn.WriteByte('\n')
				}
			}
			if special {
				continue
			}
			args = []string{"tokenize", "--decode"}
			if tc.path != "" {
				args = append(args, "--tokenizer", tc.path)
			}
			out, err = runCLI(t, decodeIn.String(), args...)
			if err != nil {
				t.Fatal(err)
			}
			for i, l := range strings.Split(strings.TrimSpace(out), "\n") {
				var got struct{ Text string }
				if err := json.Unmarshal([]byte(l), &got); err != nil {
					t.Fatal(err)
				}
				if got.Text != cases[i].Decoded {
					t.Errorf("%s case %d: decoded %q, want %q", tc.name, i, got.Text, cases[i].Decoded)
				}
			}
		}
	}
}

func TestTokenizeBadInput(t *testing.T) {
	for _, tc := range []struct {
		stdin string
		args  []string
		want  string
	}{
		{`"ok"` + "\nnot json\n", []string{"tokenize"}, "line 2"},
		{`{"ids":[1]}`, []string{"tokenize"}, "line 1: want a JSON string"},
		{`{"text":"x"}`, []string{"tokenize", "--decode"}, `line 1: missing field "ids"`},
		{`"x"`, []string{"tokenize", "--tokenizer", "does/not/exist"}, "does/not/exist"},
	} {
		_, err := runCLI(t, tc.stdin, tc.args...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v with %q: error %v, want it to mention %q", tc.args, tc.stdin, err, tc.want)
		}
	}
}

func TestVersion(t *testing.T) {
	out, err := runCLI(t, "", "version", "--json")
	if err != nil {
		t.Fatal(err)
	}
	var info struct {
		Version   string `json:"version"`
		GoVersion string `json:"go_version"`
	}
	if err := json.Unmarshal([]byte(out), &info); err != nil {
		t.Fatalf("version --json: %v in %q", err, out)
	}
	if !strings.HasPrefix(info.GoVersion, "go1.") || info.Version == "" {
		t.Errorf("version %+v", info)
	}
}
