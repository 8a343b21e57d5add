package decoding

import (
	"fmt"
	"math"
	"strings"
)

// Contrastive is contrastive decoding: the next-token scores of a strong
// "expert" model are contrasted with those of a weaker "amateur" on the same
// context, so that tokens both models like (generic, repetitive, copied
// text) lose to tokens only the expert likes.
//
// # Decoding strategies beyond transformers' chain
//
// Besides the processors NewChain builds, the package offers pure functions
// on host float32 rows for strategies that need more than one row per step
// or state across steps. None of them is built by NewChain; the generation
// loop calls them around the chain.
//
//   - Contrastive (this type): expert and amateur rows → contrastive scores.
//     Li et al. 2023, "Contrastive Decoding: Open-ended Text Generation as
//     Optimization" (log p_exp − log p_ama), and O'Brien & Lewis 2023,
//     "Contrastive Decoding Improves Reasoning in Large Language Models"
//     ((1+β)·s_exp − β·s_ama on logits). Both restrict the result to the
//     expert's plausible tokens, p_exp ≥ α·max p_exp.
//   - Distillation Contrastive Decoding (Phan et al. 2024): Contrastive with
//     the expert itself, run with dropout (and/or quantized), as the amateur,
//     prompted with invalid chain-of-thought demonstrations; DCDPrompts
//     builds the two prompts.
//   - DoLa (Chuang et al. 2024, "DoLa: Decoding by Contrasting Layers
//     Improves Factuality in Large Language Models"): the final layer's row
//     contrasted with the premature layer (the LM head applied to an earlier
//     hidden state) whose distribution differs most from it; see DoLa,
//     DoLaLayers, DoLaDivergence.
//   - FrequencyPresencePenalty: OpenAI's frequency and presence penalties
//     over the generated ids, a Processor.
//   - Antislop (Paech et al. 2025, "Antislop: A Comprehensive Framework for
//     Identifying and Eliminating Repetitive Patterns in Language Models"):
//     a banned-phrase list matched on the decoded text; on a hit the
//     generator backtracks to the phrase's first token and resamples there
//     with that token banned (Bans).
//
// Min-p and locally typical sampling are the MinP and TypicalP processors.
//
// # Contrastive
//
// Combine(expert, amateur) overwrites expert with the scores; greedy
// decoding takes their Argmax, sampling samples from their softmax. With s_e
// and s_a the two rows of logits, tokens with
//
//	s_e[i] < max(s_e) + ln α      (p_exp[i] < α·max p_exp)
//
// get -Inf (the adaptive plausibility constraint; at least the expert's top
// token always stays, as min_tokens_to_keep = 1 in the references), and the
// others score
//
//	ContrastiveLogits:   (1+β)·s_e[i] − β·s_a[i]                 (O'Brien & Lewis, Algorithm 1)
//	ContrastiveLogProbs: log_softmax(s_e)[i] − log_softmax(s_a)[i] (Li et al.)
//
// The two agree up to a constant shift and scale when the amateur runs at
// temperature τ = (1+β)/β: (1+β)·s_e − β·s_a = (1+β)·(s_e − s_a/τ). An
// amateur temperature, as Li et al. tune one, is applied by the caller to the
// amateur row first (Temperature{T: τ}). O'Brien & Lewis use α = 0.1 and
// β = 0.5 for reasoning; Distillation Contrastive Decoding's README example
// uses α = 0.1 and β = 0.8.
//
// The cut-off compares logits, p_i < α·p_max being logit_i < max + ln α; it
// is tested in float64 as MinP does, where the references compare float32
// tensors (O'Brien & Lewis on logits, Li et al. and DoLa on log-softmax
// values), which can differ for a token within a float32 rounding of the
// threshold. ContrastiveLogits computes in float32 as the references'
// tensors do: float32(1+β)·s_e − float32(β)·s_a, each product rounded;
// ContrastiveLogProbs computes in float64 and rounds the result.
//
// Logits processors (repetition penalty, temperature, top-k, ...) run on the
// expert row before Combine in Distillation Contrastive Decoding's reference
// code (its cut-off uses the processed scores), and on the contrastive scores
// after the combination in transformers' DoLa; the caller chooses.
type Contrastive struct {
	// Alpha is the plausibility cut-off α in [0, 1]: tokens whose expert
	// probability is below α times the expert's largest probability get
	// -Inf. 0 keeps every token the expert does not rule out; 1 keeps only
	// the expert's top token (and its ties). 0.1 in all three papers.
	Alpha float64
	// Beta is β >= 0, the amateur's weight in ContrastiveLogits; 0 leaves
	// the expert's logits unchanged on the plausible tokens. Ignored by
	// ContrastiveLogProbs.
	Beta float64
	// Form picks the formula; the zero value is ContrastiveLogits.
	Form ContrastiveForm
}

