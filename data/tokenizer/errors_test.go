package tokenizer

import (
	"encoding/json"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// minimalJSON is a small valid tokenizer.json: a character-level BPE with
// one merge. Tests put other components into it.
const minimalJSON = `{
  "version": "1.0", "truncation": null, "padding": null, "added_tokens": [],
  "normalizer": null, "pre_tokenizer": null, "post_processor": null, "decoder": null,
  "model": {"type": "BPE", "dropout": null, "unk_token": null, "continuing_subword_prefix": null,
    "end_of_word_suffix": null, "fuse_unk": false, "byte_fallback": false, "ignore_merges": false,
    "vocab": {"a": 0, "b": 1, "ab": 2, "▁": 3, " ": 4}, "merges": ["a b"]}
}`

// withField returns minimalJSON with one top-level field replaced.
func withField(t *testing.T, field, value string) []byte {
	t.Helper()
	var m map[string]json.RawMessage
	if err := json.Unmarshal([]byte(minimalJSON), &m); err != nil {
		t.Fatal(err)
	}
	m[field] = json.RawMessage(value)
	out, err := json.Marshal(m)
	if err != nil {
		t.Fatalf("%s: %v", value, err)
	}
	return out
}

func TestMinimalJSONLoads(t *testing.T) {
	tok, err := FromJSON([]byte(minimalJSON), "minimal")
	if err != nil {
		t.Fatal(err)
	}
	enc, err := tok.Encode("abab", false)
	if err != nil || !slices.Equal(enc.IDs, []int{2, 2}) {
		t.Fatalf("Encode = %v, %v; want [2 2]", enc, err)
	}
}

// TestUnsupportedComponents checks that a component lethe does not
// implement is an error naming its JSON path and its type.
func TestUnsupportedComponents(t *testing.T) {
	for _, c := range []struct {
		field, value string
		want         []string
	}{
		{"normalizer", `{"type": "Precompiled", "precompiled_charsmap": "AAAA"}`,
			[]string{`normalizer: unsupported type "Precompiled"`}},
		{"normalizer", `{"type": "Sequence", "normalizers": [{"type": "NFKC"}, {"type": "Precompiled", "precompiled_charsmap": null}]}`,
			[]string{`normalizer.normalizers[1]: unsupported type "Precompiled"`}},
		{"pre_tokenizer", `{"type": "UnicodeScripts"}`,
			[]string{`pre_tokenizer: unsupported type "UnicodeScripts"`}},
		{"pre_tokenizer", `{"type": "Sequence", "pretokenizers": [{"type": "WhitespaceSplit"}, {"type": "UnicodeScripts"}]}`,
			[]string{`pre_tokenizer.pretokenizers[1]: unsupported type "UnicodeScripts"`}},
		{"model", `{"type": "WordLevel", "vocab": {"a": 0}, "unk_token": "a"}`,
			[]string{`model: unsupported type "WordLevel"`}},
		{"decoder", `{"type": "Sequence", "decoders": [{"type": "Fuse"}, {"type": "Cyrillic"}]}`,
			[]string{`decoder.decoders[1]: unsupported type "Cyrillic"`}},
		{"post_processor", `{"type": "Sequence", "processors": [{"type": "ByteLevel"}, {"type": "Bogus"}]}`,
			[]string{`post_processor.processors[1]: unsupported type "Bogus"`}},
		{"normalizer", `{"normalizers": []}`, []string{`normalizer: missing field "type"`}},
		{"pre_tokenizer", `{"type": "Split", "pattern": {"Regex": "("}, "behavior": "Isolated", "invert": false}`,
			[]string{`pre_tokenizer.pattern: regex "("`}},
		{"pre_tokenizer", `{"type": "Split", "pattern": {"Glob": "*"}, "behavior": "Isolated", "invert": false}`,
			[]string{`pre_tokenizer.pattern`}},
		{"pre_tokenizer", `{"type": "Split", "pattern": {"String": " "}, "behavior": "Bogus", "invert": false}`,
			[]string{`pre_tokenizer.behavior`, `"Bogus"`}},
		{"pre_tokenizer", `{"type": "Punctuation", "behavior": "Sideways"}`,
			[]string{`pre_tokenizer.behavior`, `"Sideways"`}},
		{"pre_tokenizer", `{"type": "Metaspace", "replacement": "▁", "prepend_scheme": "sometimes", "split": true}`,
			[]string{`pre_tokenizer.prepend_scheme`, `"sometimes"`}},
		{"pre_tokenizer", `{"type": "Metaspace", "replacement": "▁▁", "prepend_scheme": "always", "split": true}`,
			[]string{`pre_tokenizer.replacement`}},
		{"pre_tokenizer", `{"type": "CharDelimiterSplit", "delimiter": "ab"}`,
			[]string{`pre_tokenizer.delimiter`}},
		{"pre_tokenizer", `{"type": "FixedLength", "length": 0}`,
			[]string{`pre_tokenizer.length`}},
		{"decoder", `{"type": "Strip", "content": "ab", "start": 1, "stop": 0}`,
			[]string{`decoder.content`}},
		{"post_processor", `{"type": "TemplateProcessing", "single": [{"SpecialToken": {"id": "X", "type_id": 0}}], "pair": [], "special_tokens": {}}`,
			[]string{`post_processor.single[0]`, `"X"`}},
		{"post_processor", `{"type": "TemplateProcessing", "single": [{"Sequence": {"id": "C", "type_id": 0}}], "pair": [], "special_tokens": {}}`,
			[]string{`post_processor.single[0]`, `"C"`}},
		{"post_processor", `{"type": "TemplateProcessing", "single": "$A [SEP]", "pair": "$A $B", "special_tokens": {}}`,
			[]string{`post_processor`}},
		{"post_processor", `{"type": "BertProcessing", "sep": ["[SEP]"], "cls": ["[CLS]", 0]}`,
			[]string{`post_processor.sep`}},
		{"truncation", `{"max_length": 4, "strategy": "Middle", "direction": "Right", "stride": 0}`,
			[]string{`truncation: strategy`, `"Middle"`}},
		{"truncation", `{"max_length": 4, "strategy": "LongestFirst", "direction": "Right", "stride": 2}`,
			[]string{`truncation: stride`}},
		{"padding", `{"strategy": "Longest", "direction": "Right", "pad_id": 0, "pad_type_id": 0, "pad_token": "[PAD]"}`,
			[]string{`padding: strategy`, `"Longest"`}},
		{"added_tokens", `{"id": 9}`, []string{`added_tokens`}},
	} {
		_, err := FromJSON(withField(t, c.field, c.value), "test.json")
		if err == nil {
			t.Errorf("%s %s: no error", c.field, c.value)
			continue
		}
		for _, w := range c.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s %s:\n error %q\n does not contain %q", c.field, c.value, err, w)
			}
		}
		if !strings.Contains(err.Error(), "test.json") {
			t.Errorf("%s: error %q does not name the file", c.field, err)
		}
	}
}

