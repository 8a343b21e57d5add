package tokenizer

import (
	"reflect"
	"strings"
	"testing"
)

// TestAssignAddedIDs checks Hugging Face's rule for the ids of added tokens
// (the file's "id" is not used): vocabulary tokens keep their id, new ones
// count up from the vocabulary size, empty ones are dropped, and a written
// id that disagrees gives a warning.
func TestAssignAddedIDs(t *testing.T) {
	tok, err := FromJSON([]byte(`{
		"added_tokens": [
			{"id": 0, "content": "<unk>", "special": true},
			{"id": 7, "content": "<new>", "special": true},
			{"id": 9, "content": "", "special": true},
			{"id": 5, "content": "<also>", "special": false},
			{"id": 4, "content": "<new>", "special": true}
		],
		"model": {"type": "WordPiece", "unk_token": "<unk>", "vocab": {"<unk>": 0, "a": 1, "b": 2}}
	}`), "t.json")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, a := range tok.AddedTokens() {
		got = append(got, a.Content)
	}
	if want := []string{"<unk>", "<new>", "<also>"}; !reflect.DeepEqual(got, want) {
		t.Errorf("added tokens by id: %q, want %q", got, want)
	}
	for tokStr, want := range map[string]int{"<unk>": 0, "<new>": 3, "<also>": 4} {
		if id, ok := tok.TokenToID(tokStr); !ok || id != want {
			t.Errorf("%s: id %d, want %d", tokStr, id, want)
		}
	}
	if tok.VocabSize() != 5 {
		t.Errorf("vocab size %d, want 5", tok.VocabSize())
	}
	w := strings.Join(tok.Warnings(), "\n")
	for _, want := range []string{`"<new>" was expected to have id 7 but was given id 3`, `"<also>" was expected to have id 5 but was given id 4`} {
		if !strings.Contains(w, want) {
			t.Errorf("warnings %q lack %q", w, want)
		}
	}
	// Real checkpoints write the ids they get: no warnings.
	for _, name := range goldenTokenizers {
		if w := testTokenizer(t, name).Warnings(); len(w) != 0 {
			t.Errorf("%s: warnings %q", name, w)
		}
	}
}
