package tokenizer

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// The oracle golden file (testdata/oracle/golden.json.gz, written by
// testdata/oracle/gen.js with Hugging Face tokenizers 0.23.2) runs every
// component of tokenizer.json on hard strings. These tests check that lethe
// gives the same ids, tokens, type ids, character offsets, masks and decoded
// strings, case by case.

type oracleGolden struct {
	TokenizersVersion string            `json:"tokenizers_version"`
	Texts             []string          `json:"texts"`
	Tokenizers        []oracleTokenizer `json:"tokenizers"`
}

type oracleTokenizer struct {
	Name    string          `json:"name"`
	Group   string          `json:"group"`
	JSON    json.RawMessage `json:"json"`
	Cases   []oracleCase    `json:"cases"`
	Batches []oracleBatch   `json:"batches"`
	Decodes []oracleDecode  `json:"decodes"`
}

// oracleEncoding is an Encoding as the Node binding reports it.
type oracleEncoding struct {
	IDs               []int    `json:"ids"`
	Tokens            []string `json:"tokens"`
	Offsets           [][2]int `json:"offsets"`
	TypeIDs           []int    `json:"type_ids"`
	SpecialTokensMask []int    `json:"special_tokens_mask"`
	AttentionMask     []int    `json:"attention_mask"`
}

type oracleDecoded struct {
	Decoded          *string `json:"decoded"`
	DecodedSkip      *string `json:"decoded_skip"`
	DecodedError     string  `json:"decoded_error"`
	DecodedSkipError string  `json:"decoded_skip_error"`
}

type oracleCase struct {
	T       int    `json:"t"`
	P       *int   `json:"p"`
	Special bool   `json:"special"`
	Error   string `json:"error"`
	// Pre is the pre-tokenizer alone on the text: [piece, start, end] in
	// characters. Normalized is the normalizer alone.
	Pre        [][3]any `json:"pre"`
	Normalized *string  `json:"normalized"`
	oracleEncoding
	oracleDecoded
}

type oracleBatch struct {
	Texts     []int            `json:"ts"`
	Special   bool             `json:"special"`
	Encodings []oracleEncoding `json:"encodings"`
}

type oracleDecode struct {
	IDs []int `json:"ids"`
	oracleDecoded
}

// oracleKnownDiffs lists where lethe knowingly differs from the Hugging
// Face binary that made the golden file. A failure is logged instead of
// reported when the tokenizer's name, the case label and the message start
// with the entry's.
var oracleKnownDiffs = []struct{ name, label, msg, why string }{
	// LongestFirst on a pair where both sequences are longer than the
	// budget: lethe follows Hugging Face's truncate_encodings and its unit
	// tests (the shorter sequence keeps max/2, the longer max/2 + max%2).
	// The 0.23.2 binary that made the golden file sometimes gives the odd
	// token to the other sequence; probing it with generated pairs shows
	// the choice depends on how the words split into tokens, not only on
	// the lengths, which suggests it stops tokenizing a sequence early. Only
	// these four pairs are exempt.
	{"t_LongestFirst_noprocessor", `pair "Hello world" "How are you?"`, "ids", "LongestFirst split when both sequences are too long"},
	{"t_LongestFirst_noprocessor", `pair "a b c d e f g" "h i j k l m"`, "ids", "LongestFirst split when both sequences are too long"},
	{"t_LongestFirst_noprocessor", `pair "a b c d e f g h" "i j k l m n"`, "ids", "LongestFirst split when both sequences are too long"},
	{"t_LongestFirst_noprocessor", `pair "one two three four five six seven"`, "ids", "LongestFirst split when both sequences are too long"},
}

func loadOracle(t testing.TB) (*oracleGolden, map[string]map[string]json.RawMessage) {
	t.Helper()
	data, err := readMaybeGzip(filepath.Join("testdata", "oracle", "golden.json.gz"))
	if err != nil {
		t.Fatal(err)
	}
	var g oracleGolden
	if err := json.Unmarshal(data, &g); err != nil {
		t.Fatal(err)
	}
	mdata, err := readMaybeGzip(filepath.Join("testdata", "oracle", "models.json.gz"))
	if err != nil {
		t.Fatal(err)
	}
	var models map[string]map[string]json.RawMessage
	if err := json.Unmarshal(mdata, &models); err != nil {
		t.Fatal(err)
	}
	return &g, models
}