// ContrastiveForm selects how Contrastive combines the expert's and the
// amateur's rows.
type ContrastiveForm int

const (
	// ContrastiveLogits is O'Brien & Lewis's (1+β)·s_exp − β·s_ama on raw
	// logits, which Distillation Contrastive Decoding uses too.
	ContrastiveLogits ContrastiveForm = iota
	// ContrastiveLogProbs is Li et al.'s log p_exp − log p_ama, the
	// log-softmax of each row (Beta is ignored).
	ContrastiveLogProbs
)

// String names the form.
func (f ContrastiveForm) String() string {
	switch f {
	case ContrastiveLogits:
		return "logits"
	case ContrastiveLogProbs:
		return "logprobs"
	}
	return fmt.Sprintf("ContrastiveForm(%d)", int(f))
}

// String names the strategy and its parameters.
func (c Contrastive) String() string {
	if c.Form == ContrastiveLogProbs {
		return fmt.Sprintf("Contrastive(alpha=%g, logprobs)", c.Alpha)
	}
	return fmt.Sprintf("Contrastive(alpha=%g, beta=%g)", c.Alpha, c.Beta)
}

// Combine writes the contrastive scores of one row into expert (see
// Contrastive). The rows must have the same length and no NaN or +Inf
// (ContrastiveLogits does not read the amateur at tokens the cut-off
// removes); an expert row of -Inf only is left as it is. Tokens the expert
// rules out (-Inf) stay -Inf. The amateur must be finite on every token that
// passes the cut-off (except for ContrastiveLogits with β = 0, which ignores
// it), since the score would be +Inf or NaN there. A bad row is an error, and
// expert is then left unchanged.
func (c Contrastive) Combine(expert, amateur []float32) error {
	if len(expert) != len(amateur) {
		return fmt.Errorf("decoding: contrastive rows differ in length: expert %d, amateur %d", len(expert), len(amateur))
	}
	if c.Form != ContrastiveLogits && c.Form != ContrastiveLogProbs {
		return fmt.Errorf("decoding: unknown contrastive form %d", int(c.Form))
	}
	if !(c.Beta >= 0) || math.IsInf(c.Beta, 1) {
		return fmt.Errorf("decoding: contrastive beta must be a finite number >= 0, got %v", c.Beta)
	}
	re := scanRow(expert, nil)
	if re.bad >= 0 {
		return fmt.Errorf("decoding: expert logit %d is %v", re.bad, expert[re.bad])
	}
	if re.n == 0 {
		return nil
	}
	cut := plausibilityCutoff(re.m, c.Alpha)
	var ra rowScan
	if c.Form == ContrastiveLogProbs {
		// The amateur's log-softmax normalises over its whole row.
		if ra = scanRow(amateur, nil); ra.bad >= 0 {
			return fmt.Errorf("decoding: amateur logit %d is %v", ra.bad, amateur[ra.bad])
		}
	}
	useAmateur := c.Form == ContrastiveLogProbs || c.Beta != 0
	if useAmateur {
		for i, x := range expert {
			if x >= cut && x != negInf && !isFinite32(amateur[i]) {
				return fmt.Errorf("decoding: amateur logit %d is %v on a token the expert keeps", i, amateur[i])
			}
		}
	}
	switch {
	case !useAmateur:
		for i, x := range expert {
			if x < cut {
				expert[i] = negInf
			}
		}
	case c.Form == ContrastiveLogits:
		we, wa := float32(1+c.Beta), float32(c.Beta)
		for i, x := range expert {
			if x < cut || x == negInf {
				expert[i] = negInf
				continue
			}
			expert[i] = float32(we*x) - float32(wa*amateur[i])
		}
	default:
		lse, lsa := logSumExp(expert, re.m), logSumExp(amateur, ra.m)
		for i, x := range expert {
			if x < cut || x == negInf {
				expert[i] = negInf
				continue
			}
			expert[i] = float32((float64(x) - lse) - (float64(amateur[i]) - lsa))
		}
	}
	return nil
}

