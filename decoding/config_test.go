package decoding

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestDefaults(t *testing.T) {
	d := Defaults()
	if d.DoSample || d.Temperature != 1 || d.TopK != 50 || d.TopP != 1 || d.MinP != 0 || d.TypicalP != 1 ||
		d.RepetitionPenalty != 1 || d.NumBeams != 1 || d.MaxNewTokens != 0 || d.MaxLength != 0 ||
		d.EOSTokenIDs != nil || d.PadTokenID != nil {
		t.Errorf("Defaults() = %+v", d)
	}
	if err := d.Validate(); err != nil {
		t.Error(err)
	}
}

// TestLoadFixtures reads the generation_config.json files that transformers
// 5.17 wrote for the tiny test models in shared/fixtures/hf.
func TestLoadFixtures(t *testing.T) {
	files, err := filepath.Glob("testdata/hf/*.json")
	if err != nil || len(files) == 0 {
		t.Fatalf("no fixtures: %v", err)
	}
	for _, f := range files {
		cfg, err := LoadGenerationConfig(f)
		if err != nil {
			t.Fatal(err)
		}
		if cfg.DoSample || cfg.TopK != 50 || !slices.Equal(cfg.EOSTokenIDs, []int{2}) ||
			cfg.PadTokenID == nil || *cfg.PadTokenID != 0 || cfg.BOSTokenID == nil || *cfg.BOSTokenID != 1 {
			t.Errorf("%s: %+v", f, cfg)
		}
		for _, k := range []string{"_from_model_config", "transformers_version", "use_cache", "output_attentions", "output_hidden_states"} {
			if _, ok := cfg.Raw[k]; !ok {
				t.Errorf("%s: Raw lacks %q", f, k)
			}
		}
		if string(cfg.Raw["transformers_version"]) != `"5.17.0"` {
			t.Errorf("%s: transformers_version %s", f, cfg.Raw["transformers_version"])
		}
		if w := cfg.Warnings(); len(w) != 0 {
			t.Errorf("%s: warnings %q", f, w)
		}
		ch, err := NewChain(cfg, 320)
		if err != nil || ch.String() != "none" {
			t.Errorf("%s: chain %v, %v", f, ch, err)
		}
	}
}

// TestLoadHubFiles reads generation_config.json files as published on the
// Hugging Face Hub for popular checkpoints.
func TestLoadHubFiles(t *testing.T) {
	for _, tc := range []struct {
		file  string
		check func(t *testing.T, c GenerationConfig)
		chain string
	}{
		{"llama3_instruct.json", func(t *testing.T, c GenerationConfig) {
			if !c.DoSample || c.Temperature != 0.6 || c.TopP != 0.9 || c.TopK != DefaultTopK ||
				!slices.Equal(c.EOSTokenIDs, []int{128001, 128008, 128009}) || c.PadTokenID != nil || *c.BOSTokenID != 128000 {
				t.Errorf("%+v", c)
			}
			if pad, ok := c.PadID(); !ok || pad != 128001 {
				t.Errorf("PadID = %d, %v; want the first EOS id 128001", pad, ok)
			}
		}, "Temperature(0.6) → TopK(50) → TopP(0.9)"},
		{"qwen2_5_instruct.json", func(t *testing.T, c GenerationConfig) {
			if !c.DoSample || c.RepetitionPenalty != 1.05 || c.Temperature != 0.7 || c.TopP != 0.8 || c.TopK != 20 ||
				!slices.Equal(c.EOSTokenIDs, []int{151645, 151643}) || *c.PadTokenID != 151643 {
				t.Errorf("%+v", c)
			}
		}, "RepetitionPenalty(1.05) → Temperature(0.7) → TopK(20) → TopP(0.8)"},
		{"qwen3.json", func(t *testing.T, c GenerationConfig) {
			if c.Temperature != 0.6 || c.TopK != 20 || c.TopP != 0.95 {
				t.Errorf("%+v", c)
			}
		}, "Temperature(0.6) → TopK(20) → TopP(0.95)"},
		{"gemma2.json", func(t *testing.T, c GenerationConfig) {
			if c.DoSample || !slices.Equal(c.EOSTokenIDs, []int{1, 107}) || string(c.Raw["cache_implementation"]) != `"hybrid"` {
				t.Errorf("%+v", c)
			}
		}, "none"},
		{"gpt2.json", func(t *testing.T, c GenerationConfig) {
			if !slices.Equal(c.EOSTokenIDs, []int{50256}) || c.PadTokenID != nil {
				t.Errorf("%+v", c)
			}
		}, "none"},
		{"legacy_greedy.json", func(t *testing.T, c GenerationConfig) {
			// null values keep the defaults.
			if c.Temperature != 1 || c.TopP != 1 || c.PadTokenID != nil || c.MaxLength != 4096 || c.MinNewTokens != 2 {
				t.Errorf("%+v", c)
			}
			w := c.Warnings()
			if len(w) != 1 || !strings.Contains(w[0], "no_repeat_ngram_size is 3") {
				t.Errorf("warnings %q", w)
			}
			if n, err := c.MaxNewTokensFor(100, 0); n != 3996 || err != nil {
				t.Errorf("MaxNewTokensFor(100) = %d, %v; want 3996", n, err)
			}
		}, "MinNewTokens(2, eos=[2])"},
	} {
		t.Run(tc.file, func(t *testing.T) {
			c, err := LoadGenerationConfig(filepath.Join("testdata/hub", tc.file))
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, c)
			ch, err := NewChain(c, 152064)
			if err != nil {
				t.Fatal(err)
			}
			if ch.String() != tc.chain {
				t.Errorf("chain %q, want %q", ch, tc.chain)
			}
		})
	}
}

