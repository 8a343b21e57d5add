package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/lethe-ml/lethe/data/tokenizer"
)

// writeByteTokenizer writes a byte-level BPE tokenizer.json whose 256 byte
// tokens and 64 merged pairs fill the fixtures' 320-token vocabulary.
func writeByteTokenizer(t *testing.T, dir string) *tokenizer.Tokenizer {
	t.Helper()
	// GPT-2's byte alphabet: printable Latin-1 bytes map to themselves, the
	// others to U+0100 and up.
	var alphabet []string
	n := 0
	for b := 0; b < 256; b++ {
		if ('!' <= b && b <= '~') || (0xA1 <= b && b <= 0xAC) || (0xAE <= b && b <= 0xFF) {
			alphabet = append(alphabet, string(rune(b)))
		} else {
			alphabet = append(alphabet, string(rune(256+n)))
			n++
		}
	}
	vocab := map[string]int{}
	for b, s := range alphabet {
		vocab[s] = b
	}
	var merges [][2]string
	letters := "etaoinsrhl"
	for _, a := range letters {
		for _, b := range letters {
			if len(vocab) == 320 {
				break
			}
			pair := string(a) + string(b)
			if _, dup := vocab[pair]; !dup {
				vocab[pair] = len(vocab)
				merges = append(merges, [2]string{string(a), string(b)})
			}
		}
	}
	for len(vocab) < 320 { // fill up to the model's vocabulary size
		vocab[alphabet[' ']+string(rune('a'+len(vocab)%26))+strings.Repeat("x", len(vocab))] = len(vocab)
	}
	tj := map[string]any{
		"version":        "1.0",
		"added_tokens":   []any{},
		"normalizer":     nil,
		"pre_tokenizer":  map[string]any{"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true},
		"post_processor": nil,
		"decoder":        map[string]any{"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": true, "use_regex": true},
		"model":          map[string]any{"type": "BPE", "vocab": vocab, "merges": merges, "byte_fallback": false, "ignore_merges": false},
	}
	data, _ := json.Marshal(tj)
	if err := os.WriteFile(filepath.Join(dir, "tokenizer.json"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	tok, err := tokenizer.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// TestGenerateText runs `lethe generate --prompt`: the printed (streamed)
// text is the decoding of the tokens `--prompt-ids` gives for the same
// prompt.
func TestGenerateText(t *testing.T) {
	dir := t.TempDir()
	for _, f := range []string{"config.json", "generation_config.json", "model.safetensors"} {
		data, err := os.ReadFile(fixtureDir + "gpt2/" + f)
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(dir, f), data, 0o644)
	}
	tok := writeByteTokenizer(t, dir)
	prompt := "the rain in"
	enc, err := tok.Encode(prompt, true)
	if err != nil {
		t.Fatal(err)
	}
	ids := make([]int64, len(enc.IDs))
	for i, id := range enc.IDs {
		ids[i] = int64(id)
	}
	args := []string{"generate", "--model", dir, "--backend", "go:ops_sequential", "--max-new-tokens", "12", "--min-new-tokens", "12"}
	out, err := runCLI(t, "", append(args, "--prompt-ids", joinIDs(ids))...)
	if err != nil {
		t.Fatal(err)
	}
	var got struct{ IDs []int }
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got.IDs[:len(enc.IDs)], enc.IDs) || len(got.IDs) != len(enc.IDs)+12 {
		t.Fatalf("ids %v for prompt %v", got.IDs, enc.IDs)
	}
	want, err := tok.Decode(got.IDs[len(enc.IDs):], true)
	if err != nil {
		t.Fatal(err)
	}
	text, err := runCLI(t, "", append(args, "--prompt", prompt)...)
	if err != nil {
		t.Fatal(err)
	}
	if text != want+"\n" {
		t.Errorf("streamed text %q, want %q", text, want)
	}
}

// TestChatPrompt checks --chat's rendering and tokenization against
// transformers' apply_chat_template ids for Llama 3.
func TestChatPrompt(t *testing.T) {
	tok, err := tokenizer.Load("../../data/tokenizer/testdata/llama3.tokenizer.json.gz")
	if err != nil {
		t.Fatal(err)
	}
	ids, err := encodePrompt(tok, "What is the capital of France?", true)
	if err != nil {
		t.Fatal(err)
	}
	want := []int{128000, 128006, 882, 128007, 271, 3923, 374, 279, 6864, 315, 9822, 30, 128009, 128006, 78191, 128007, 271}
	if !slices.Equal(ids, want) {
		t.Errorf("chat prompt ids %v, want %v", ids, want)
	}
}
