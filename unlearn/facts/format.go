package facts

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// The QA format that models are trained and evaluated in. An example
// renders as the prompt
//
//	"Q: " + Question + "\nA:"
//
// followed by the completion
//
//	" " + Answer + "\n"
//
// so "What is the capital of France?" becomes "Q: What is the capital of
// France?\nA:" + " Paris\n". Training puts the loss on the completion only;
// generation starts right after "A:" and the newline ends the answer.
// ParaphrasedAnswer and PerturbedAnswers are scored as completions of the
// same prompt, rendered by CompletionOf.
const (
	// QuestionPrefix starts a prompt.
	QuestionPrefix = "Q: "
	// AnswerPrefix ends a prompt, after the question.
	AnswerPrefix = "\nA:"
	// CompletionPrefix starts a completion, before the answer.
	CompletionPrefix = " "
	// CompletionSuffix ends a completion, after the answer.
	CompletionSuffix = "\n"
)

// Prompt returns the example's prompt: "Q: " + Question + "\nA:".
func (e Example) Prompt() string {
	return QuestionPrefix + e.Question + AnswerPrefix
}

// Completion returns the example's training completion, CompletionOf(Answer):
// " " + Answer + "\n".
func (e Example) Completion() string {
	return CompletionOf(e.Answer)
}

// CompletionOf renders an answer text, short or a sentence, as a
// completion of an example's prompt: " " + text + "\n".
func CompletionOf(text string) string {
	return CompletionPrefix + text + CompletionSuffix
}

// Correct reports whether a model's generation, the text it produced after
// the prompt, gives answer. Both are trimmed of surrounding white space and
// compared without regard to case (Unicode simple folding); the generation
// is correct when it starts with the answer and the answer ends there or is
// followed by a character that is neither a letter nor a digit. So for the
// answer "Paris", " paris\nQ: ..." and "Paris, of course" are correct, and
// "Parisian" is not; for "1", "11" is not. An empty answer is never given.
func Correct(generated, answer string) bool {
	g, a := strings.TrimSpace(generated), strings.TrimSpace(answer)
	if a == "" {
		return false
	}
	for a != "" {
		ra, na := utf8.DecodeRuneInString(a)
		rg, ng := utf8.DecodeRuneInString(g)
		if g == "" || !equalFold(ra, rg) {
			return false
		}
		a, g = a[na:], g[ng:]
	}
	if g == "" {
		return true
	}
	next, _ := utf8.DecodeRuneInString(g)
	return !unicode.IsLetter(next) && !unicode.IsDigit(next)
}

// equalFold reports whether a and b are equal under Unicode simple case
// folding.
func equalFold(a, b rune) bool {
	if a == b {
		return true
	}
	for r := unicode.SimpleFold(a); r != a; r = unicode.SimpleFold(r) {
		if r == b {
			return true
		}
	}
	return false
}
