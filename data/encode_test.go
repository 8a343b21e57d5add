package data

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/lethe-ml/lethe/data/chat"
	"github.com/lethe-ml/lethe/data/tokenizer"
)

// byteEncoder is a fake tokenizer: one token per byte, id = byte + 10, with
// BOS id 1 (offsets {0,0}, a special token) when special tokens are asked for.
type byteEncoder struct{}

const (
	fakeBOS = 1
	fakeEOS = 2
	fakePad = 0
)

func (byteEncoder) Encode(text string, addSpecial bool) (*tokenizer.Encoding, error) {
	enc := &tokenizer.Encoding{}
	if addSpecial {
		enc.IDs = append(enc.IDs, fakeBOS)
		enc.Offsets = append(enc.Offsets, tokenizer.Offset{})
		enc.SpecialTokensMask = append(enc.SpecialTokensMask, 1)
	}
	for i := range len(text) {
		enc.IDs = append(enc.IDs, int(text[i])+10)
		enc.Offsets = append(enc.Offsets, tokenizer.Offset{Start: i, End: i + 1})
		enc.SpecialTokensMask = append(enc.SpecialTokensMask, 0)
	}
	return enc, nil
}

// ids returns the byteEncoder ids of s.
func ids(s string) []int32 {
	out := make([]int32, len(s))
	for i := range len(s) {
		out[i] = int32(s[i]) + 10
	}
	return out
}

// masked returns n IgnoreIndex labels.
func masked(n int) []int32 {
	out := make([]int32, n)
	for i := range out {
		out[i] = IgnoreIndex
	}
	return out
}

func cat(parts ...[]int32) []int32 {
	var out []int32
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

// fakeChat renders "<role>content</>" per message, and "<assistant>" as the
// generation prompt: a prefix-consistent template.
func fakeChat(msgs []chat.Message, gen bool) (string, error) {
	var b strings.Builder
	for _, m := range msgs {
		b.WriteString("<" + m.Role + ">" + m.Content + "</>")
	}
	if gen {
		b.WriteString("<assistant>")
	}
	return b.String(), nil
}

// dropOldReplies renders earlier assistant turns without their content, as
// templates that strip past reasoning do: not prefix-consistent.
func dropOldReplies(msgs []chat.Message, gen bool) (string, error) {
	var b strings.Builder
	for i, m := range msgs {
		c := m.Content
		if m.Role == "assistant" && i < len(msgs)-1 {
			c = ""
		}
		b.WriteString("<" + m.Role + ">" + c + "</>")
	}
	if gen {
		b.WriteString("<assistant>")
	}
	return b.String(), nil
}

func TestEncode(t *testing.T) {
	conv := []chat.Message{{Role: "system", Content: "S"}, {Role: "user", Content: "U"}, {Role: "assistant", Content: "A1"}, {Role: "user", Content: "V"}, {Role: "assistant", Content: "B2"}}
	tests := []struct {
		name       string
		cfg        TokenizeConfig
		ex         Example
		wantIDs    []int32
		wantLabels []int32
	}{
		{
			name:       "text: every token but the first",
			ex:         Example{Shape: ShapeText, Text: "hello"},
			wantIDs:    ids("hello"),
			wantLabels: cat(masked(1), ids("ello")),
		},
		{
			name:       "text with BOS and EOS",
			cfg:        TokenizeConfig{AddSpecialTokens: true, AppendEOS: true, EOSID: fakeEOS},
			ex:         Example{Shape: ShapeText, Text: "hi"},
			wantIDs:    cat([]int32{fakeBOS}, ids("hi"), []int32{fakeEOS}),
			wantLabels: cat(masked(1), ids("hi"), []int32{fakeEOS}),
		},
		{
			name:       "prompt completion: loss on the completion",
			ex:         Example{Shape: ShapePromptCompletion, Prompt: "Q: x?", Completion: " A"},
			wantIDs:    ids("Q: x? A"),
			wantLabels: cat(masked(5), ids(" A")),
		},
		{
			name:       "prompt completion with BOS and EOS",
			cfg:        TokenizeConfig{AddSpecialTokens: true, AppendEOS: true, EOSID: fakeEOS},
			ex:         Example{Shape: ShapePromptCompletion, Prompt: "Q", Completion: "A"},
			wantIDs:    cat([]int32{fakeBOS}, ids("QA"), []int32{fakeEOS}),
			wantLabels: cat(masked(2), ids("A"), []int32{fakeEOS}),
		},
		{
			name:       "prompt completion, loss on all",
			cfg:        TokenizeConfig{LossOn: LossOnAll},
			ex:         Example{Shape: ShapePromptCompletion, Prompt: "Q", Completion: "AB"},
			wantIDs:    ids("QAB"),
			wantLabels: cat(masked(1), ids("AB")),
		},
		{
			name:    "messages: assistant turns and their end-of-turn text",
			cfg:     TokenizeConfig{AddSpecialTokens: true, AppendEOS: true, EOSID: fakeEOS}, // ignored for messages
			ex:      Example{Shape: ShapeMessages, Messages: conv},
			wantIDs: ids("<system>S</><user>U</><assistant>A1</><user>V</><assistant>B2</>"),
			wantLabels: cat(masked(len("<system>S</><user>U</><assistant>")), ids("A1</>"),
				masked(len("<user>V</><assistant>")), ids("B2</>")),
		},
		{
			name:       "messages, loss on all",
			cfg:        TokenizeConfig{LossOn: LossOnAll},
			ex:         Example{Shape: ShapeMessages, Messages: conv[1:3]},
			wantIDs:    ids("<user>U</><assistant>A1</>"),
			wantLabels: cat(masked(1), ids("user>U</><assistant>A1</>")),
		},
		{
			name:       "messages without an assistant turn carry no loss",
			ex:         Example{Shape: ShapeMessages, Messages: conv[:2]},
			wantIDs:    ids("<system>S</><user>U</>"),
			wantLabels: masked(len("<system>S</><user>U</>")),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := NewPreprocessor(byteEncoder{}, RenderFunc(fakeChat), tt.cfg)
			if err != nil {
				t.Fatal(err)
			}
			s, err := p.Encode(tt.ex)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(s.IDs, tt.wantIDs) {
				t.Errorf("IDs = %v\nwant %v", s.IDs, tt.wantIDs)
			}
			if !reflect.DeepEqual(s.Labels, tt.wantLabels) {
				t.Errorf("Labels = %v\nwant   %v", s.Labels, tt.wantLabels)
			}
		})
	}
}

