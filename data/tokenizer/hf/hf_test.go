//go:build hftokenizers

package hf

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/lethe-ml/lethe/data/tokenizer"
)

// TestSameAsPureGo checks that both backends give the same ids and decoded
// text on every golden string. It runs only in builds with the tag.
func TestSameAsPureGo(t *testing.T) {
	f, err := os.Open("../testdata/golden.json.gz")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(zr)
	var golden struct {
		Cases map[string][]struct {
			Text string `json:"text"`
			IDs  []int  `json:"ids"`
		} `json:"cases"`
	}
	if err := json.Unmarshal(raw, &golden); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"llama3", "qwen3", "mistral", "bert-base-uncased"} {
		// The Rust library reads plain JSON: unpack the test file.
		data, err := os.ReadFile(filepath.Join("..", "testdata", name+".tokenizer.json.gz"))
		if err != nil {
			t.Fatal(err)
		}
		plain := filepath.Join(t.TempDir(), "tokenizer.json")
		zr, _ := gzip.NewReader(bytes.NewReader(data))
		js, _ := io.ReadAll(zr)
		if err := os.WriteFile(plain, js, 0o644); err != nil {
			t.Fatal(err)
		}
		rt, err := Load(plain)
		if err != nil {
			t.Fatal(err)
		}
		pure, err := tokenizer.Load(plain)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range golden.Cases[name] {
			a, _ := rt.Encode(c.Text, false)
			b, _ := pure.Encode(c.Text, false)
			if len(a.IDs) != len(b.IDs) {
				t.Fatalf("%s %q: rust %v, go %v", name, c.Text, a.IDs, b.IDs)
			}
			for i := range a.IDs {
				if a.IDs[i] != b.IDs[i] || a.IDs[i] != c.IDs[i] {
					t.Fatalf("%s %q: rust %v, go %v, golden %v", name, c.Text, a.IDs, b.IDs, c.IDs)
				}
			}
			da, _ := rt.Decode(a.IDs, false)
			db, _ := pure.Decode(b.IDs, false)
			if da != db {
				t.Errorf("%s %q: rust decodes %q, go %q", name, c.Text, da, db)
			}
		}
	}
}
