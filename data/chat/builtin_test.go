package chat

import (
	"errors"
	"strings"
	"testing"
)

func mustBuiltin(t *testing.T, name string) *Template {
	t.Helper()
	tmpl, err := Builtin(name)
	if err != nil {
		t.Fatal(err)
	}
	return tmpl
}

func render(t *testing.T, tmpl *Template, msgs []Message, addGenerationPrompt bool) string {
	t.Helper()
	got, err := tmpl.Render(msgs, Options{AddGenerationPrompt: addGenerationPrompt})
	if err != nil {
		t.Fatal(err)
	}
	return got
}

// The llama3 checkpoint's template is Meta's first release, which adds the
// assistant header whatever add_generation_prompt says. The built-in template
// is the corrected one: the same text with add_generation_prompt, and without
// the trailing header otherwise.
func TestBuiltinLlama3MatchesCheckpoint(t *testing.T) {
	const header = "<|start_header_id|>assistant<|end_header_id|>\n\n"
	tmpl := mustBuiltin(t, "llama3")
	ck := loadCheckpoint(t, "llama3")
	own, err := Parse("llama3", ck.templates["default"])
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range loadGolden(t)["llama3"] {
		if got := render(t, tmpl, c.Messages, true); got != c.Text {
			t.Errorf("%s, generation prompt:\n got %q\nwant %q", describe(c), got, c.Text)
		}
		want, ok := strings.CutSuffix(c.Text, header)
		if !ok {
			t.Fatalf("%s: golden text does not end with the assistant header", describe(c))
		}
		if got := render(t, tmpl, c.Messages, false); got != want {
			t.Errorf("%s, no generation prompt:\n got %q\nwant %q", describe(c), got, want)
		}
		// The checkpoint's template ignores add_generation_prompt.
		if got := renderCheckpoint(t, own, ck, goldenCase{Messages: c.Messages, AddGenerationPrompt: !c.AddGenerationPrompt}); got != c.Text {
			t.Errorf("%s: checkpoint template depends on add_generation_prompt", describe(c))
		}
	}
	// Content is stripped, <|begin_of_text|> comes once.
	got := render(t, tmpl, []Message{{Role: "user", Content: " \n a \n"}, {Role: "assistant", Content: "b "}}, false)
	if want := "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\na<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\nb<|eot_id|>"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	if got := render(t, tmpl, nil, true); got != header {
		t.Errorf("no messages: got %q, want %q", got, header)
	}
}

// Qwen3's template is ChatML plus reasoning: an assistant turn after the last
// user turn gets a <think> block (empty when there is no reasoning). Without
// such a turn (and without tools) the built-in chatml template renders the
// same text.
func TestBuiltinChatMLMatchesQwen3(t *testing.T) {
	tmpl := mustBuiltin(t, "chatml")
	const emptyThink = "<think>\n\n</think>\n\n"
	checked := 0
	for _, c := range loadGolden(t)["qwen3"] {
		got := render(t, tmpl, c.Messages, c.AddGenerationPrompt)
		if c.Messages[len(c.Messages)-1].Role == "user" {
			checked++
			if got != c.Text {
				t.Errorf("%s:\n got %q\nwant %q", describe(c), got, c.Text)
			}
			continue
		}
		// user, assistant: only Qwen3's empty think block differs.
		if !strings.Contains(c.Text, emptyThink) {
			t.Fatalf("%s: expected Qwen3 to add an empty think block: %q", describe(c), c.Text)
		}
		if want := strings.Replace(c.Text, emptyThink, "", 1); got != want {
			t.Errorf("%s:\n got %q\nwant %q", describe(c), got, want)
		}
	}
	if checked != 6 {
		t.Errorf("compared %d conversations ending with a user turn, want 6", checked)
	}
	got := render(t, tmpl, []Message{{Role: "system", Content: "S"}, {Role: "user", Content: " u "}, {Role: "assistant", Content: "a"}, {Role: "tool", Content: "t"}}, true)
	if want := "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\n u <|im_end|>\n<|im_start|>assistant\na<|im_end|>\n<|im_start|>tool\nt<|im_end|>\n<|im_start|>assistant\n"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestBuiltinMistral(t *testing.T) {
	tmpl := mustBuiltin(t, "mistral")
	for _, c := range []struct {
		msgs []Message
		want string
	}{
		{
			[]Message{{Role: "user", Content: "What is the capital of France?"}},
			"<s>[INST] What is the capital of France? [/INST]",
		},
		{
			[]Message{{Role: "system", Content: "You are terse."}, {Role: "user", Content: "2+2?"}, {Role: "assistant", Content: "4"}, {Role: "user", Content: "And 3+3?"}},
			"<s>[INST] You are terse.\n\n2+2? [/INST]4</s>[INST] And 3+3? [/INST]",
		},
		{
			[]Message{{Role: "user", Content: "Hi"}, {Role: "assistant", Content: "Hello! How can I help?"}},
			"<s>[INST] Hi [/INST]Hello! How can I help?</s>",
		},
		{
			[]Message{{Role: "system", Content: "Answer in French."}, {Role: "user", Content: "naïve café — 東京 🤗"}},
			"<s>[INST] Answer in French.\n\nnaïve café — 東京 🤗 [/INST]",
		},
		{nil, "<s>"},
	} {
		// Mistral's format has no generation prompt: [/INST] ends the prompt.
		for _, gen := range []bool{false, true} {
			if got := render(t, tmpl, c.msgs, gen); got != c.want {
				t.Errorf("generation prompt %v:\n got %q\nwant %q", gen, got, c.want)
			}
		}
	}
	for _, c := range []struct {
		msgs []Message
		want string
	}{
		{[]Message{{Role: "user", Content: "a"}, {Role: "user", Content: "b"}}, "roles must alternate"},
		{[]Message{{Role: "assistant", Content: "a"}}, "roles must alternate"},
		{[]Message{{Role: "system", Content: "a"}, {Role: "system", Content: "b"}}, "roles must alternate"},
		{[]Message{{Role: "user", Content: "a"}, {Role: "tool", Content: "b"}}, "Only user and assistant roles are supported"},
	} {
		_, err := tmpl.Render(c.msgs, Options{})
		var raised *RaisedError
		if !errors.As(err, &raised) || !strings.Contains(raised.Message, c.want) || raised.Template != "mistral" {
			t.Errorf("%v: error %v, want one raised by mistral saying %q", c.msgs, err, c.want)
		}
	}
}

func TestBuiltinUnknown(t *testing.T) {
	_, err := Builtin("vicuna")
	if err == nil {
		t.Fatal("no error")
	}
	if want := `unknown built-in chat template "vicuna" (known: chatml, llama3, mistral)`; err.Error() != want {
		t.Errorf("error %q, want %q", err, want)
	}
}