func TestEncodeErrors(t *testing.T) {
	conv := []chat.Message{{Role: "user", Content: "U"}, {Role: "assistant", Content: "A"}, {Role: "user", Content: "V"}, {Role: "assistant", Content: "B"}}
	tests := []struct {
		name string
		chat ChatRenderer
		ex   Example
		want string
	}{
		{"not prefix-consistent", RenderFunc(dropOldReplies), Example{Shape: ShapeMessages, Messages: conv},
			"chat template is not prefix-consistent at message 1 (assistant): the rendering of messages[:2] does not start the rendering of the whole conversation"},
		{"generation prompt not a prefix", RenderFunc(func(m []chat.Message, gen bool) (string, error) {
			s, _ := fakeChat(m, false)
			if gen {
				s += "<bot>"
			}
			return s, nil
		}), Example{Shape: ShapeMessages, Messages: conv[:2]},
			"the rendering of messages[:1] with the generation prompt does not start the rendering of messages[:2]"},
		{"template error", RenderFunc(func([]chat.Message, bool) (string, error) { return "", errors.New("roles must alternate") }),
			Example{Shape: ShapeMessages, Messages: conv}, "render chat template: roles must alternate"},
		{"no template", nil, Example{Shape: ShapeMessages, Messages: conv}, "no chat template"},
		{"unknown shape", nil, Example{Shape: "table"}, `unknown shape "table"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := NewPreprocessor(byteEncoder{}, tt.chat, TokenizeConfig{})
			if err != nil {
				t.Fatal(err)
			}
			_, err = p.Encode(tt.ex)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error = %v, want it to contain %q", err, tt.want)
			}
		})
	}
	if _, err := NewPreprocessor(byteEncoder{}, nil, TokenizeConfig{LossOn: "prompt"}); err == nil || !strings.Contains(err.Error(), `tokenize.loss_on: unknown value "prompt"`) {
		t.Errorf("bad loss_on: error = %v", err)
	}
}

func TestInSpans(t *testing.T) {
	spans := []span{{5, 8}}
	tests := []struct {
		o    tokenizer.Offset
		want bool
	}{
		{tokenizer.Offset{Start: 0, End: 5}, false}, // ends where the span starts
		{tokenizer.Offset{Start: 3, End: 6}, true},  // straddles the start: trained on
		{tokenizer.Offset{Start: 5, End: 8}, true},
		{tokenizer.Offset{Start: 7, End: 9}, true},
		{tokenizer.Offset{Start: 8, End: 9}, false},
		{tokenizer.Offset{Start: 5, End: 5}, true}, // empty range inside
		{tokenizer.Offset{Start: 8, End: 8}, false},
	}
	for _, tt := range tests {
		if got := inSpans(tt.o, spans); got != tt.want {
			t.Errorf("inSpans(%v) = %v, want %v", tt.o, got, tt.want)
		}
	}
}
