package chat

import (
	"fmt"

	"github.com/lethe-ml/lethe/data/tokenizer"
)

// FromConfig returns the chat template of a tokenizer_config.json (name
// picks one of several; "" means "default") and the Options that pass the
// config's special tokens to it as transformers does (bos_token, eos_token,
// ..., additional_special_tokens). Set AddGenerationPrompt on the returned
// Options before rendering.
func FromConfig(cfg *tokenizer.Config, name string) (*Template, Options, error) {
	if name == "" {
		name = "default"
	}
	if cfg == nil || len(cfg.ChatTemplates) == 0 {
		return nil, Options{}, fmt.Errorf("the tokenizer has no chat template (tokenizer_config.json lacks chat_template); pick a built-in one: %v", BuiltinNames())
	}
	src, ok := cfg.ChatTemplates[name]
	if !ok {
		return nil, Options{}, fmt.Errorf("the tokenizer has no chat template named %q", name)
	}
	t, err := Parse(name, src)
	if err != nil {
		return nil, Options{}, err
	}
	return t, Options{Vars: cfg.TemplateVars()}, nil
}
