package chat

import (
	"errors"
	"fmt"

	"github.com/nikolalohinski/gonja/v2/config"
	"github.com/nikolalohinski/gonja/v2/exec"
	"github.com/nikolalohinski/gonja/v2/loaders"
)

// Template is a compiled chat template. It is safe for concurrent use.
type Template struct {
	name string
	tmpl *exec.Template
}

// Options are the variables a chat template is rendered with, next to the
// messages. They mirror the keyword arguments of transformers'
// apply_chat_template.
type Options struct {
	// AddGenerationPrompt appends the header of an assistant turn so that a
	// model continues with its answer (add_generation_prompt).
	AddGenerationPrompt bool
	// BOSToken and EOSToken are the tokenizer's special tokens (bos_token and
	// eos_token; see SpecialTokens for reading them from tokenizer_config.json).
	BOSToken, EOSToken string
	// Tools are the tool (function) schemas offered to the model (tools). Each
	// is a JSON-like value: map[string]any, []any, string, bool, numbers,
	// json.Number, json.RawMessage, or any value encoding/json can marshal.
	// json.RawMessage and structs keep their key order, as Python dicts do;
	// Go maps have none and are rendered with sorted keys. Nil leaves tools
	// undefined.
	Tools []any
	// Vars are extra template variables (the other special tokens,
	// documents, enable_thinking, date_string, ...), converted like Tools.
	// They override the variables above of the same name.
	Vars map[string]any
}

// Parse compiles the Jinja source of a chat template; name is used in error
// messages. The template is run as transformers runs it: trim_blocks and
// lstrip_blocks on, break and continue allowed, raise_exception and
// strftime_now defined, tojson as transformers defines it, {% generation %}
// blocks accepted, and the Python str, list and dict methods templates use
// (methods that modify a dict or list are refused, as in transformers'
// immutable sandbox). Templates cannot include or import other templates.
//
// The engine is gonja, which differs from Jinja2 in a few places the chat
// templates checked so far do not depend on: None and undefined are the same
// value (a None-valued variable is not defined, None prints as ""), a missing
// key or variable used in an expression is an empty value rather than an
// error, indexing a string counts bytes, ** always gives a float and //
// truncates toward zero, a {} literal is true.
func Parse(name, source string) (*Template, error) {
	id := "/chat_template"
	loader, err := loaders.NewMemoryLoader(map[string]string{id: lstripBlocks(source)})
	if err != nil {
		return nil, fmt.Errorf("chat template %q: %w", name, err)
	}
	t, err := exec.NewTemplate(id, engineConfig(), loader, environment)
	if err != nil {
		// gonja's message quotes the whole source before the parser's error.
		if inner := errors.Unwrap(err); inner != nil {
			err = inner
		}
		return nil, fmt.Errorf("parse chat template %q: %w", name, err)
	}
	return &Template{name: name, tmpl: t}, nil
}

// Name returns the name the template was parsed with.
func (t *Template) Name() string { return t.name }

// Render renders messages as transformers' apply_chat_template(messages,
// tokenize=False, ...) does. The template sees messages,
// add_generation_prompt, bos_token and eos_token (when not empty), tools
// (when not nil) and opts.Vars. A template calling raise_exception returns a
// *RaisedError.
func (t *Template) Render(messages []Message, opts Options) (string, error) {
	msgs, err := messagesValue(messages)
	if err != nil {
		return "", fmt.Errorf("render chat template %q: %w", t.name, err)
	}
	// gonja does not keep a function's error in the chain of the error it
	// returns, so raise_exception records its message here.
	var raised *RaisedError
	raiseException := func(args *exec.VarArgs) (any, error) {
		if len(args.Args) != 1 || len(args.KwArgs) != 0 {
			return nil, fmt.Errorf("raise_exception takes exactly one argument (%d given)", len(args.Args)+len(args.KwArgs))
		}
		raised = &RaisedError{Template: t.name, Message: args.Args[0].String()}
		return nil, raised
	}
	vars := map[string]any{
		"messages":              msgs,
		"add_generation_prompt": opts.AddGenerationPrompt,
		"raise_exception":       raiseException,
	}
	if opts.BOSToken != "" {
		vars["bos_token"] = opts.BOSToken
	}
	if opts.EOSToken != "" {
		vars["eos_token"] = opts.EOSToken
	}
	if opts.Tools != nil {
		tools := make([]any, len(opts.Tools))
		for i, tool := range opts.Tools {
			v, err := toTemplateValue(tool)
			if err != nil {
				return "", fmt.Errorf("render chat template %q: tool %d: %w", t.name, i, err)
			}
			tools[i] = v
		}
		vars["tools"] = tools
	}
	for key, value := range opts.Vars {
		v, err := toTemplateValue(value)
		if err != nil {
			return "", fmt.Errorf("render chat template %q: variable %q: %w", t.name, key, err)
		}
		vars[key] = v
	}
	out, err := t.tmpl.ExecuteToString(exec.NewContext(vars))
	if err != nil {
		if raised != nil {
			return "", raised
		}
		return "", fmt.Errorf("render chat template %q: %w", t.name, err)
	}
	return out, nil
}

// RaisedError is the error Render returns when the template calls
// raise_exception(message), as templates do for conversations they do not
// accept (roles that do not alternate, an unsupported role, ...).
type RaisedError struct {
	// Template is the name of the template.
	Template string
	// Message is the argument of raise_exception.
	Message string
}

// Error returns the template's name and the message.
func (e *RaisedError) Error() string {
	return fmt.Sprintf("chat template %q raised an exception: %s", e.Template, e.Message)
}

// engineConfig is the lexer configuration of transformers' Jinja
// environment: trim_blocks, and lstrip_blocks done by lstripBlocks.
func engineConfig() *config.Config {
	c := config.New()
	c.TrimBlocks = true
	return c
}