// TestModelErrors checks errors that name a model field.
func TestModelErrors(t *testing.T) {
	for _, c := range []struct{ model, want string }{
		{`{"type": "BPE", "vocab": {"a": 0}, "merges": ["a b"]}`, `model.merges[0]`},
		{`{"type": "BPE", "vocab": {"a": 0, "b": 1}, "merges": ["a b"]}`, `model.merges[0]`},
		{`{"type": "BPE", "vocab": {"a": 0, "b": 1, "ab": 2}, "merges": ["a b c"]}`, `model.merges[0]`},
		{`{"type": "BPE", "vocab": {"a": 0, "b": 1, "ab": 2}, "merges": [["a"]]}`, `model.merges[0]`},
		{`{"type": "BPE", "vocab": {"a": 0}, "merges": [], "dropout": 1.5}`, `model.dropout`},
		{`{"type": "BPE", "vocab": {"a": -1}, "merges": []}`, `model.vocab`},
		{`{"type": "BPE", "merges": []}`, `model.vocab`},
		{`{"type": "BPE", "vocab": [1, 2], "merges": []}`, `model`},
		{`{"type": "Unigram", "unk_id": 5, "vocab": [["a", 0]]}`, `model.unk_id`},
		{`{"type": "Unigram", "unk_id": 0, "vocab": [["a"]]}`, `model.vocab[0]`},
		{`{"type": "Unigram", "unk_id": 0, "vocab": [["a", "high"]]}`, `model.vocab[0]`},
		{`{"type": "WordPiece", "vocab": "a b c"}`, `model`},
		{`{"vocab": {}}`, `model: missing field "type"`},
		{`null`, `model`},
	} {
		_, err := FromJSON(withField(t, "model", c.model), "test.json")
		if err == nil {
			t.Errorf("%s: no error", c.model)
		} else if !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s:\n error %q\n does not contain %q", c.model, err, c.want)
		}
	}
}