// resolveOracleJSON expands a tokenizer.json whose model is
// {"$ref": NAME, ...overrides} into a complete one.
func resolveOracleJSON(raw json.RawMessage, models map[string]map[string]json.RawMessage) ([]byte, error) {
	var top map[string]json.RawMessage
	if err := json.Unmarshal(raw, &top); err != nil {
		return nil, err
	}
	var model map[string]json.RawMessage
	if err := json.Unmarshal(top["model"], &model); err != nil {
		return nil, err
	}
	if ref, ok := model["$ref"]; ok {
		var name string
		if err := json.Unmarshal(ref, &name); err != nil {
			return nil, err
		}
		base, ok := models[name]
		if !ok {
			return nil, fmt.Errorf("unknown model %q", name)
		}
		full := make(map[string]json.RawMessage, len(base))
		for k, v := range base {
			full[k] = v
		}
		for k, v := range model {
			if k != "$ref" {
				full[k] = v
			}
		}
		m, err := json.Marshal(full)
		if err != nil {
			return nil, err
		}
		top["model"] = m
	}
	return json.Marshal(top)
}

func TestOracle(t *testing.T) {
	g, models := loadOracle(t)
	if len(g.Tokenizers) < 200 {
		t.Fatalf("oracle golden has %d tokenizers, want at least 200", len(g.Tokenizers))
	}
	for _, spec := range g.Tokenizers {
		t.Run(spec.Name, func(t *testing.T) {
			t.Parallel()
			data, err := resolveOracleJSON(spec.JSON, models)
			if err != nil {
				t.Fatal(err)
			}
			tok, err := FromJSON(data, spec.Name)
			if err != nil {
				t.Fatal(err)
			}
			r := oracleRunner{t: t, g: g, tok: tok, name: spec.Name}
			for _, c := range spec.Cases {
				r.checkCase(c)
			}
			for i, b := range spec.Batches {
				r.checkBatch(i, b)
			}
			for _, d := range spec.Decodes {
				r.checkDecode(fmt.Sprintf("decode %v", d.IDs), d.IDs, d.oracleDecoded)
			}
		})
	}
}

type oracleRunner struct {
	t    *testing.T
	g    *oracleGolden
	tok  *Tokenizer
	name string
}

func (r *oracleRunner) errorf(label, format string, args ...any) {
	r.t.Helper()
	msg := fmt.Sprintf(format, args...)
	for _, k := range oracleKnownDiffs {
		if strings.HasPrefix(r.name, k.name) && strings.HasPrefix(label, k.label) && strings.HasPrefix(msg, k.msg) {
			r.t.Logf("known difference (%s): %s: %s", k.why, label, msg)
			return
		}
	}
	r.t.Errorf("%s: %s", label, msg)
}

func (r *oracleRunner) checkCase(c oracleCase) {
	r.t.Helper()
	text := r.g.Texts[c.T]
	texts := []string{text}
	label := fmt.Sprintf("%q", truncateForLog(text))
	var enc *Encoding
	var err error
	if c.P != nil {
		pair := r.g.Texts[*c.P]
		texts = append(texts, pair)
		label = fmt.Sprintf("pair %q %q", truncateForLog(text), truncateForLog(pair))
		enc, err = r.tok.EncodePair(text, pair, c.Special)
	} else {
		enc, err = r.tok.Encode(text, c.Special)
	}
	label = fmt.Sprintf("%s special=%v", label, c.Special)
	if c.Pre != nil {
		r.checkPreTokenized(label, text, c.Pre)
	}
	if c.Normalized != nil {
		if got, err := r.tok.normalizeString(text); err != nil {
			r.errorf(label, "normalize: %v", err)
		} else if got != *c.Normalized {
			r.errorf(label, "normalized\n got %q\nwant %q", got, *c.Normalized)
		}
	}
	if c.Error != "" {
		if err == nil {
			r.errorf(label, "no error, want one like %q (got ids %v)", c.Error, enc.IDs)
		}
		return
	}
	if err != nil {
		r.errorf(label, "%v", err)
		return
	}
	r.checkEncoding(label, enc, c.oracleEncoding, texts)
	r.checkDecode(label, c.IDs, c.oracleDecoded)
}

