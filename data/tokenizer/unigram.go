package tokenizer

import (
	"encoding/json"
	"fmt"
	"math"
	"strings"
	"unicode/utf8"
)

// unigram is SentencePiece's unigram language model: the segmentation with
// the highest total log-probability (Viterbi), unknown characters scored
// below every piece.
type unigram struct {
	vocabulary
	scores       []float64 // by id
	unkID        int       // -1 when there is none
	byteFallback bool
	fuseUnk      bool
	minScore     float64
	trie         byteTrie[int]
	cache        *wordCache
}

// unkPenalty is how far below the lowest piece score an unknown character
// scores (SentencePiece's kUnkPenalty).
const unkPenalty = 10.0

func parseUnigram(raw json.RawMessage, path string) (*unigram, error) {
	var c struct {
		UnkID        *int              `json:"unk_id"`
		Vocab        []json.RawMessage `json:"vocab"`
		ByteFallback bool              `json:"byte_fallback"`
	}
	if err := decodeFields(raw, &c, path); err != nil {
		return nil, err
	}
	if c.Vocab == nil {
		return nil, fmt.Errorf("%s.vocab: missing", path)
	}
	// Hugging Face always fuses runs of unknown characters: a "fuse_unk"
	// field is accepted and ignored, as there.
	m := &unigram{unkID: -1, byteFallback: c.ByteFallback, fuseUnk: true, minScore: math.Inf(1), cache: newWordCache(1 << 16)}
	ids := make(map[string]int, len(c.Vocab))
	pieces := make([]string, len(c.Vocab))
	m.scores = make([]float64, len(c.Vocab))
	m.trie = newByteTrie[int]()
	for i, rawPiece := range c.Vocab {
		var entry []json.RawMessage
		if err := json.Unmarshal(rawPiece, &entry); err != nil || len(entry) != 2 {
			return nil, fmt.Errorf("%s.vocab[%d]: want [token, score], got %s", path, i, rawPiece)
		}
		var tok string
		var score float64
		if err := json.Unmarshal(entry[0], &tok); err != nil {
			return nil, fmt.Errorf("%s.vocab[%d]: token: %w", path, i, err)
		}
		if err := json.Unmarshal(entry[1], &score); err != nil {
			return nil, fmt.Errorf("%s.vocab[%d]: score: %w", path, i, err)
		}
		// A piece listed twice takes the last id, as in Hugging Face; both
		// ids decode to it.
		ids[tok] = i
		pieces[i] = tok
		m.scores[i] = score
		m.minScore = math.Min(m.minScore, score)
	}
	for _, tok := range pieces {
		m.trie.insert(tok, ids[tok])
	}
	used := make([]bool, len(pieces))
	for i := range used {
		used[i] = true
	}
	m.vocabulary = vocabulary{ids: ids, tokens: pieces, used: used}
	if c.UnkID != nil {
		if *c.UnkID < 0 || *c.UnkID >= len(c.Vocab) {
			return nil, fmt.Errorf("%s.unk_id: %d is outside the vocabulary of %d pieces", path, *c.UnkID, len(c.Vocab))
		}
		m.unkID = *c.UnkID
	}
	return m, nil
}

func (m *unigram) vocabSize() int { return len(m.scores) }

// tokenValue spells an unknown piece as its text, as Hugging Face does.
func (m *unigram) tokenValue(word string, tk modelToken) string {
	if tk.id == m.unkID && m.unkID >= 0 {
		return word[tk.start:tk.end]
	}
	return m.vocabulary.tokenValue(word, tk)
}

// bestNode is the best segmentation of a prefix of the word.
type bestNode struct {
	id      int
	score   float64
	startAt int // -1 while unreached
}

func (m *unigram) tokenize(word string, dst []modelToken, _ *dropout) ([]modelToken, error) {
	if word == "" {
		return dst, nil
	}
	if toks, ok := m.cache.get(word); ok {
		return append(dst, toks...), nil
	}
	pieces, err := m.segment(word)
	if err != nil {
		return dst, err
	}
	start := len(dst)
	off := 0
	for _, p := range pieces {
		if id, ok := m.ids[p]; ok {
			dst = append(dst, modelToken{id, off, off + len(p)})
			off += len(p)
			continue
		}
		if m.byteFallback {
			if ids, ok := m.byteIDs(p); ok {
				// Hugging Face gives every byte token the range of the
				// whole piece.
				for _, id := range ids {
					dst = append(dst, modelToken{id, off, off + len(p)})
				}
				off += len(p)
				continue
			}
		}
		if m.unkID < 0 {
			return dst, fmt.Errorf("unigram: %q is not in the vocabulary and the model has no unk_id", p)
		}
		dst = append(dst, modelToken{m.unkID, off, off + len(p)})
		off += len(p)
	}
	m.cache.put(strings.Clone(word), append([]modelToken(nil), dst[start:]...))
	return dst, nil
}

// segment returns the best segmentation of word as strings; consecutive
// unknown characters are fused into one piece when fuseUnk is set.
func (m *unigram) segment(word string) ([]string, error) {
	n := len(word)
	best := make([]bestNode, n+1)
	for i := range best {
		best[i].startAt = -1
	}
	best[0].startAt = 0
	unkScore := m.minScore - unkPenalty
	for start := 0; start < n; {
		_, charLen := utf8.DecodeRuneInString(word[start:])
		base := best[start].score
		singleChar := false
		m.trie.prefixes(word, start, func(end, id int) {
			cand := base + m.scores[id]
			if t := &best[end]; t.startAt < 0 || cand > t.score {
				*t = bestNode{id: id, score: cand, startAt: start}
			}
			if end-start == charLen {
				singleChar = true
			}
		})
		if !singleChar {
			if m.unkID < 0 {
				return nil, fmt.Errorf("unigram: %q is not in the vocabulary and the model has no unk_id", word[start:start+charLen])
			}
			cand := base + unkScore
			if t := &best[start+charLen]; t.startAt < 0 || cand > t.score {
				*t = bestNode{id: m.unkID, score: cand, startAt: start}
			}
		}
		start += charLen
	}
	var out []string
	var unkRun []string
	for end := n; end > 0; {
		node := best[end]
		piece := word[node.startAt:end]
		if m.fuseUnk && m.unkID >= 0 && node.id == m.unkID {
			unkRun = append(unkRun, piece)
		} else {
			if len(unkRun) > 0 {
				out = append(out, joinReversed(unkRun))
				unkRun = unkRun[:0]
			}
			out = append(out, piece)
		}
		end = node.startAt
	}
	if len(unkRun) > 0 {
		out = append(out, joinReversed(unkRun))
	}
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	return out, nil
}

func joinReversed(parts []string) string {
	var sb strings.Builder
	for i := len(parts) - 1; i >= 0; i-- {
		sb.WriteString(parts[i])
	}
	return sb.String()
}
