package tokenizer

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
)

// Config holds the fields of tokenizer_config.json that lethe uses: the
// special tokens a model expects, the chat template, and the flags that
// transformers reads. Raw keeps the whole file for anything else.
type Config struct {
	BOSToken string `json:"bos_token"`
	EOSToken string `json:"eos_token"`
	PadToken string `json:"pad_token"`
	UnkToken string `json:"unk_token"`
	SepToken string `json:"sep_token"`
	ClsToken string `json:"cls_token"`
	// MaskToken is BERT's [MASK] and the like.
	MaskToken string `json:"mask_token"`
	// AdditionalSpecialTokens lists further special tokens by content.
	AdditionalSpecialTokens []string `json:"additional_special_tokens"`
	// AddBOSToken and AddEOSToken are the flags of Llama-style slow
	// tokenizers (nil when absent).
	AddBOSToken *bool `json:"add_bos_token"`
	AddEOSToken *bool `json:"add_eos_token"`
	// ChatTemplates maps a template name to its Jinja source; a plain
	// string chat_template is stored as "default".
	ChatTemplates map[string]string `json:"chat_template"`
	// ModelMaxLength is model_max_length; transformers writes 1e30 for
	// "no limit", which becomes 0 here.
	ModelMaxLength int `json:"model_max_length"`
	// PaddingSide and TruncationSide are "right" or "left" ("" if absent).
	PaddingSide    string `json:"padding_side"`
	TruncationSide string `json:"truncation_side"`
	// CleanUpTokenizationSpaces is transformers' decode-time cleanup flag.
	CleanUpTokenizationSpaces bool `json:"clean_up_tokenization_spaces"`
	// TokenizerClass is the transformers class name, for information.
	TokenizerClass string `json:"tokenizer_class"`
	// AddedTokensDecoder is added_tokens_decoder by id.
	AddedTokensDecoder map[int]AddedToken `json:"added_tokens_decoder"`
	// Raw is the whole file.
	Raw map[string]json.RawMessage `json:"-"`
}

// ChatTemplate returns the default chat template, or "" if there is none.
func (c *Config) ChatTemplate() string {
	if c == nil {
		return ""
	}
	return c.ChatTemplates["default"]
}

// ParseConfig parses the contents of a tokenizer_config.json. name is used
// in error messages.
func ParseConfig(data []byte, name string) (*Config, error) {
	var raw map[string]json.RawMessage
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if err := dec.Decode(&raw); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	c := &Config{Raw: raw}
	tokenField := func(key string, dst *string) error {
		v, ok := raw[key]
		if !ok {
			return nil
		}
		s, err := specialTokenContent(v)
		if err != nil {
			return fmt.Errorf("%s: %s: %w", name, key, err)
		}
		*dst = s
		return nil
	}
	for key, dst := range map[string]*string{
		"bos_token": &c.BOSToken, "eos_token": &c.EOSToken, "pad_token": &c.PadToken, "unk_token": &c.UnkToken,
		"sep_token": &c.SepToken, "cls_token": &c.ClsToken, "mask_token": &c.MaskToken,
	} {
		if err := tokenField(key, dst); err != nil {
			return nil, err
		}
	}
	if v, ok := raw["additional_special_tokens"]; ok && !isNull(v) {
		c.AdditionalSpecialTokens = []string{}
		var list []json.RawMessage
		if err := json.Unmarshal(v, &list); err != nil {
			// Some files store the list as its Python repr (a string);
			// nothing lethe needs depends on it.
			var s string
			if json.Unmarshal(v, &s) != nil {
				return nil, fmt.Errorf("%s: additional_special_tokens: %w", name, err)
			}
		}
		for i, item := range list {
			s, err := specialTokenContent(item)
			if err != nil {
				return nil, fmt.Errorf("%s: additional_special_tokens[%d]: %w", name, i, err)
			}
			c.AdditionalSpecialTokens = append(c.AdditionalSpecialTokens, s)
		}
	}
	boolField := func(key string) (*bool, error) {
		v, ok := raw[key]
		if !ok || isNull(v) {
			return nil, nil
		}
		var b bool
		if err := json.Unmarshal(v, &b); err != nil {
			return nil, fmt.Errorf("%s: %s: %w", name, key, err)
		}
		return &b, nil
	}
	var err error
	if c.AddBOSToken, err = boolField("add_bos_token"); err != nil {
		return nil, err
	}
	if c.AddEOSToken, err = boolField("add_eos_token"); err != nil {
		return nil, err
	}
	if b, err := boolField("clean_up_tokenization_spaces"); err != nil {
		return nil, err
	} else if b != nil {
		c.CleanUpTokenizationSpaces = *b
	}
	for key, dst := range map[string]*string{"padding_side": &c.PaddingSide, "truncation_side": &c.TruncationSide, "tokenizer_class": &c.TokenizerClass} {
		if v, ok := raw[key]; ok && !isNull(v) {
			if err := json.Unmarshal(v, dst); err != nil {
				return nil, fmt.Errorf("%s: %s: %w", name, key, err)
			}
		}
	}
	if v, ok := raw["model_max_length"]; ok && !isNull(v) {
		f, err := strconv.ParseFloat(string(bytes.TrimSpace(v)), 64)
		if err != nil {
			return nil, fmt.Errorf("%s: model_max_length: %w", name, err)
		}
		if f > 0 && f < 1<<40 {
			c.ModelMaxLength = int(f)
		}
	}
	if v, ok := raw["chat_template"]; ok && !isNull(v) {
		if c.ChatTemplates, err = parseChatTemplates(v); err != nil {
			return nil, fmt.Errorf("%s: chat_template: %w", name, err)
		}
	}
	if v, ok := raw["added_tokens_decoder"]; ok && !isNull(v) {
		var m map[string]AddedToken
		if err := json.Unmarshal(v, &m); err != nil {
			return nil, fmt.Errorf("%s: added_tokens_decoder: %w", name, err)
		}
		c.AddedTokensDecoder = make(map[int]AddedToken, len(m))
		for k, t := range m {
			id, err := strconv.Atoi(k)
			if err != nil {
				return nil, fmt.Errorf("%s: added_tokens_decoder: key %q is not an id", name, k)
			}
			t.ID = id
			c.AddedTokensDecoder[id] = t
		}
	}
	return c, nil
}