func TestLoadErrors(t *testing.T) {
	for _, tc := range []struct {
		file string
		want string
	}{
		{"top_k_string.json", `field "top_k": want an integer, got "20"`},
		{"top_k_fraction.json", `field "top_k": want an integer, got 20.5`},
		{"eos_mixed.json", `field "eos_token_id": element 1: want an integer, got "2"`},
		{"do_sample_number.json", `field "do_sample": want true or false, got 1`},
		{"max_new_tokens_zero.json", `field "max_new_tokens": must be greater than 0, got 0`},
		{"not_object.json", "not a JSON object"},
		{"truncated.json", "not a JSON object"},
	} {
		path := filepath.Join("testdata/bad", tc.file)
		_, err := LoadGenerationConfig(path)
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), path) {
			t.Errorf("%s: error %v, want it to name the file and contain %q", tc.file, err, tc.want)
		}
	}
}

func TestLoadMissingAndDirectory(t *testing.T) {
	dir := t.TempDir()
	c, err := LoadGenerationConfig(filepath.Join(dir, "generation_config.json"))
	if err != nil {
		t.Fatal(err)
	}
	if c.DoSample || c.TopK != 50 || c.Raw != nil {
		t.Errorf("missing file gave %+v, want Defaults()", c)
	}
	if err := os.WriteFile(filepath.Join(dir, GenerationConfigName), []byte(`{"do_sample": true, "top_p": 0.5, "x": [1]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	c, err = LoadGenerationConfig(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !c.DoSample || c.TopP != 0.5 || string(c.Raw["x"]) != "[1]" {
		t.Errorf("directory gave %+v", c)
	}
}

func TestValidate(t *testing.T) {
	greedy := Defaults()
	greedy.Temperature, greedy.TopP = 0, 5 // ignored by greedy decoding, as in transformers
	if err := greedy.Validate(); err != nil {
		t.Errorf("greedy config with unused sampling values: %v", err)
	}
	for _, tc := range []struct {
		name string
		edit func(*GenerationConfig)
		want string
	}{
		{"temperature 0", func(c *GenerationConfig) { c.Temperature = 0 }, "temperature must be a finite number > 0"},
		{"top_p above 1", func(c *GenerationConfig) { c.TopP = 1.5 }, "top_p must be in [0, 1]"},
		{"negative top_k", func(c *GenerationConfig) { c.TopK = -1 }, "top_k must be >= 0"},
		{"min_p above 1", func(c *GenerationConfig) { c.MinP = 2 }, "min_p must be in [0, 1]"},
		{"typical_p 0", func(c *GenerationConfig) { c.TypicalP = 0 }, "typical_p must be in (0, 1]"},
		{"repetition_penalty 0", func(c *GenerationConfig) { c.RepetitionPenalty = 0 }, "repetition_penalty must be"},
		{"negative eos", func(c *GenerationConfig) { c.EOSTokenIDs = []int{-1} }, "eos_token_id -1"},
	} {
		c := Defaults()
		c.DoSample = true
		tc.edit(&c)
		if err := c.Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want %q", tc.name, err, tc.want)
		}
	}
}

func TestOverridesValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		o    Overrides
		want string
	}{
		{"temperature 0", Overrides{Temperature: ptr(0.0)}, "temperature must be > 0, got 0"},
		{"temperature negative", Overrides{Temperature: ptr(-1.0)}, "temperature must be > 0, got -1"},
		{"top_p 0", Overrides{TopP: ptr(0.0)}, "top_p must be in (0, 1], got 0"},
		{"top_p 1.1", Overrides{TopP: ptr(1.1)}, "top_p must be in (0, 1], got 1.1"},
		{"top_k -3", Overrides{TopK: ptr(-3)}, "top_k must be >= 0 (0 disables it), got -3"},
		{"min_p -0.1", Overrides{MinP: ptr(-0.1)}, "min_p must be in [0, 1], got -0.1"},
		{"typical_p 0", Overrides{TypicalP: ptr(0.0)}, "typical_p must be in (0, 1], got 0"},
		{"repetition_penalty 0", Overrides{RepetitionPenalty: ptr(0.0)}, "repetition_penalty must be > 0, got 0"},
		{"max_new_tokens 0", Overrides{MaxNewTokens: ptr(0)}, "max_new_tokens must be > 0, got 0"},
		{"min_new_tokens -1", Overrides{MinNewTokens: ptr(-1)}, "min_new_tokens must be >= 0, got -1"},
		{"negative stop id", Overrides{StopTokenIDs: []int{3, -2}}, "stop_token_ids: -2 is negative"},
		{"pad -1", Overrides{PadTokenID: ptr(-1)}, "pad_token_id must be >= 0, got -1"},
	} {
		err := tc.o.Validate()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want %q", tc.name, err, tc.want)
		}
	}
	// Every bad field is reported at once.
	err := Overrides{Temperature: ptr(0.0), TopP: ptr(2.0)}.Validate()
	if err == nil || !strings.Contains(err.Error(), "temperature") || !strings.Contains(err.Error(), "top_p") {
		t.Errorf("two bad fields: %v", err)
	}
	ok := Overrides{Temperature: ptr(0.01), TopP: ptr(1.0), TopK: ptr(0), MinP: ptr(1.0), TypicalP: ptr(1.0), RepetitionPenalty: ptr(0.5)}
	if err := ok.Validate(); err != nil {
		t.Errorf("valid overrides: %v", err)
	}
}

func TestMerge(t *testing.T) {
	base, err := LoadGenerationConfig("testdata/hub/llama3_instruct.json")
	if err != nil {
		t.Fatal(err)
	}
	merged, err := Merge(base, Overrides{
		TopK:         ptr(0),
		Temperature:  ptr(1.0),
		MaxNewTokens: ptr(128),
		StopTokenIDs: []int{128009, 42},
		PadTokenID:   ptr(0),
	})
	if err != nil {
		t.Fatal(err)
	}
	if !merged.DoSample || merged.TopK != 0 || merged.Temperature != 1 || merged.TopP != 0.9 || merged.MaxNewTokens != 128 ||
		!slices.Equal(merged.StopTokenIDs, []int{128009, 42}) || *merged.PadTokenID != 0 ||
		!slices.Equal(merged.EOSTokenIDs, []int{128001, 128008, 128009}) {
		t.Errorf("merged %+v", merged)
	}
	if base.TopK != 50 || base.Temperature != 0.6 || base.PadTokenID != nil || base.StopTokenIDs != nil {
		t.Errorf("Merge modified its base: %+v", base)
	}
	ch, err := NewChain(merged, 128256)
	if err != nil || ch.String() != "TopP(0.9)" {
		t.Errorf("merged chain %v, %v", ch, err)
	}
	// EOS ids are replaced, not appended; greedy via do_sample false.
	greedy, err := Merge(base, Overrides{DoSample: ptr(false), EOSTokenIDs: []int{7}})
	if err != nil {
		t.Fatal(err)
	}
	if greedy.DoSample || !slices.Equal(greedy.EOSTokenIDs, []int{7}) {
		t.Errorf("greedy merge %+v", greedy)
	}
	if w := greedy.Warnings(); len(w) != 2 || !strings.Contains(w[0], "temperature is 0.6") || !strings.Contains(w[1], "top_p is 0.9") {
		t.Errorf("warnings %q", w)
	}
	if _, err := Merge(base, Overrides{TopP: ptr(0.0)}); err == nil || !strings.Contains(err.Error(), "top_p") {
		t.Errorf("bad override accepted: %v", err)
	}
}

func TestMaxNewTokensFor(t *testing.T) {
	for _, tc := range []struct {
		name                 string
		maxNew, maxLen       int
		prompt, maxPositions int
		want                 int
		wantErr              string
	}{
		{"max_new_tokens wins", 64, 10, 30, 0, 64, ""},
		{"max_length counts the prompt", 0, 100, 30, 0, 70, ""},
		{"default is 20 new tokens", 0, 0, 30, 0, 20, ""},
		{"default capped by positions", 0, 0, 30, 40, 10, ""},
		{"prompt fills max_length", 0, 30, 30, 0, 0, "max_length is 30"},
		{"prompt fills the positions", 0, 0, 40, 40, 0, "max_length is 40"},
	} {
		c := Defaults()
		c.MaxNewTokens, c.MaxLength = tc.maxNew, tc.maxLen
		got, err := c.MaxNewTokensFor(tc.prompt, tc.maxPositions)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("%s: error %v, want %q", tc.name, err, tc.wantErr)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("%s: got %d, %v; want %d", tc.name, got, err, tc.want)
		}
	}
}

func TestWarningsRawKeys(t *testing.T) {
	c, err := ParseGenerationConfig([]byte(`{"no_repeat_ngram_size": 0, "epsilon_cutoff": 0.0, "suppress_tokens": null,
		"bad_words_ids": [[5]], "renormalize_logits": true, "transformers_version": "4.40.0"}`))
	if err != nil {
		t.Fatal(err)
	}
	w := c.Warnings()
	if len(w) != 2 || !strings.HasPrefix(w[0], "bad_words_ids is [[5]]") || !strings.HasPrefix(w[1], "renormalize_logits is true") {
		t.Errorf("warnings %q", w)
	}
}

// TestJSONRoundTrip writes a configuration as JSON and parses it back: unset
// fields stay out of the file (transformers rejects max_new_tokens 0).
func TestJSONRoundTrip(t *testing.T) {
	c, err := LoadGenerationConfig("testdata/hub/qwen2_5_instruct.json")
	if err != nil {
		t.Fatal(err)
	}
	c.Raw = nil
	data, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	for _, absent := range []string{"max_new_tokens", "min_p", "bos_token_id\":0"} {
		if strings.Contains(string(data), absent) {
			t.Errorf("%s written: %s", absent, data)
		}
	}
	back, err := ParseGenerationConfig(data)
	if err != nil {
		t.Fatal(err)
	}
	back.Raw = nil
	again, _ := json.Marshal(back)
	if string(again) != string(data) {
		t.Errorf("round trip changed the config:\n%s\n%s", data, again)
	}
}
