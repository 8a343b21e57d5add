package chat

import (
	"fmt"
	"slices"
	"strings"
)

// builtinSources are the Jinja sources of the built-in templates, rendered by
// the same engine as checkpoint templates. Their special tokens are written
// out, so they need no BOSToken or EOSToken.
var builtinSources = map[string]string{
	// ChatML as Qwen and others use it.
	"chatml": `{%- for message in messages %}
    {{- '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}
{%- endfor %}
{%- if add_generation_prompt %}
    {{- '<|im_start|>assistant\n' }}
{%- endif %}`,

	// Meta-Llama-3-8B-Instruct's template in its corrected form, which adds the
	// assistant header only for add_generation_prompt (the first release
	// always added it).
	"llama3": `{%- for message in messages %}
    {%- if loop.first %}
        {{- '<|begin_of_text|>' }}
    {%- endif %}
    {{- '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n' + message['content'] | trim + '<|eot_id|>' }}
{%- endfor %}
{%- if add_generation_prompt %}
    {{- '<|start_header_id|>assistant<|end_header_id|>\n\n' }}
{%- endif %}`,

	// Mistral-7B-Instruct: [INST] user [/INST]assistant</s>, an optional
	// system message prepended to the first user turn, roles alternating.
	"mistral": `{%- if messages and messages[0]['role'] == 'system' %}
    {%- set system_message = messages[0]['content'] %}
    {%- set loop_messages = messages[1:] %}
{%- else %}
    {%- set loop_messages = messages %}
{%- endif %}
{{- '<s>' }}
{%- for message in loop_messages %}
    {%- if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}
        {{- raise_exception('After the optional system message, conversation roles must alternate user/assistant/user/assistant/...') }}
    {%- endif %}
    {%- if message['role'] == 'user' %}
        {%- if loop.first and system_message is defined %}
            {{- '[INST] ' + system_message + '\n\n' + message['content'] + ' [/INST]' }}
        {%- else %}
            {{- '[INST] ' + message['content'] + ' [/INST]' }}
        {%- endif %}
    {%- elif message['role'] == 'assistant' %}
        {{- message['content'] + '</s>' }}
    {%- else %}
        {{- raise_exception('Only user and assistant roles are supported, with the exception of an initial optional system message!') }}
    {%- endif %}
{%- endfor %}`,
}

// BuiltinNames returns the names Builtin knows, sorted.
func BuiltinNames() []string {
	names := make([]string, 0, len(builtinSources))
	for name := range builtinSources {
		names = append(names, name)
	}
	slices.Sort(names)
	return names
}

// Builtin returns a built-in template for checkpoints without one: "chatml"
// (<|im_start|>role\ncontent<|im_end|>\n), "llama3" (the Llama 3 Instruct
// format) or "mistral" (Mistral-7B-Instruct's [INST] format).
func Builtin(name string) (*Template, error) {
	src, ok := builtinSources[name]
	if !ok {
		return nil, fmt.Errorf("unknown built-in chat template %q (known: %s)", name, strings.Join(BuiltinNames(), ", "))
	}
	return Parse(name, src)
}