// checkPreTokenized runs the pre-tokenizer alone on text, as the binding's
// preTokenizeString does.
func (r *oracleRunner) checkPreTokenized(label, text string, want [][3]any) {
	r.t.Helper()
	var words []normString
	if r.tok.pre != nil && text != "" {
		var err error
		if words, err = r.tok.pre.split(newNormString(text, 0, len(text)), nil); err != nil {
			r.errorf(label, "pre-tokenize: %v", err)
			return
		}
	}
	e := &Encoding{}
	for _, w := range words {
		sp := w.inputRange(0, len(w.s))
		e.Offsets = append(e.Offsets, Offset{sp.start, sp.end})
	}
	got := make([][3]any, len(words))
	for i, o := range e.CharOffsets(text) {
		got[i] = [3]any{words[i].s, float64(o.Start), float64(o.End)}
	}
	// Hugging Face reports the empty text itself as a piece when the
	// pre-tokenizer does not split (an empty Sequence); encoding drops it.
	nonEmpty := [][3]any{}
	for _, w := range want {
		if w[0] != "" {
			nonEmpty = append(nonEmpty, w)
		}
	}
	want = nonEmpty
	if !reflect.DeepEqual(got, want) {
		r.errorf(label, "pre-tokenized\n got %q\nwant %q", got, want)
	}
}

func (r *oracleRunner) checkEncoding(label string, enc *Encoding, want oracleEncoding, texts []string) {
	r.t.Helper()
	if !slices.Equal(enc.IDs, want.IDs) {
		r.errorf(label, "ids\n got %v\nwant %v\n got tokens %q\nwant tokens %q", enc.IDs, want.IDs, enc.Tokens, want.Tokens)
		return
	}
	if !reflect.DeepEqual(enc.Tokens, nonNil(want.Tokens)) {
		r.errorf(label, "tokens\n got %q\nwant %q", enc.Tokens, want.Tokens)
	}
	if !slices.Equal(enc.TypeIDs, want.TypeIDs) {
		r.errorf(label, "type ids\n got %v\nwant %v", enc.TypeIDs, want.TypeIDs)
	}
	if !slices.Equal(enc.SpecialTokensMask, want.SpecialTokensMask) {
		r.errorf(label, "special tokens mask\n got %v\nwant %v", enc.SpecialTokensMask, want.SpecialTokensMask)
	}
	if !slices.Equal(enc.AttentionMask, want.AttentionMask) {
		r.errorf(label, "attention mask\n got %v\nwant %v", enc.AttentionMask, want.AttentionMask)
	}
	offs := [][2]int{}
	for _, o := range enc.CharOffsets(texts...) {
		offs = append(offs, [2]int{o.Start, o.End})
	}
	if !reflect.DeepEqual(offs, nonNilOffsets(want.Offsets)) {
		r.errorf(label, "char offsets\n got %v\nwant %v\ntokens %q", offs, want.Offsets, enc.Tokens)
	}
}

func (r *oracleRunner) checkDecode(label string, ids []int, want oracleDecoded) {
	r.t.Helper()
	for _, skip := range []bool{false, true} {
		w, wantErr := want.Decoded, want.DecodedError
		if skip {
			w, wantErr = want.DecodedSkip, want.DecodedSkipError
		}
		got, err := r.tok.Decode(ids, skip)
		switch {
		case wantErr != "":
			if err == nil {
				r.errorf(label, "decode(skip=%v) = %q, want an error like %q", skip, got, wantErr)
			}
		case w == nil:
		case err != nil:
			r.errorf(label, "decode(skip=%v): %v", skip, err)
		case got != *w:
			r.errorf(label, "decode(skip=%v) of %v\n got %q\nwant %q", skip, ids, got, *w)
		}
	}
}

