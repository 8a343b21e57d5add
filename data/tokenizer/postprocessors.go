package tokenizer

import (
	"encoding/json"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// postProcessor adds special tokens around the encoded sequences (one, or
// two for a pair) and may adjust offsets.
type postProcessor interface {
	process(encs []*Encoding, addSpecialTokens bool) []*Encoding
	// addedTokens is the number of tokens process adds.
	addedTokens(pair bool) int
}

func parsePostProcessor(raw json.RawMessage, path string, vocabID func(string) (int, bool)) (postProcessor, error) {
	typ, err := componentType(raw, path)
	if err != nil || typ == "" {
		return nil, err
	}
	switch typ {
	case "Sequence":
		list, err := parseSequence(raw, path, "processors", func(r json.RawMessage, p string) (postProcessor, error) {
			return parsePostProcessor(r, p, vocabID)
		})
		return sequenceProcessor(list), err
	case "ByteLevel":
		c := struct {
			AddPrefixSpace bool `json:"add_prefix_space"`
			TrimOffsets    bool `json:"trim_offsets"`
		}{AddPrefixSpace: true, TrimOffsets: true}
		if err := decodeFields(raw, &c, path); err != nil {
			return nil, err
		}
		return byteLevelProcessor{addPrefixSpace: c.AddPrefixSpace, trimOffsets: c.TrimOffsets}, nil
	case "TemplateProcessing":
		return parseTemplate(raw, path)
	case "BertProcessing", "RobertaProcessing":
		c := struct {
			Sep            [2]json.RawMessage `json:"sep"`
			Cls            [2]json.RawMessage `json:"cls"`
			TrimOffsets    bool               `json:"trim_offsets"`
			AddPrefixSpace bool               `json:"add_prefix_space"`
		}{TrimOffsets: true, AddPrefixSpace: true}
		if err := decodeFields(raw, &c, path); err != nil {
			return nil, err
		}
		sep, err := parseTokenPair(c.Sep, path+".sep")
		if err != nil {
			return nil, err
		}
		cls, err := parseTokenPair(c.Cls, path+".cls")
		if err != nil {
			return nil, err
		}
		return bertProcessor{sep: sep, cls: cls, roberta: typ == "RobertaProcessing", trimOffsets: c.TrimOffsets, addPrefixSpace: c.AddPrefixSpace}, nil
	}
	return nil, unsupported(path, typ, "BertProcessing, ByteLevel, RobertaProcessing, Sequence, TemplateProcessing")
}

// specialPiece is one special token a post-processor inserts.
type specialPiece struct {
	token string
	id    int
}

func parseTokenPair(raw [2]json.RawMessage, path string) (specialPiece, error) {
	var p specialPiece
	if err := json.Unmarshal(raw[0], &p.token); err != nil {
		return p, fmt.Errorf("%s: want [token, id]: %w", path, err)
	}
	if err := json.Unmarshal(raw[1], &p.id); err != nil {
		return p, fmt.Errorf("%s: want [token, id]: %w", path, err)
	}
	return p, nil
}

type sequenceProcessor []postProcessor

func (s sequenceProcessor) process(encs []*Encoding, add bool) []*Encoding {
	for _, p := range s {
		encs = p.process(encs, add)
	}
	return encs
}

func (s sequenceProcessor) addedTokens(pair bool) int {
	n := 0
	for _, p := range s {
		n += p.addedTokens(pair)
	}
	return n
}

// byteLevelProcessor only trims the offsets of byte-level tokens so that
// they do not cover leading and trailing spaces.
type byteLevelProcessor struct{ addPrefixSpace, trimOffsets bool }

func (b byteLevelProcessor) process(encs []*Encoding, _ bool) []*Encoding {
	if b.trimOffsets {
		for _, e := range encs {
			trimByteLevelOffsets(e, b.addPrefixSpace)
		}
	}
	return encs
}

func (byteLevelProcessor) addedTokens(bool) int { return 0 }

// trimByteLevelOffsets removes leading and trailing spaces ("Ġ" or
// whitespace) of each token from its offsets; a single leading space of the
// first token is kept when the pre-tokenizer added it.
//
// Hugging Face moves the offsets by a number of characters; lethe's offsets
// are bytes, so a "Ġ" counts one byte (the space it stands for) and a
// whitespace character of an added token its UTF-8 length. A token made only
// of spaces ends up empty, at its end. (One case can still differ: a "Ġ"
// that the pre-tokenizer prepended to a piece starting with a multi-byte
// character, merged by the model with that character's first bytes, after
// an added token: Hugging Face then moves past the whole character, which
// byte offsets cannot tell without the text.)
func trimByteLevelOffsets(e *Encoding, addPrefixSpace bool) {
	g := byteToRune[' ']
	isSp := func(r rune) bool { return r == g || unicode.IsSpace(r) }
	width := func(s string) int {
		n := 0
		for _, r := range s {
			if r == g {
				n++
			} else {
				n += utf8.RuneLen(r)
			}
		}
		return n
	}
	for i, tok := range e.Tokens {
		o := &e.Offsets[i]
		rest := strings.TrimLeftFunc(tok, isSp)
		leadChars := utf8.RuneCountInString(tok) - utf8.RuneCountInString(rest)
		lead := width(tok[:len(tok)-len(rest)])
		trimmed := strings.TrimRightFunc(tok, isSp)
		trailChars := utf8.RuneCountInString(tok) - utf8.RuneCountInString(trimmed)
		trail := width(tok[len(trimmed):])
		if leadChars > 0 {
			if (i == 0 || o.Start == 0) && addPrefixSpace && leadChars == 1 {
				lead = 0
			}
			if rest == "" && lead > 0 {
				o.Start = o.End
			} else {
				o.Start = min(o.Start+lead, o.End)
			}
		}
		if trailChars > 0 && o.End >= trailChars {
			o.End = max(o.End-trail, o.Start)
		}
	}
}

// bertProcessor is BERT's [CLS] A [SEP] (B [SEP]) and RoBERTa's
// <s> A </s> (</s> B </s>).
type bertProcessor struct {
	sep, cls                    specialPiece
	roberta                     bool
	trimOffsets, addPrefixSpace bool
}

func (b bertProcessor) addedTokens(pair bool) int {
	switch {
	case !pair:
		return 2
	case b.roberta:
		return 4
	}
	return 3
}

func (b bertProcessor) process(encs []*Encoding, add bool) []*Encoding {
	if b.roberta {
		for _, e := range encs {
			if b.trimOffsets {
				trimByteLevelOffsets(e, b.addPrefixSpace)
			}
			// RoBERTa gives every token type id 0, special tokens added or
			// not.
			setTypeIDs(e, 0)
		}
	}
	if !add {
		return encs
	}
	out := []*Encoding{specialEncoding(b.cls, 0), encs[0], specialEncoding(b.sep, 0)}
	if len(encs) == 2 {
		typ := 1
		if b.roberta {
			typ = 0
			out = append(out, specialEncoding(b.sep, 0))
		}
		setTypeIDs(encs[1], typ)
		out = append(out, encs[1], specialEncoding(b.sep, typ))
	}
	return out
}

// specialEncoding is one post-processor token.
func specialEncoding(p specialPiece, typeID int) *Encoding {
	return &Encoding{
		IDs:               []int{p.id},
		Tokens:            []string{p.token},
		Offsets:           []Offset{{}},
		TypeIDs:           []int{typeID},
		SpecialTokensMask: []int{1},
		AttentionMask:     []int{1},
		SequenceIDs:       []int{-1},
	}
}

func setTypeIDs(e *Encoding, typ int) {
	for i := range e.TypeIDs {
		e.TypeIDs[i] = typ
	}
}

// templateProcessor is TemplateProcessing: a list of pieces, each a
// special token or one of the sequences, with the type id to give it.
type templateProcessor struct {
	single, pair []templatePiece
	specials     map[string]templateSpecial
}

type templatePiece struct {
	special string // special token name, or "" for a sequence
	seq     int    // 0 for A, 1 for B
	typeID  int
}

type templateSpecial struct {
	ids    []int
	tokens []string
}

func parseTemplate(raw json.RawMessage, path string) (*templateProcessor, error) {
	var c struct {
		Single        []json.RawMessage `json:"single"`
		Pair          []json.RawMessage `json:"pair"`
		SpecialTokens map[string]struct {
			ID     string   `json:"id"`
			IDs    []int    `json:"ids"`
			Tokens []string `json:"tokens"`
		} `json:"special_tokens"`
	}
	if err := decodeFields(raw, &c, path); err != nil {
		return nil, err
	}
	t := &templateProcessor{specials: map[string]templateSpecial{}}
	for name, s := range c.SpecialTokens {
		if len(s.IDs) != len(s.Tokens) {
			return nil, fmt.Errorf("%s.special_tokens[%q]: %d ids but %d tokens", path, name, len(s.IDs), len(s.Tokens))
		}
		t.specials[name] = templateSpecial{ids: s.IDs, tokens: s.Tokens}
	}
	parse := func(list []json.RawMessage, field string) ([]templatePiece, error) {
		var out []templatePiece
		for i, r := range list {
			var p struct {
				SpecialToken *struct {
					ID     string `json:"id"`
					TypeID int    `json:"type_id"`
				} `json:"SpecialToken"`
				Sequence *struct {
					ID     string `json:"id"`
					TypeID int    `json:"type_id"`
				} `json:"Sequence"`
			}
			where := fmt.Sprintf("%s.%s[%d]", path, field, i)
			if err := json.Unmarshal(r, &p); err != nil {
				return nil, fmt.Errorf("%s: %w", where, err)
			}
			switch {
			case p.SpecialToken != nil:
				if _, ok := t.specials[p.SpecialToken.ID]; !ok {
					return nil, fmt.Errorf("%s: special token %q is not in special_tokens", where, p.SpecialToken.ID)
				}
				out = append(out, templatePiece{special: p.SpecialToken.ID, typeID: p.SpecialToken.TypeID})
			case p.Sequence != nil:
				seq := 0
				switch p.Sequence.ID {
				case "A":
				case "B":
					seq = 1
				default:
					return nil, fmt.Errorf("%s: sequence id must be A or B, got %q", where, p.Sequence.ID)
				}
				out = append(out, templatePiece{seq: seq, typeID: p.Sequence.TypeID})
			default:
				return nil, fmt.Errorf("%s: want SpecialToken or Sequence, got %s", where, r)
			}
		}
		return out, nil
	}
	var err error
	if t.single, err = parse(c.Single, "single"); err != nil {
		return nil, err
	}
	if t.pair, err = parse(c.Pair, "pair"); err != nil {
		return nil, err
	}
	return t, nil
}

func (t *templateProcessor) addedTokens(pair bool) int {
	pieces := t.single
	if pair {
		pieces = t.pair
	}
	n := 0
	for _, p := range pieces {
		if p.special != "" {
			n += len(t.specials[p.special].ids)
		}
	}
	return n
}

func (t *templateProcessor) process(encs []*Encoding, add bool) []*Encoding {
	pieces := t.single
	if len(encs) == 2 {
		pieces = t.pair
	}
	var out []*Encoding
	for _, p := range pieces {
		if p.special == "" {
			if p.seq < len(encs) {
				setTypeIDs(encs[p.seq], p.typeID)
				out = append(out, encs[p.seq])
			}
			continue
		}
		if !add {
			continue
		}
		s := t.specials[p.special]
		for k, id := range s.ids {
			out = append(out, specialEncoding(specialPiece{token: s.tokens[k], id: id}, p.typeID))
		}
	}
	return out
}

// mergeEncodings concatenates encodings.
func mergeEncodings(encs []*Encoding) *Encoding {
	if len(encs) == 1 {
		return encs[0]
	}
	out := &Encoding{}
	for _, e := range encs {
		out.IDs = append(out.IDs, e.IDs...)
		out.Tokens = append(out.Tokens, e.Tokens...)
		out.Offsets = append(out.Offsets, e.Offsets...)
		out.TypeIDs = append(out.TypeIDs, e.TypeIDs...)
		out.SpecialTokensMask = append(out.SpecialTokensMask, e.SpecialTokensMask...)
		out.AttentionMask = append(out.AttentionMask, e.AttentionMask...)
		out.SequenceIDs = append(out.SequenceIDs, e.SequenceIDs...)
	}
	if out.IDs == nil {
		*out = Encoding{IDs: []int{}, Tokens: []string{}, Offsets: []Offset{}, TypeIDs: []int{}, SpecialTokensMask: []int{}, AttentionMask: []int{}, SequenceIDs: []int{}}
	}
	return out
}