// TestEncodeErrors checks the errors Hugging Face also gives at encoding
// time, not at load time.
func TestEncodeErrors(t *testing.T) {
	for _, c := range []struct{ model, text string }{
		// A Unigram model without unk_id cannot encode unknown characters.
		{`{"type": "Unigram", "unk_id": null, "vocab": [["a", -1], ["b", -2]]}`, "abc"},
		// Nor with byte fallback: the Viterbi search needs unk_id first.
		{`{"type": "Unigram", "unk_id": null, "byte_fallback": true, "vocab": [["a", -1], ["<0x63>", -2]]}`, "ac"},
		// A WordPiece unknown token missing from the vocabulary.
		{`{"type": "WordPiece", "unk_token": "[UNK]", "continuing_subword_prefix": "##", "max_input_chars_per_word": 100, "vocab": {"a": 0}}`, "b"},
	} {
		tok, err := FromJSON(withField(t, "model", c.model), "test.json")
		if err != nil {
			t.Errorf("%s: %v", c.model, err)
			continue
		}
		if _, err := tok.Encode(c.text, false); err == nil {
			t.Errorf("%s: Encode(%q) gave no error", c.model, c.text)
		}
		// Text the model covers still encodes.
		if _, err := tok.Encode("a", false); err != nil {
			t.Errorf("%s: Encode(a): %v", c.model, err)
		}
	}
}

// errorCorpus returns small valid tokenizer.json files: the minimal one
// and some of the oracle tokenizers.
func errorCorpus(t *testing.T) [][]byte {
	t.Helper()
	out := [][]byte{[]byte(minimalJSON)}
	g, models := loadOracle(t)
	seen := map[string]bool{}
	for _, spec := range g.Tokenizers {
		if seen[spec.Group] && len(spec.JSON) < 600 {
			continue
		}
		seen[spec.Group] = true
		// Shrink the vocabularies so that the corpus stays quick.
		data, err := resolveOracleJSON(spec.JSON, shrinkModels(t, models))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := FromJSON(data, spec.Name); err != nil {
			continue
		}
		out = append(out, data)
	}
	return out
}

// shrinkModels keeps the vocabulary of each oracle model but drops its
// merges after the first few, so that the files are small.
func shrinkModels(t *testing.T, models map[string]map[string]json.RawMessage) map[string]map[string]json.RawMessage {
	t.Helper()
	out := map[string]map[string]json.RawMessage{}
	for name, m := range models {
		c := map[string]json.RawMessage{}
		for k, v := range m {
			c[k] = v
		}
		if raw, ok := m["merges"]; ok {
			var merges []json.RawMessage
			if err := json.Unmarshal(raw, &merges); err != nil {
				t.Fatal(err)
			}
			c["merges"], _ = json.Marshal(merges[:min(len(merges), 20)])
		}
		out[name] = c
	}
	return out
}

