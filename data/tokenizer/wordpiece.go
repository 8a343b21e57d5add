package tokenizer

import (
	"encoding/json"
	"fmt"
	"unicode/utf8"
)

// wordPiece is BERT's model: greedy longest-match-first, continuation pieces
// marked with a prefix ("##"), the unknown token for words it cannot cover.
type wordPiece struct {
	vocabulary
	unk          string
	unkID        int
	prefix       string
	maxInputChar int
}

func parseWordPiece(raw json.RawMessage, path string) (*wordPiece, error) {
	c := struct {
		UnkToken                string         `json:"unk_token"`
		ContinuingSubwordPrefix string         `json:"continuing_subword_prefix"`
		MaxInputCharsPerWord    int            `json:"max_input_chars_per_word"`
		Vocab                   map[string]int `json:"vocab"`
	}{UnkToken: "[UNK]", ContinuingSubwordPrefix: "##", MaxInputCharsPerWord: 100}
	if err := decodeFields(raw, &c, path); err != nil {
		return nil, err
	}
	voc, err := newVocabulary(c.Vocab, path+".vocab")
	if err != nil {
		return nil, err
	}
	// As in Hugging Face, an unknown token missing from the vocabulary is an
	// error only when a word needs it.
	unkID, ok := voc.ids[c.UnkToken]
	if !ok {
		unkID = -1
	}
	return &wordPiece{vocabulary: voc, unk: c.UnkToken, unkID: unkID, prefix: c.ContinuingSubwordPrefix, maxInputChar: c.MaxInputCharsPerWord}, nil
}

// unknown returns the token for a word the vocabulary cannot cover.
func (w *wordPiece) unknown(dst []modelToken, word string) ([]modelToken, error) {
	if w.unkID < 0 {
		return dst, fmt.Errorf("wordpiece: %q needs the unknown token %q, which is not in the vocabulary", word, w.unk)
	}
	return append(dst, modelToken{w.unkID, 0, len(word)}), nil
}

func (w *wordPiece) tokenize(word string, dst []modelToken, _ *dropout) ([]modelToken, error) {
	if word == "" {
		return dst, nil
	}
	if utf8.RuneCountInString(word) > w.maxInputChar {
		return w.unknown(dst, word)
	}
	first := len(dst)
	for start := 0; start < len(word); {
		end := len(word)
		found := false
		for start < end {
			sub := word[start:end]
			if start > 0 {
				sub = w.prefix + sub
			}
			if id, ok := w.ids[sub]; ok {
				dst = append(dst, modelToken{id, start, end})
				found = true
				break
			}
			_, size := utf8.DecodeLastRuneInString(word[start:end])
			end -= size
		}
		if !found {
			return w.unknown(dst[:first], word)
		}
		start = end
	}
	return dst, nil
}
