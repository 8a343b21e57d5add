package chat_test

import (
	"fmt"

	"github.com/lethe-ml/lethe/data/chat"
)

func ExampleTemplate_Render() {
	tmpl, err := chat.Builtin("chatml")
	if err != nil {
		panic(err)
	}
	text, err := tmpl.Render([]chat.Message{
		{Role: "system", Content: "You are terse."},
		{Role: "user", Content: "2+2?"},
	}, chat.Options{AddGenerationPrompt: true})
	if err != nil {
		panic(err)
	}
	fmt.Print(text)
	// Output:
	// <|im_start|>system
	// You are terse.<|im_end|>
	// <|im_start|>user
	// 2+2?<|im_end|>
	// <|im_start|>assistant
}

func ExampleParse() {
	// A template source, as tokenizer_config.json's chat_template holds it.
	source := `{% for m in messages %}{{ m.role | upper }}: {{ m.content | trim }}
{% endfor %}{% if add_generation_prompt %}ASSISTANT:{% endif %}`
	tmpl, err := chat.Parse("demo", source)
	if err != nil {
		panic(err)
	}
	text, err := tmpl.Render([]chat.Message{{Role: "user", Content: "  hi  "}}, chat.Options{AddGenerationPrompt: true})
	if err != nil {
		panic(err)
	}
	fmt.Println(text)
	// Output:
	// USER: hi
	// ASSISTANT:
}
