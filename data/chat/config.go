package chat

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
)

// Templates parses tokenizer_config.json's chat_template field: either a
// string or a list of {"name", "template"} objects. It returns name → source,
// with "default" for the string form. A missing or null field gives an
// empty map.
func Templates(raw json.RawMessage) (map[string]string, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return map[string]string{}, nil
	}
	var single string
	if err := json.Unmarshal(raw, &single); err == nil {
		return map[string]string{"default": single}, nil
	}
	var list []struct {
		Name     *string `json:"name"`
		Template *string `json:"template"`
	}
	if err := json.Unmarshal(raw, &list); err != nil {
		return nil, fmt.Errorf("chat_template is neither a string nor a list of {name, template}: %w", err)
	}
	out := make(map[string]string, len(list))
	for i, t := range list {
		if t.Name == nil || t.Template == nil {
			return nil, fmt.Errorf("chat_template[%d]: want both \"name\" and \"template\"", i)
		}
		if _, dup := out[*t.Name]; dup {
			return nil, fmt.Errorf("chat_template[%d]: name %q repeated", i, *t.Name)
		}
		out[*t.Name] = *t.Template
	}
	return out, nil
}

// specialTokenKeys are the special tokens transformers passes to chat
// templates (its special_tokens_map).
var specialTokenKeys = []string{"bos_token", "eos_token", "unk_token", "sep_token", "pad_token", "cls_token", "mask_token"}

// SpecialTokens reads the special tokens of a tokenizer_config.json that
// transformers passes to chat templates: bos_token, eos_token, unk_token,
// sep_token, pad_token, cls_token and mask_token (each a string or an
// AddedToken object whose "content" is taken) and additional_special_tokens
// (a list). Tokens that are missing or null are left out. Pass the result as
// Options.Vars; as it holds bos_token and eos_token, Options.BOSToken and
// EOSToken can then stay empty.
func SpecialTokens(tokenizerConfig []byte) (map[string]any, error) {
	var cfg map[string]json.RawMessage
	if err := json.Unmarshal(tokenizerConfig, &cfg); err != nil {
		return nil, fmt.Errorf("read special tokens: %w", err)
	}
	out := map[string]any{}
	for _, key := range specialTokenKeys {
		tok, ok, err := tokenContent(cfg[key])
		if err != nil {
			return nil, fmt.Errorf("read special tokens: %s: %w", key, err)
		}
		if ok {
			out[key] = tok
		}
	}
	if raw, ok := cfg["additional_special_tokens"]; ok && !bytes.Equal(bytes.TrimSpace(raw), []byte("null")) {
		var list []json.RawMessage
		if err := json.Unmarshal(raw, &list); err != nil {
			return nil, fmt.Errorf("read special tokens: additional_special_tokens: %w", err)
		}
		toks := make([]any, 0, len(list))
		for i, r := range list {
			tok, ok, err := tokenContent(r)
			if err != nil || !ok {
				return nil, fmt.Errorf("read special tokens: additional_special_tokens[%d]: want a token, got %s", i, r)
			}
			toks = append(toks, tok)
		}
		out["additional_special_tokens"] = toks
	}
	return out, nil
}

// tokenContent reads a token given as a string or as {"content": ...}.
func tokenContent(raw json.RawMessage) (string, bool, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return "", false, nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err == nil {
		return s, true, nil
	}
	var added struct {
		Content *string `json:"content"`
	}
	if err := json.Unmarshal(raw, &added); err != nil || added.Content == nil {
		return "", false, errors.New("want a string or an object with \"content\"")
	}
	return *added.Content, true, nil
}
