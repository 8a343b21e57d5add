package chat_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/lethe-ml/lethe/data/chat"
	"github.com/lethe-ml/lethe/data/tokenizer"
)

// TestRenderedIDsMatchTransformers tokenizes each rendering of the checkpoint
// templates, without adding special tokens (the templates write them), and
// compares with the ids apply_chat_template(tokenize=True) gave.
func TestRenderedIDsMatchTransformers(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("testdata", "chat_templates.golden.json"))
	if err != nil {
		t.Fatal(err)
	}
	var golden map[string][]struct {
		Messages            []chat.Message `json:"messages"`
		AddGenerationPrompt bool           `json:"add_generation_prompt"`
		IDs                 []int          `json:"ids"`
	}
	if err := json.Unmarshal(raw, &golden); err != nil {
		t.Fatal(err)
	}
	for _, model := range []string{"llama3", "qwen3"} {
		t.Run(model, func(t *testing.T) {
			// The tokenizer package keeps the tokenizer files in its testdata.
			tok, err := tokenizer.Load(filepath.Join("..", "tokenizer", "testdata", model+".tokenizer.json.gz"))
			if err != nil {
				t.Fatal(err)
			}
			raw, err := os.ReadFile(filepath.Join("testdata", model+".tokenizer_config.json"))
			if err != nil {
				t.Fatal(err)
			}
			cfg, err := tokenizer.ParseConfig(raw, model)
			if err != nil {
				t.Fatal(err)
			}
			tmpl, opts, err := chat.FromConfig(cfg, "")
			if err != nil {
				t.Fatal(err)
			}
			vars := opts.Vars
			for i, c := range golden[model] {
				text, err := tmpl.Render(c.Messages, chat.Options{AddGenerationPrompt: c.AddGenerationPrompt, Vars: vars})
				if err != nil {
					t.Fatal(err)
				}
				enc, err := tok.Encode(text, false)
				if err != nil {
					t.Fatal(err)
				}
				if !slices.Equal(enc.IDs, c.IDs) {
					t.Errorf("case %d %q:\n got %v\nwant %v", i, text, enc.IDs, c.IDs)
				}
			}
		})
	}
}
