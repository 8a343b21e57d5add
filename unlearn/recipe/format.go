package recipe

import (
	"fmt"
	"strings"

	"github.com/lethe-ml/lethe/data"
	"github.com/lethe-ml/lethe/data/chat"
	"github.com/lethe-ml/lethe/data/tokenizer"
	"github.com/lethe-ml/lethe/unlearn/facts"
	"github.com/lethe-ml/lethe/unlearn/metrics"
)

// format renders questions and answers for training, scoring and
// generation, and judges generated answers.
type format struct {
	prompt     func(question string) (string, error)
	completion func(answer string) string
	stopIDs    []int // nil: stop at the newline (eval.Options.Stop)
	correct    func(generated, answer string) bool
}

// newFormat returns the data.template format.
func newFormat(tok *tokenizer.Tokenizer, c DataConfig) (*format, error) {
	if c.Template != "chat" {
		return &format{
			prompt:     func(q string) (string, error) { return facts.QuestionPrefix + q + facts.AnswerPrefix, nil },
			completion: facts.CompletionOf,
			correct:    correctFor(c),
		}, nil
	}
	render, err := data.NewChatRenderer(tok, "")
	if err != nil {
		return nil, fmt.Errorf("data.template chat: %w", err)
	}
	eos, err := data.EOSID(tok)
	if err != nil {
		return nil, fmt.Errorf("data.template chat: %w", err)
	}
	eosText, _ := tok.IDToToken(eos)
	return &format{
		prompt: func(q string) (string, error) {
			return render.Render([]chat.Message{{Role: "user", Content: q}}, true)
		},
		completion: func(a string) string { return a + eosText },
		stopIDs:    []int{eos},
		correct:    correctFor(c),
	}, nil
}

// encode renders an example's question with a completion and tokenizes
// them (loss on the completion), truncated to maxLen tokens.
func (pf *format) encode(tok *tokenizer.Tokenizer, e facts.Example, completion string, maxLen int) (sample, error) {
	prompt, err := pf.prompt(e.Question)
	if err != nil {
		return sample{}, err
	}
	return encode(tok, prompt, completion, maxLen)
}

// correctFor judges answers: the facts benchmark's short answers must
// start the generation (facts.Correct); TOFU's sentence answers count as
// given when the generation recalls at least half of them (ROUGE-L
// recall >= 0.5, TOFU's headline generation metric thresholded).
func correctFor(c DataConfig) func(generated, answer string) bool {
	if c.TOFU == nil {
		return facts.Correct
	}
	return func(generated, answer string) bool {
		return metrics.RougeL(strings.TrimSpace(generated), answer).Recall >= 0.5
	}
}
