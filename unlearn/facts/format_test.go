package facts

import "testing"

// TestPromptCompletion checks the QA rendering of an example.
func TestPromptCompletion(t *testing.T) {
	e := Example{Question: "What is the capital of France?", Answer: "Paris", ParaphrasedAnswer: "The capital of France is Paris."}
	tests := []struct{ name, got, want string }{
		{"Prompt", e.Prompt(), "Q: What is the capital of France?\nA:"},
		{"Completion", e.Completion(), " Paris\n"},
		{"CompletionOf paraphrase", CompletionOf(e.ParaphrasedAnswer), " The capital of France is Paris.\n"},
		{"training text", e.Prompt() + e.Completion(), "Q: What is the capital of France?\nA: Paris\n"},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("%s = %q, want %q", tt.name, tt.got, tt.want)
		}
	}
}

// TestCorrect checks the scoring of greedy generations.
func TestCorrect(t *testing.T) {
	tests := []struct {
		generated, answer string
		want              bool
	}{
		{" Paris\n", "Paris", true},
		{" paris\nQ: What is", "Paris", true},
		{"PARIS", "Paris", true},
		{"Paris, of course.", "Paris", true},
		{"Paris is the capital.", "Paris", true},
		{"  Paris  ", " Paris ", true},
		{"Parisian", "Paris", false},
		{"Pari", "Paris", false},
		{"Lyon", "Paris", false},
		{"", "Paris", false},
		{"The capital is Paris", "Paris", false},
		{"11", "1", false},
		{"1\n", "1", true},
		{"1.", "1", true},
		{"Fermium", "Fe", false},
		{"fe", "Fe", true},
		{"Washington, DC", "Washington, DC", true},
		{"Washington", "Washington, DC", false},
		{"são tomé", "São Tomé", true},
		{"São Toméx", "São Tomé", false},
		{"anything", "", false},
		{"", "", false},
	}
	for _, tt := range tests {
		if got := Correct(tt.generated, tt.answer); got != tt.want {
			t.Errorf("Correct(%q, %q) = %v, want %v", tt.generated, tt.answer, got, tt.want)
		}
	}
}
