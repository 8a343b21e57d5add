package data

import (
	"fmt"

	"github.com/lethe-ml/lethe/data/chat"
	"github.com/lethe-ml/lethe/data/tokenizer"
)

// EOSID looks up the EOS token named by the tokenizer's
// tokenizer_config.json.
func EOSID(tok *tokenizer.Tokenizer) (int, error) {
	cfg := tok.Config()
	if cfg == nil || cfg.EOSToken == "" {
		return 0, fmt.Errorf("%s: no tokenizer_config.json naming an eos_token", tok.Name())
	}
	id, ok := tok.TokenToID(cfg.EOSToken)
	if !ok {
		return 0, fmt.Errorf("%s: eos_token %q is not in the vocabulary", tok.Name(), cfg.EOSToken)
	}
	return id, nil
}

// NewChatRenderer returns the renderer of the built-in template builtin
// (chat.BuiltinNames) when it is not empty, else of the tokenizer's own
// template (tokenizer_config.json), else nil: the tokenizer has none.
func NewChatRenderer(tok *tokenizer.Tokenizer, builtin string) (ChatRenderer, error) {
	var (
		t    *chat.Template
		opts chat.Options
		err  error
	)
	cfg := tok.Config()
	switch {
	case builtin != "":
		if t, err = chat.Builtin(builtin); err != nil {
			return nil, err
		}
		if cfg != nil {
			opts.Vars = cfg.TemplateVars()
		}
	case cfg != nil && cfg.ChatTemplate() != "":
		if t, opts, err = chat.FromConfig(cfg, ""); err != nil {
			return nil, fmt.Errorf("%s: %w", tok.Name(), err)
		}
	default:
		return nil, nil
	}
	return RenderFunc(func(msgs []chat.Message, gen bool) (string, error) {
		o := opts
		o.AddGenerationPrompt = gen
		return t.Render(msgs, o)
	}), nil
}
