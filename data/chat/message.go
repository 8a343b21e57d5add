// Package chat renders conversations with the Jinja chat templates of Hugging
// Face checkpoints (tokenizer_config.json's chat_template) and with built-in
// templates for checkpoints that have none.
package chat

// Message is one turn of a conversation.
type Message struct {
	// Role is "system", "user", "assistant" or "tool" (templates may accept others).
	Role string `json:"role"`
	// Content is the text of the turn.
	Content string `json:"content"`
}