func (r *oracleRunner) checkBatch(i int, b oracleBatch) {
	r.t.Helper()
	texts := make([]string, len(b.Texts))
	for k, ti := range b.Texts {
		texts[k] = r.g.Texts[ti]
	}
	label := fmt.Sprintf("batch %d special=%v", i, b.Special)
	encs, err := r.tok.EncodeBatch(texts, b.Special)
	if err != nil {
		r.errorf(label, "%v", err)
		return
	}
	if len(encs) != len(b.Encodings) {
		r.errorf(label, "%d encodings, want %d", len(encs), len(b.Encodings))
		return
	}
	for k, e := range encs {
		r.checkEncoding(fmt.Sprintf("%s text %d %q", label, k, truncateForLog(texts[k])), e, b.Encodings[k], texts[k:k+1])
	}
}

func nonNilOffsets(o [][2]int) [][2]int {
	if o == nil {
		return [][2]int{}
	}
	return o
}

// TestOracleCoverage makes sure the golden file exercises every component
// type lethe supports, so that a regenerated file cannot silently lose one.
func TestOracleCoverage(t *testing.T) {
	g, models := loadOracle(t)
	seen := map[string]bool{}
	var walk func(kind string, v any)
	walk = func(kind string, v any) {
		switch x := v.(type) {
		case map[string]any:
			if typ, ok := x["type"].(string); ok && kind != "" {
				seen[kind+":"+typ] = true
			}
			for k, c := range x {
				switch k {
				case "normalizer", "normalizers":
					walk("normalizer", c)
				case "pre_tokenizer", "pretokenizers":
					walk("pre_tokenizer", c)
				case "decoder", "decoders":
					walk("decoder", c)
				case "post_processor", "processors":
					walk("post_processor", c)
				case "model":
					walk("model", c)
				case "truncation", "padding":
					if c != nil {
						seen[k] = true
					}
				}
			}
		case []any:
			for _, c := range x {
				walk(kind, c)
			}
		}
	}
	for _, spec := range g.Tokenizers {
		data, err := resolveOracleJSON(spec.JSON, models)
		if err != nil {
			t.Fatal(err)
		}
		var v any
		if err := json.Unmarshal(data, &v); err != nil {
			t.Fatal(err)
		}
		walk("", v)
	}
	for _, want := range []string{
		"normalizer:NFC", "normalizer:NFD", "normalizer:NFKC", "normalizer:NFKD", "normalizer:Lowercase",
		"normalizer:StripAccents", "normalizer:Prepend", "normalizer:Replace", "normalizer:Strip",
		"normalizer:BertNormalizer", "normalizer:Nmt", "normalizer:ByteLevel", "normalizer:Sequence",
		"pre_tokenizer:ByteLevel", "pre_tokenizer:Split", "pre_tokenizer:Metaspace", "pre_tokenizer:BertPreTokenizer",
		"pre_tokenizer:Whitespace", "pre_tokenizer:WhitespaceSplit", "pre_tokenizer:Digits", "pre_tokenizer:Punctuation",
		"pre_tokenizer:CharDelimiterSplit", "pre_tokenizer:FixedLength", "pre_tokenizer:Sequence",
		"model:BPE", "model:WordPiece", "model:Unigram",
		"post_processor:TemplateProcessing", "post_processor:BertProcessing", "post_processor:RobertaProcessing",
		"post_processor:ByteLevel", "post_processor:Sequence",
		"decoder:ByteLevel", "decoder:ByteFallback", "decoder:Fuse", "decoder:Strip", "decoder:Replace",
		"decoder:Metaspace", "decoder:WordPiece", "decoder:BPEDecoder", "decoder:CTC", "decoder:Sequence",
		"truncation", "padding",
	} {
		if !seen[want] {
			t.Errorf("the oracle golden file never uses %s", want)
		}
	}
}
