package data

import (
	"errors"
	"fmt"
	"strings"

	"github.com/lethe-ml/lethe/data/chat"
	"github.com/lethe-ml/lethe/data/tokenizer"
)

// IgnoreIndex is the label of tokens that carry no loss (the convention of
// PyTorch's cross-entropy and Hugging Face models).
const IgnoreIndex = -100

// Encoder is what collation needs from a tokenizer; *tokenizer.Tokenizer
// implements it. Offsets must be byte offsets into text.
type Encoder interface {
	Encode(text string, addSpecialTokens bool) (*tokenizer.Encoding, error)
}

// ChatRenderer renders a conversation with a chat template, optionally
// ending with the prompt that opens an assistant turn.
type ChatRenderer interface {
	Render(messages []chat.Message, addGenerationPrompt bool) (string, error)
}

// RenderFunc adapts a function to ChatRenderer, e.g.
//
//	data.RenderFunc(func(m []chat.Message, gen bool) (string, error) {
//		return tmpl.Render(m, chat.Options{AddGenerationPrompt: gen})
//	})
type RenderFunc func(messages []chat.Message, addGenerationPrompt bool) (string, error)

// Render calls f.
func (f RenderFunc) Render(messages []chat.Message, addGenerationPrompt bool) (string, error) {
	return f(messages, addGenerationPrompt)
}

// LossOn says which tokens of an example are trained on.
type LossOn string

const (
	// LossOnCompletion trains on the completion of prompt_completion examples
	// and the assistant turns of messages (the default). Text examples are
	// trained on in full.
	LossOnCompletion LossOn = "completion"
	// LossOnAll trains on every token.
	LossOnAll LossOn = "all"
)

// TokenizeConfig says how examples become token ids and labels.
type TokenizeConfig struct {
	// AddSpecialTokens lets the tokenizer add its special tokens (BOS, ...)
	// to text and prompt_completion examples. Messages are rendered by the
	// chat template, which writes its own, and are encoded without.
	AddSpecialTokens bool `yaml:"add_special_tokens,omitempty" json:"add_special_tokens,omitempty"`
	// AppendEOS appends EOSID (trained on) to text and prompt_completion
	// examples. Chat templates end assistant turns themselves.
	AppendEOS bool `yaml:"append_eos,omitempty" json:"append_eos,omitempty"`
	// EOSID is the end-of-sequence token id.
	EOSID int `yaml:"eos_id,omitempty" json:"eos_id,omitempty"`
	// LossOn picks the tokens that carry a label [completion].
	LossOn LossOn `yaml:"loss_on,omitempty" json:"loss_on,omitempty"`
}

// Validate checks c.
func (c TokenizeConfig) Validate() error {
	switch c.LossOn {
	case "", LossOnCompletion, LossOnAll:
	default:
		return fmt.Errorf("tokenize.loss_on: unknown value %q (want %q or %q)", c.LossOn, LossOnCompletion, LossOnAll)
	}
	if c.AppendEOS && c.EOSID < 0 {
		return fmt.Errorf("tokenize.eos_id: append_eos needs a token id >= 0, got %d", c.EOSID)
	}
	return nil
}

// Sample is a tokenized example.
type Sample struct {
	// IDs are the token ids.
	IDs []int32
	// Labels are the ids to predict at each position (IDs shifted inside the
	// loss, as Hugging Face models do), IgnoreIndex where there is no loss.
	// The first label is always IgnoreIndex: nothing precedes the first
	// token, and in a packed row the previous token belongs to another
	// example.
	Labels []int32
}

// Len returns the number of tokens.
func (s Sample) Len() int { return len(s.IDs) }

// LossTokens returns how many labels are not IgnoreIndex.
func (s Sample) LossTokens() int {
	n := 0
	for _, l := range s.Labels {
		if l != IgnoreIndex {
			n++
		}
	}
	return n
}

// truncate keeps the first n tokens.
func (s Sample) truncate(n int) Sample {
	if n > 0 && len(s.IDs) > n {
		s.IDs, s.Labels = s.IDs[:n], s.Labels[:n]
	}
	return s
}

// Preprocessor tokenizes examples and labels the tokens that carry loss.
type Preprocessor struct {
	enc  Encoder
	chat ChatRenderer
	cfg  TokenizeConfig
}