// TestCorruptJSON checks that truncated and mangled tokenizer.json files
// are errors, never panics.
func TestCorruptJSON(t *testing.T) {
	corpus := errorCorpus(t)
	if len(corpus) < 5 {
		t.Fatalf("only %d files in the corpus", len(corpus))
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for fi, data := range corpus {
		// Every truncation is invalid JSON.
		for k := 0; k < 60; k++ {
			n := rng.IntN(len(data) - 1)
			if _, err := loadNoPanic(t, data[:n]); err == nil {
				t.Errorf("file %d truncated to %d bytes: no error", fi, n)
			}
		}
		// Mangled bytes may still parse; they must not panic, and what
		// loads must encode and decode without panicking.
		for k := 0; k < 150; k++ {
			mut := append([]byte(nil), data...)
			const junk = "{}[]\",:0-19aéZ\\ \x00"
			for j := 0; j < 1+rng.IntN(3); j++ {
				mut[rng.IntN(len(mut))] = junk[rng.IntN(len(junk))]
			}
			tok, err := loadNoPanic(t, mut)
			if err != nil || tok == nil {
				continue
			}
			exerciseNoPanic(t, tok)
		}
	}
}

// TestWrongTypes replaces each field of each component by values of the
// wrong type: the load must fail or succeed without panicking.
func TestWrongTypes(t *testing.T) {
	bad := []string{`null`, `0`, `-1`, `99999`, `2.5`, `"x"`, `""`, `[]`, `[[]]`, `{}`, `{"type": null}`, `true`}
	for _, data := range componentCorpus(t) {
		var top map[string]any
		if err := json.Unmarshal(data, &top); err != nil {
			t.Fatal(err)
		}
		var paths [][]string
		var walk func(v any, path []string)
		walk = func(v any, path []string) {
			m, ok := v.(map[string]any)
			if !ok {
				return
			}
			for k, c := range m {
				p := append(append([]string(nil), path...), k)
				paths = append(paths, p)
				if k != "vocab" && k != "special_tokens" {
					walk(c, p)
				}
			}
		}
		walk(top, nil)
		for _, p := range paths {
			for _, b := range bad {
				var c map[string]any
				if err := json.Unmarshal(data, &c); err != nil {
					t.Fatal(err)
				}
				m := c
				for _, k := range p[:len(p)-1] {
					m = m[k].(map[string]any)
				}
				var v any
				if err := json.Unmarshal([]byte(b), &v); err != nil {
					t.Fatal(err)
				}
				m[p[len(p)-1]] = v
				mut, err := json.Marshal(c)
				if err != nil {
					t.Fatal(err)
				}
				tok, err := loadNoPanic(t, mut)
				if err == nil && tok != nil {
					exerciseNoPanic(t, tok)
				}
			}
		}
	}
}

// componentCorpus returns the components of a few oracle tokenizers per
// group around the minimal model, so that every field can be mangled
// quickly.
func componentCorpus(t *testing.T) [][]byte {
	t.Helper()
	var minimal map[string]json.RawMessage
	if err := json.Unmarshal([]byte(minimalJSON), &minimal); err != nil {
		t.Fatal(err)
	}
	g, _ := loadOracle(t)
	out := [][]byte{[]byte(minimalJSON)}
	perGroup := map[string]int{}
	for _, spec := range g.Tokenizers {
		if perGroup[spec.Group] == 3 {
			continue
		}
		var top map[string]json.RawMessage
		if err := json.Unmarshal(spec.JSON, &top); err != nil {
			t.Fatal(err)
		}
		top["model"] = minimal["model"]
		top["added_tokens"] = json.RawMessage(`[{"id": 5, "content": "<s>", "special": true, "lstrip": true}]`)
		data, err := json.Marshal(top)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := FromJSON(data, spec.Name); err != nil {
			continue
		}
		perGroup[spec.Group]++
		out = append(out, data)
	}
	return out
}

func loadNoPanic(t *testing.T, data []byte) (tok *Tokenizer, err error) {
	t.Helper()
	defer func() {
		if r := recover(); r != nil {
			t.Fatalf("FromJSON panicked: %v\ninput: %.300s", r, data)
		}
	}()
	return FromJSON(data, "mangled.json")
}

func exerciseNoPanic(t *testing.T, tok *Tokenizer) {
	t.Helper()
	defer func() {
		if r := recover(); r != nil {
			t.Fatalf("encoding or decoding panicked: %v", r)
		}
	}()
	for _, s := range []string{"", "ab ab", "Hello wörld 日本 👍🏽\r\n\t<s>", "\x00\xff invalid"} {
		if enc, err := tok.Encode(s, true); err == nil {
			tok.Decode(enc.IDs, false)
			tok.Decode(enc.IDs, true)
		}
		tok.EncodePair(s, "x", true)
	}
	tok.EncodeBatch([]string{"a", "", "ab b"}, true)
	tok.Decode([]int{-5, 0, 1, 2, 3, 1 << 30}, false)
}

// TestDecodeArbitraryIDs decodes id lists that no encoding gives (out of
// range, lone continuation bytes, unpaired byte tokens) with every oracle
// tokenizer: no panics, and the same result on the second call.
func TestDecodeArbitraryIDs(t *testing.T) {
	g, models := loadOracle(t)
	rng := rand.New(rand.NewPCG(3, 4))
	for _, spec := range g.Tokenizers {
		data, err := resolveOracleJSON(spec.JSON, models)
		if err != nil {
			t.Fatal(err)
		}
		tok, err := FromJSON(data, spec.Name)
		if err != nil {
			t.Fatal(err)
		}
		size := tok.VocabSize() + 3
		for k := 0; k < 20; k++ {
			ids := make([]int, rng.IntN(12))
			for i := range ids {
				ids[i] = rng.IntN(size+10) - 5
			}
			a, errA := tok.Decode(ids, k%2 == 0)
			b, errB := tok.Decode(ids, k%2 == 0)
			if a != b || (errA == nil) != (errB == nil) {
				t.Errorf("%s: Decode(%v) is not stable", spec.Name, ids)
			}
		}
	}
}

// TestStripDecoderNoPanic covers the Strip decoder on tokens made only of
// its content, where Hugging Face panics (start and stop overlap): lethe
// strips what is there.
func TestStripDecoderNoPanic(t *testing.T) {
	data := withField(t, "decoder", `{"type": "Strip", "content": "▁", "start": 2, "stop": 3}`)
	tok, err := FromJSON(data, "strip.json")
	if err != nil {
		t.Fatal(err)
	}
	for _, ids := range [][]int{{3}, {3, 3}, {0, 3, 1}, {}} {
		if _, err := tok.Decode(ids, false); err != nil {
			t.Errorf("Decode(%v): %v", ids, err)
		}
	}
}

// TestLoadErrors checks the errors of Load itself.
func TestLoadErrors(t *testing.T) {
	dir := t.TempDir()
	if _, err := Load(filepath.Join(dir, "missing.json")); err == nil {
		t.Error("Load of a missing file: no error")
	}
	if _, err := Load(dir); err == nil || !strings.Contains(err.Error(), "no tokenizer.json") {
		t.Errorf("Load of an empty folder: %v", err)
	}
	for _, c := range []struct{ data, want string }{
		{``, "not a tokenizer.json"},
		{`[]`, "not a tokenizer.json"},
		{`{"version": "1.0"}`, "model: missing"},
		{`{"model": {"type": "BPE", "vocab": {}, "merges": []}, "extra": 1}`, `unknown top-level field "extra"`},
	} {
		if _, err := FromJSON([]byte(c.data), "x.json"); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("FromJSON(%q) = %v, want an error containing %q", c.data, err, c.want)
		}
	}
}

// FuzzFromJSON loads arbitrary bytes; with seeds from the error corpus,
// `go test` runs them, `go test -fuzz FuzzFromJSON` explores further.
func FuzzFromJSON(f *testing.F) {
	f.Add([]byte(minimalJSON))
	f.Add(withField(&testing.T{}, "pre_tokenizer", `{"type": "Split", "pattern": {"Regex": "\\w+|\\b"}, "behavior": "MergedWithNext", "invert": true}`))
	f.Add(withField(&testing.T{}, "normalizer", `{"type": "Sequence", "normalizers": [{"type": "NFKD"}, {"type": "StripAccents"}, {"type": "Replace", "pattern": {"String": "a"}, "content": "bb"}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		tok, err := FromJSON(data, "fuzz.json")
		if err != nil {
			return
		}
		exerciseNoPanic(t, tok)
	})
}
