package tokenizer

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"reflect"
	"slices"
	"sync"
	"testing"
)

// goldenCase is one string of testdata/golden.json, encoded by Hugging Face
// tokenizers 0.23.2.
type goldenCase struct {
	Text           string   `json:"text"`
	IDs            []int    `json:"ids"`
	IDsWithSpecial []int    `json:"ids_with_special"`
	Tokens         []string `json:"tokens"`
	Offsets        [][2]int `json:"offsets"`
	Decoded        string   `json:"decoded"`
}

var goldenTokenizers = []string{"llama3", "qwen3", "mistral", "llama2", "gpt2", "bert-base-uncased"}

var (
	loadOnce sync.Map // name -> *onceTokenizer
)

type onceTokenizer struct {
	once sync.Once
	tok  *Tokenizer
	err  error
}

// testTokenizer loads testdata/NAME.tokenizer.json.gz (GPT-2's is the one
// embedded in package builtin) once per test binary.
func testTokenizer(t testing.TB, name string) *Tokenizer {
	t.Helper()
	v, _ := loadOnce.LoadOrStore(name, &onceTokenizer{})
	o := v.(*onceTokenizer)
	o.once.Do(func() {
		path := filepath.Join("testdata", name+".tokenizer.json.gz")
		if name == "gpt2" {
			path = filepath.Join("builtin", "gpt2.tokenizer.json.gz") // shipped in the binary
		}
		o.tok, o.err = Load(path)
	})
	if o.err != nil {
		t.Fatal(o.err)
	}
	return o.tok
}

func loadGolden(t testing.TB) map[string][]goldenCase {
	t.Helper()
	data, err := readMaybeGzip(filepath.Join("testdata", "golden.json.gz"))
	if err != nil {
		t.Fatal(err)
	}
	var g struct {
		Cases map[string][]goldenCase `json:"cases"`
	}
	if err := json.Unmarshal(data, &g); err != nil {
		t.Fatal(err)
	}
	return g.Cases
}

func TestGolden(t *testing.T) {
	cases := loadGolden(t)
	for _, name := range goldenTokenizers {
		t.Run(name, func(t *testing.T) {
			tok := testTokenizer(t, name)
			if len(cases[name]) != 48 {
				t.Fatalf("golden has %d cases for %s, want 48", len(cases[name]), name)
			}
			for i, c := range cases[name] {
				label := fmt.Sprintf("case %d %q", i, truncateForLog(c.Text))
				enc, err := tok.Encode(c.Text, false)
				if err != nil {
					t.Errorf("%s: %v", label, err)
					continue
				}
				if !slices.Equal(enc.IDs, c.IDs) {
					t.Errorf("%s: ids\n got %v\nwant %v\n got tokens %q\nwant tokens %q", label, enc.IDs, c.IDs, enc.Tokens, c.Tokens)
				}
				if !reflect.DeepEqual(enc.Tokens, nonNil(c.Tokens)) {
					t.Errorf("%s: tokens\n got %q\nwant %q", label, enc.Tokens, c.Tokens)
				}
				var offs [][2]int
				for _, o := range enc.CharOffsets(c.Text) {
					offs = append(offs, [2]int{o.Start, o.End})
				}
				if len(c.Offsets) > 0 && !reflect.DeepEqual(offs, c.Offsets) {
					t.Errorf("%s: char offsets\n got %v\nwant %v", label, offs, c.Offsets)
				}
				withSpecial, err := tok.Encode(c.Text, true)
				if err != nil {
					t.Errorf("%s: %v", label, err)
					continue
				}
				if !slices.Equal(withSpecial.IDs, c.IDsWithSpecial) {
					t.Errorf("%s: ids with special\n got %v\nwant %v", label, withSpecial.IDs, c.IDsWithSpecial)
				}
				dec, err := tok.Decode(c.IDs, false)
				if err != nil {
					t.Errorf("%s: decode: %v", label, err)
				} else if dec != c.Decoded {
					t.Errorf("%s: decoded\n got %q\nwant %q", label, dec, c.Decoded)
				}
			}
		})
	}
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func truncateForLog(s string) string {
	if r := []rune(s); len(r) > 40 {
		return string(r[:40]) + "…"
	}
	return s
}
