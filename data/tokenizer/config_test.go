package tokenizer

import (
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestLoadConfigBesideTokenizer(t *testing.T) {
	for _, c := range []struct {
		name                 string
		bos, eos, pad        string
		maxLen               int
		addBOS               *bool
		hasTemplate          bool
		additional, specials int
	}{
		{name: "llama3", bos: "<|begin_of_text|>", eos: "<|end_of_text|>", maxLen: 0, hasTemplate: true, specials: 2},
		{name: "qwen3", eos: "<|im_end|>", pad: "<|endoftext|>", maxLen: 131072, addBOS: new(false), hasTemplate: true, additional: 13, specials: 14},
		{name: "mistral", bos: "<s>", eos: "</s>", maxLen: 0, addBOS: new(true), specials: 3},
	} {
		tok := testTokenizer(t, c.name)
		cfg := tok.Config()
		if cfg == nil {
			t.Fatalf("%s: no config read", c.name)
		}
		if cfg.BOSToken != c.bos || cfg.EOSToken != c.eos || cfg.PadToken != c.pad {
			t.Errorf("%s: bos %q eos %q pad %q", c.name, cfg.BOSToken, cfg.EOSToken, cfg.PadToken)
		}
		if cfg.ModelMaxLength != c.maxLen {
			t.Errorf("%s: model_max_length %d, want %d (1e30 means no limit)", c.name, cfg.ModelMaxLength, c.maxLen)
		}
		if !reflect.DeepEqual(cfg.AddBOSToken, c.addBOS) {
			t.Errorf("%s: add_bos_token %v, want %v", c.name, cfg.AddBOSToken, c.addBOS)
		}
		if (cfg.ChatTemplate() != "") != c.hasTemplate {
			t.Errorf("%s: chat template present = %v", c.name, cfg.ChatTemplate() != "")
		}
		if len(cfg.AdditionalSpecialTokens) != c.additional || len(cfg.SpecialTokens()) != c.specials {
			t.Errorf("%s: %d additional, %d special tokens", c.name, len(cfg.AdditionalSpecialTokens), len(cfg.SpecialTokens()))
		}
		for _, s := range cfg.SpecialTokens() {
			if id, ok := tok.TokenToID(s); !ok || !tok.IsSpecial(id) {
				t.Errorf("%s: configured special token %q is not a special token of tokenizer.json", c.name, s)
			}
		}
	}
	// BERT has no tokenizer_config.json in testdata.
	if cfg := testTokenizer(t, "bert-base-uncased").Config(); cfg != nil {
		t.Errorf("bert: unexpected config %+v", cfg)
	}
}

func TestParseConfig(t *testing.T) {
	cfg, err := ParseConfig([]byte(`{
		"bos_token": {"content": "<s>", "lstrip": false, "__type": "AddedToken"},
		"eos_token": "</s>", "pad_token": null,
		"model_max_length": 1000000000000000019884624838656,
		"chat_template": [{"name": "default", "template": "A"}, {"name": "tool_use", "template": "B"}],
		"added_tokens_decoder": {"32000": {"content": "<pad>", "special": true, "normalized": false}},
		"padding_side": "left", "clean_up_tokenization_spaces": true, "custom_field": [1, 2]
	}`), "cfg.json")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.BOSToken != "<s>" || cfg.EOSToken != "</s>" || cfg.PadToken != "" || cfg.ModelMaxLength != 0 {
		t.Errorf("tokens/length: %+v", cfg)
	}
	if !reflect.DeepEqual(cfg.ChatTemplates, map[string]string{"default": "A", "tool_use": "B"}) || cfg.ChatTemplate() != "A" {
		t.Errorf("templates %v", cfg.ChatTemplates)
	}
	if a := cfg.AddedTokensDecoder[32000]; a.Content != "<pad>" || !a.Special || a.ID != 32000 {
		t.Errorf("added_tokens_decoder %+v", cfg.AddedTokensDecoder)
	}
	if cfg.PaddingSide != "left" || !cfg.CleanUpTokenizationSpaces || cfg.Raw["custom_field"] == nil {
		t.Errorf("other fields: %+v", cfg)
	}
	if got := cfg.TemplateVars(); !reflect.DeepEqual(got, map[string]any{"bos_token": "<s>", "eos_token": "</s>"}) {
		t.Errorf("TemplateVars %v", got)
	}
	for _, c := range []struct{ json, want string }{
		{`{"bos_token": 3}`, "bos_token"},
		{`{"chat_template": 3}`, "chat_template"},
		{`{"chat_template": [{"name": "x"}]}`, `want both "name" and "template"`},
		{`{"chat_template": [{"name": "a", "template": "1"}, {"name": "a", "template": "2"}]}`, `name "a" repeated`},
		{`{"model_max_length": "big"}`, "model_max_length"},
		{`{"added_tokens_decoder": {"x": {"content": "a"}}}`, `key "x" is not an id`},
		{`{"add_bos_token": "yes"}`, "add_bos_token"},
		{`{"bos_token": "<s>"`, "cfg.json"},
	} {
		_, err := ParseConfig([]byte(c.json), "cfg.json")
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "cfg.json") {
			t.Errorf("%s: error %v, want one naming cfg.json and %q", c.json, err, c.want)
		}
	}
}

func TestConfigPathFor(t *testing.T) {
	for _, c := range []struct{ file, want string }{
		{"m/tokenizer.json", "m/tokenizer_config.json"},
		{"testdata/llama3.tokenizer.json.gz", "testdata/llama3.tokenizer_config.json.gz"},
		{"m/vocab.json", ""},
	} {
		if got := configPathFor(filepath.FromSlash(c.file)); got != filepath.FromSlash(c.want) {
			t.Errorf("%s: %q, want %q", c.file, got, c.want)
		}
	}
}
