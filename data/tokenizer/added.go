package tokenizer

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// AddedToken is a token matched in the text before the model runs: special
// tokens such as "<|begin_of_text|>" and tokens added on top of a trained
// vocabulary. Its fields are those of tokenizer.json's "added_tokens".
type AddedToken struct {
	ID      int    `json:"id"`
	Content string `json:"content"`
	// SingleWord: match only when not inside a word.
	SingleWord bool `json:"single_word"`
	// LStrip and RStrip: the match swallows the whitespace on its left or
	// right.
	LStrip bool `json:"lstrip"`
	RStrip bool `json:"rstrip"`
	// Normalized: match against the normalized text instead of the input.
	Normalized bool `json:"normalized"`
	// Special tokens are skipped by Decode(ids, true).
	Special bool `json:"special"`
}

// addedVocab finds added tokens in text, leftmost-longest, as Hugging Face's
// AddedVocabulary does with two Aho-Corasick automata: one for the tokens
// matched on the raw input, one for those matched on normalized text.
type addedVocab struct {
	tokens []AddedToken // in file order
	// byID gives the token of an id as decoding sees it: for a normalized
	// token whose content the normalizer changes, Hugging Face decodes the
	// normalized form, so byID holds a copy with that content.
	byID    map[int]*AddedToken
	byText  map[string]int
	special map[int]bool
	// specialContent holds the contents of the special tokens. Hugging
	// Face's decode skips a token when its string is one of them.
	specialContent map[string]bool
	raw            tokenTrie // tokens with Normalized == false
	norm           tokenTrie // tokens with Normalized == true, normalized
}

func newAddedVocab(tokens []AddedToken, normalize func(string) (string, error)) (*addedVocab, error) {
	a := &addedVocab{
		tokens:         tokens,
		byID:           make(map[int]*AddedToken, len(tokens)),
		byText:         make(map[string]int, len(tokens)),
		special:        make(map[int]bool),
		specialContent: make(map[string]bool),
		raw:            newTokenTrie(),
		norm:           newTokenTrie(),
	}
	// Special tokens take part in matching first, then the others, each in
	// file order; for equal content the first one wins.
	order := make([]*AddedToken, 0, len(tokens))
	for i := range tokens {
		if tokens[i].Special {
			order = append(order, &tokens[i])
		}
	}
	for i := range tokens {
		if !tokens[i].Special {
			order = append(order, &tokens[i])
		}
	}
	for _, t := range order {
		a.byID[t.ID] = t
		a.byText[t.Content] = t.ID
		if t.Special {
			a.special[t.ID] = true
			a.specialContent[t.Content] = true
		}
		if t.Content == "" {
			continue
		}
		if t.Normalized {
			content := t.Content
			if normalize != nil {
				var err error
				if content, err = normalize(content); err != nil {
					return nil, err
				}
			}
			if content != "" {
				a.norm.insert(content, t)
			}
			if content != t.Content {
				dec := *t
				dec.Content = content
				a.byID[t.ID] = &dec
			}
		} else {
			a.raw.insert(t.Content, t)
		}
	}
	return a, nil
}

// skipOnDecode reports whether Decode with skipSpecialTokens leaves out a
// token spelled tok: in Hugging Face tokenizers, when tok is the content
// of a special token (so a normalized special token whose normalized form
// differs is kept).
func (a *addedVocab) skipOnDecode(tok string) bool { return a.specialContent[tok] }

// addedMatch is one added token found in a string.
type addedMatch struct {
	span
	token *AddedToken
}

// findMatches returns the added tokens of trie found in s, with the
// single_word, lstrip and rstrip rules applied.
func findMatches(s string, trie *tokenTrie) []addedMatch {
	if trie.empty() || s == "" {
		return nil
	}
	var out []addedMatch
	prevEnd := 0
	for i := 0; i < len(s); {
		end, tok := trie.longest(s, i)
		if tok == nil {
			i++
			continue
		}
		start, stop := i, end
		if tok.SingleWord {
			if (start > 0 && endsWithWord(s[:start])) || (stop < len(s) && startsWithWord(s[stop:])) {
				// Not a whole word: skip it; as with a non-overlapping
				// automaton, the search resumes after it.
				i = end
				continue
			}
		}
		if tok.LStrip {
			start = max(len(strings.TrimRightFunc(s[:start], unicode.IsSpace)), prevEnd)
		}
		if tok.RStrip {
			stop = len(s) - len(strings.TrimLeftFunc(s[stop:], unicode.IsSpace))
		}
		out = append(out, addedMatch{span{start, stop}, tok})
		prevEnd = stop
		i = end
		if stop > i {
			i = stop
		}
	}
	return out
}

func endsWithWord(s string) bool {
	r, _ := utf8.DecodeLastRuneInString(s)
	return isWordChar(r)
}

func startsWithWord(s string) bool {
	r, _ := utf8.DecodeRuneInString(s)
	return isWordChar(r)
}

// tokenTrie finds added tokens by their contents.
type tokenTrie struct {
	trie  byteTrie[*AddedToken]
	first [256]bool // bytes that start some token
}

func newTokenTrie() tokenTrie { return tokenTrie{trie: newByteTrie[*AddedToken]()} }

func (t *tokenTrie) empty() bool { return t.trie.empty() }

// insert adds a token under s; the first token inserted under s stays.
func (t *tokenTrie) insert(s string, tok *AddedToken) {
	t.first[s[0]] = true
	t.trie.insert(s, tok)
}

// longest returns the end and the token of the longest token starting at
// s[i], or nil.
func (t *tokenTrie) longest(s string, i int) (end int, tok *AddedToken) {
	if !t.first[s[i]] {
		return 0, nil
	}
	t.trie.prefixes(s, i, func(e int, v *AddedToken) { end, tok = e, v })
	return end, tok
}
