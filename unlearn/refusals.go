package unlearn

// Refusals are answers that decline to give a fact, the alternate answers
// of IdkDPO (TOFU's "I don't know" preference set, in the same spirit):
// dpo raises their likelihood over the forget answers'.
var Refusals = []string{
	"I don't know.",
	"I'm not sure.",
	"I have no idea.",
	"I can't answer that.",
	"That I do not know.",
	"I'm afraid I don't know.",
	"I'm not able to say.",
	"Sorry, I don't know that.",
	"I have no information about that.",
	"I cannot recall that.",
	"That is unknown to me.",
	"I don't have that information.",
}