// NewPreprocessor returns a Preprocessor. chat may be nil when no messages
// examples will be encoded.
func NewPreprocessor(enc Encoder, chat ChatRenderer, cfg TokenizeConfig) (*Preprocessor, error) {
	if enc == nil {
		return nil, errors.New("data: NewPreprocessor needs an Encoder")
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.LossOn == "" {
		cfg.LossOn = LossOnCompletion
	}
	return &Preprocessor{enc: enc, chat: chat, cfg: cfg}, nil
}

// span is a half-open byte range of the encoded text.
type span struct{ start, end int }

// Encode tokenizes ex. Labels are the token ids inside the trained-on spans
// of the text (see LossOn); a token is inside a span when its byte range
// overlaps it, so a token straddling the prompt/completion boundary is
// trained on. Tokens added by the tokenizer's post-processor (BOS) carry no
// label.
func (p *Preprocessor) Encode(ex Example) (Sample, error) {
	var text string
	var spans []span
	addSpecial := p.cfg.AddSpecialTokens
	appendEOS := p.cfg.AppendEOS
	switch ex.Shape {
	case ShapeText:
		text = ex.Text
		spans = []span{{0, len(text)}}
	case ShapePromptCompletion:
		text = ex.Prompt + ex.Completion
		spans = []span{{len(ex.Prompt), len(text)}}
		if p.cfg.LossOn == LossOnAll {
			spans[0].start = 0
		}
	case ShapeMessages:
		var err error
		if text, spans, err = p.renderMessages(ex.Messages); err != nil {
			return Sample{}, err
		}
		addSpecial, appendEOS = false, false
	default:
		return Sample{}, fmt.Errorf("encode example: unknown shape %q", ex.Shape)
	}
	enc, err := p.enc.Encode(text, addSpecial)
	if err != nil {
		return Sample{}, fmt.Errorf("encode: %w", err)
	}
	if len(enc.Offsets) != len(enc.IDs) {
		return Sample{}, fmt.Errorf("encode: the tokenizer returned %d ids but %d offsets", len(enc.IDs), len(enc.Offsets))
	}
	n := len(enc.IDs)
	if appendEOS {
		n++
	}
	s := Sample{IDs: make([]int32, 0, n), Labels: make([]int32, 0, n)}
	for i, id := range enc.IDs {
		label := int32(IgnoreIndex)
		special := i < len(enc.SpecialTokensMask) && enc.SpecialTokensMask[i] == 1
		if !special && inSpans(enc.Offsets[i], spans) {
			label = int32(id)
		}
		s.IDs = append(s.IDs, int32(id))
		s.Labels = append(s.Labels, label)
	}
	if appendEOS {
		s.IDs = append(s.IDs, int32(p.cfg.EOSID))
		s.Labels = append(s.Labels, int32(p.cfg.EOSID))
	}
	if len(s.Labels) > 0 {
		s.Labels[0] = IgnoreIndex
	}
	return s, nil
}

// inSpans reports whether a token's byte range overlaps one of spans. An
// empty range counts when its position is inside a span.
func inSpans(o tokenizer.Offset, spans []span) bool {
	for _, s := range spans {
		if o.End > o.Start && o.Start < s.end && o.End > s.start {
			return true
		}
		if o.End == o.Start && o.Start >= s.start && o.Start < s.end {
			return true
		}
	}
	return false
}

// renderMessages renders a conversation and finds the byte spans that carry
// loss. For assistant message i, P is the rendering of messages[:i] with the
// generation prompt and F that of messages[:i+1] without; the span is F
// minus its prefix P, which holds the reply and the end-of-turn text the
// template writes after it. This needs a prefix-consistent template: P must
// start F and F must start the full rendering.
func (p *Preprocessor) renderMessages(msgs []chat.Message) (string, []span, error) {
	if p.chat == nil {
		return "", nil, errors.New("encode messages: no chat template (ChatRenderer) was given")
	}
	full, err := p.chat.Render(msgs, false)
	if err != nil {
		return "", nil, fmt.Errorf("render chat template: %w", err)
	}
	if p.cfg.LossOn == LossOnAll {
		return full, []span{{0, len(full)}}, nil
	}
	var spans []span
	for i, m := range msgs {
		if m.Role != "assistant" {
			continue
		}
		prompt, err := p.chat.Render(msgs[:i], true)
		if err != nil {
			return "", nil, fmt.Errorf("render chat template (messages[:%d] with generation prompt): %w", i, err)
		}
		upto, err := p.chat.Render(msgs[:i+1], false)
		if err != nil {
			return "", nil, fmt.Errorf("render chat template (messages[:%d]): %w", i+1, err)
		}
		if !strings.HasPrefix(upto, prompt) {
			return "", nil, fmt.Errorf("chat template is not prefix-consistent at message %d (assistant): the rendering of messages[:%d] with the generation prompt does not start the rendering of messages[:%d]; assistant-only loss needs a template whose renderings extend each other (or set loss_on: all)", i, i, i+1)
		}
		if !strings.HasPrefix(full, upto) {
			return "", nil, fmt.Errorf("chat template is not prefix-consistent at message %d (assistant): the rendering of messages[:%d] does not start the rendering of the whole conversation (templates that drop earlier turns' reasoning do this); set loss_on: all or use another template", i, i+1)
		}
		spans = append(spans, span{len(prompt), len(upto)})
	}
	return full, spans, nil
}
