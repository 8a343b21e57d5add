// Package chat renders conversations with the Jinja chat templates of Hugging
// Face checkpoints (tokenizer_config.json's chat_template) and with built-in
// templates for checkpoints that have none.
//
// Templates run on github.com/nikolalohinski/gonja/v2, configured and
// extended to behave like the Jinja2 environment of transformers'
// apply_chat_template; see Parse for what that covers.
package chat

import "encoding/json"

// Message is one turn of a conversation.
//
// In a template a message is a dict holding role and content, plus each of the
// optional fields below that is set (so that `message.tool_calls is defined`
// is false when there are none), in the order of the fields here.
type Message struct {
	// Role is "system", "user", "assistant" or "tool" (templates may accept others).
	Role string `json:"role"`
	// Content is the text of the turn.
	Content string `json:"content"`
	// ReasoningContent is the assistant's reasoning ("thinking") when it is
	// kept apart from Content, as Qwen3 and DeepSeek-R1 templates read it.
	ReasoningContent string `json:"reasoning_content,omitempty"`
	// ToolCalls are the tool calls of an assistant turn.
	ToolCalls []ToolCall `json:"tool_calls,omitempty"`
	// ToolCallID is, in a tool turn, the id of the call it answers.
	ToolCallID string `json:"tool_call_id,omitempty"`
	// Name is, in a tool turn, the name of the tool that answered.
	Name string `json:"name,omitempty"`
}

// ToolCall is one call of a tool (function) by the assistant, in the OpenAI
// layout transformers' templates expect.
type ToolCall struct {
	// ID identifies the call; tool turns answer it by ToolCallID. Optional.
	ID string `json:"id,omitempty"`
	// Type is "function"; left empty it is rendered as "function".
	Type string `json:"type,omitempty"`
	// Function is the called function and its arguments.
	Function FunctionCall `json:"function"`
}

// FunctionCall names a function and the arguments it is called with.
type FunctionCall struct {
	// Name is the function's name.
	Name string `json:"name"`
	// Arguments is JSON: usually an object (a dict in the template, key order
	// kept), or a JSON string holding the encoded object, which templates test
	// with `arguments is string` and print as is. Empty means no arguments
	// (undefined in the template).
	Arguments json.RawMessage `json:"arguments,omitempty"`
}