// parseChatTemplates reads chat_template: a string, or a list of
// {"name": ..., "template": ...} with distinct names.
func parseChatTemplates(v json.RawMessage) (map[string]string, error) {
	var s string
	if err := json.Unmarshal(v, &s); err == nil {
		return map[string]string{"default": s}, nil
	}
	var list []struct {
		Name     *string `json:"name"`
		Template *string `json:"template"`
	}
	if err := json.Unmarshal(v, &list); err != nil {
		return nil, fmt.Errorf("want a string or a list of {name, template}: %w", err)
	}
	out := make(map[string]string, len(list))
	for i, t := range list {
		if t.Name == nil || t.Template == nil {
			return nil, fmt.Errorf("entry %d: want both \"name\" and \"template\"", i)
		}
		if _, dup := out[*t.Name]; dup {
			return nil, fmt.Errorf("entry %d: name %q repeated", i, *t.Name)
		}
		out[*t.Name] = *t.Template
	}
	return out, nil
}

// specialTokenContent reads a special token written as a string, as an
// AddedToken object ({"content": ...}) or as null.
func specialTokenContent(v json.RawMessage) (string, error) {
	if isNull(v) {
		return "", nil
	}
	var s string
	if err := json.Unmarshal(v, &s); err == nil {
		return s, nil
	}
	var obj struct {
		Content *string `json:"content"`
	}
	if err := json.Unmarshal(v, &obj); err != nil || obj.Content == nil {
		return "", fmt.Errorf("want a string or {\"content\": ...}, got %s", v)
	}
	return *obj.Content, nil
}

func isNull(v json.RawMessage) bool { return string(bytes.TrimSpace(v)) == "null" }

// SpecialTokens lists the contents of the configured special tokens, sorted.
func (c *Config) SpecialTokens() []string {
	seen := map[string]bool{}
	for _, s := range append([]string{c.BOSToken, c.EOSToken, c.PadToken, c.UnkToken, c.SepToken, c.ClsToken, c.MaskToken}, c.AdditionalSpecialTokens...) {
		if s != "" {
			seen[s] = true
		}
	}
	out := make([]string, 0, len(seen))
	for s := range seen {
		out = append(out, s)
	}
	sort.Strings(out)
	return out
}

// TemplateVars returns the special tokens transformers passes to chat
// templates as variables: bos_token, eos_token, unk_token, sep_token,
// pad_token, cls_token and mask_token when set, and
// additional_special_tokens when the file lists them.
func (c *Config) TemplateVars() map[string]any {
	out := map[string]any{}
	if c == nil {
		return out
	}
	for key, v := range map[string]string{
		"bos_token": c.BOSToken, "eos_token": c.EOSToken, "unk_token": c.UnkToken, "sep_token": c.SepToken,
		"pad_token": c.PadToken, "cls_token": c.ClsToken, "mask_token": c.MaskToken,
	} {
		if v != "" {
			out[key] = v
		}
	}
	if c.AdditionalSpecialTokens != nil {
		list := make([]any, len(c.AdditionalSpecialTokens))
		for i, t := range c.AdditionalSpecialTokens {
			list[i] = t
		}
		out["additional_special_tokens"] = list
	}
	return out
}