// plausibilityCutoff returns the threshold t of the adaptive plausibility
// constraint for a row whose largest logit is m: a logit x stays exactly when
// x >= t, i.e. when float64(x) >= m + ln alpha, capped at m so that the top
// token always stays (the references' min(sorted[min_tokens_to_keep-1],
// max + log α)). alpha <= 0 (or NaN) keeps every logit above -Inf.
func plausibilityCutoff(m float32, alpha float64) float32 {
	if !(alpha > 0) {
		return negInf
	}
	if alpha >= 1 {
		return m
	}
	lim := float64(m) + math.Log(alpha)
	t := float32(lim)
	if float64(t) < lim {
		t = math.Nextafter32(t, float32(math.Inf(1)))
	}
	return t
}

// logSumExp returns ln Σ exp(row[i]) for a row whose largest value is m
// (finite), in float64; -Inf entries add nothing.
func logSumExp(row []float32, m float32) float64 {
	z := 0.0
	for _, x := range row {
		z += expNeg(float64(x) - float64(m))
	}
	return float64(m) + math.Log(z)
}

func isFinite32(x float32) bool { return x-x == 0 }

// DCDAnswerTrigger is the phrase Distillation Contrastive Decoding's
// demonstrations put before the answer (the reference's
// direct_answer_trigger_for_fewshot).
const DCDAnswerTrigger = "The answer is"

// CoTDemo is one few-shot chain-of-thought demonstration for DCDPrompts: a
// question with a valid explanation and answer, for the expert's prompt, and
// an invalid explanation and answer, for the amateur's (Chia et al. 2023's
// contrastive chain of thought, as Distillation Contrastive Decoding uses it).
type CoTDemo struct {
	Question         string
	Explanation      string
	Answer           string
	WrongExplanation string
	WrongAnswer      string
}

// DCDPrompts builds the two prompts of Distillation Contrastive Decoding
// (Phan et al. 2024, "Distillation Contrastive Decoding: Improving LLMs
// Reasoning with Contrastive Decoding and Distillation"): the expert reads the
// valid demonstrations, the amateur the invalid ones, both followed by the
// same question. Every demonstration is
//
//	"Q: " + Question + "\nA: " + Explanation + " " + trigger + " " + Answer + ".\n\n"
//
// (WrongExplanation and WrongAnswer in the amateur's prompt), and the
// question is appended as "Q: " + question + "\nA:", as the reference code
// (github.com/pphuc25/distil-cd, dcd_eval/src/data/prompt.py create_prompt and
// create_prompt_student, and its README) formats them; trigger "" means
// DCDAnswerTrigger.
//
// The rest of DCD is Contrastive with Form ContrastiveLogits (the
// reference's α = 0.1 and β = 0.8 in its README example) where the amateur
// row comes from the same model run on the amateur prompt in training mode
// with attention dropout (0.2 in the README example; the reference sets the
// model's attention_dropout and calls train()) and/or quantized weights, and
// each generated token is appended to both prompts.
func DCDPrompts(demos []CoTDemo, question, trigger string) (expert, amateur string) {
	if trigger == "" {
		trigger = DCDAnswerTrigger
	}
	var e, a strings.Builder
	for _, d := range demos {
		e.WriteString("Q: " + d.Question + "\nA: " + d.Explanation + " " + trigger + " " + d.Answer + ".\n\n")
		a.WriteString("Q: " + d.Question + "\nA: " + d.WrongExplanation + " " + trigger + " " + d.WrongAnswer + ".\n\n")
	}
	q := "Q: " + question + "\nA:"
	e.WriteString(q)
	a.WriteString(q)
	return e.String(), a.String()
}
