package metrics

import "strings"

// Rouge is one ROUGE score of a prediction against a reference.
type Rouge struct {
	// Precision is matches / prediction length.
	Precision float64
	// Recall is matches / reference length; TOFU's "ROUGE" is the recall
	// of ROUGE-L (open-unlearning's rougeL_recall), MUSE's VerbMem and
	// KnowMem use the ROUGE-L F1 and recall.
	Recall float64
	// F1 is 2·P·R/(P+R), 0 when P+R = 0.
	F1 float64
}

// RougeTokens tokenises text as rouge_score's tokenize.tokenize does with
// a Porter stemmer (RougeScorer(..., use_stemmer=True)), the scorer
// open-unlearning's eval_text_similarity (src/evals/metrics/utils.py)
// builds: lowercase the text (Python's str.lower), replace every run of
// characters outside [a-z0-9] by a space, split on spaces, stem tokens of
// more than 3 characters with [PorterStem], and drop empty tokens.
func RougeTokens(text string) []string {
	// Python lowercases U+0130 (İ) to "i" plus a combining dot, which the
	// tokenizer then turns into a separator; Go's ToLower drops the dot.
	lower := strings.ToLower(strings.ReplaceAll(text, "\u0130", "i\u0307"))
	var toks []string
	start := -1
	for i := 0; i <= len(lower); i++ {
		alnum := i < len(lower) && (lower[i] >= 'a' && lower[i] <= 'z' || lower[i] >= '0' && lower[i] <= '9')
		switch {
		case alnum && start < 0:
			start = i
		case !alnum && start >= 0:
			tok := lower[start:i]
			if len(tok) > 3 {
				tok = PorterStem(tok)
			}
			if tok != "" {
				toks = append(toks, tok)
			}
			start = -1
		}
	}
	return toks
}

// Rouge1 is ROUGE-1 (Lin 2004, "ROUGE: A Package for Automatic Evaluation
// of Summaries") as rouge_score computes it: with unigram counts c_p of
// the prediction and c_r of the reference (tokens from [RougeTokens]),
// matches = Σ_t min(c_p(t), c_r(t)), precision = matches/max(|p|, 1),
// recall = matches/max(|r|, 1). open-unlearning reports its recall as
// rouge1_recall.
func Rouge1(prediction, reference string) Rouge {
	p, r := RougeTokens(prediction), RougeTokens(reference)
	counts := make(map[string]int, len(r))
	for _, t := range r {
		counts[t]++
	}
	matches := 0
	for _, t := range p {
		if counts[t] > 0 {
			counts[t]--
			matches++
		}
	}
	return rougeScore(matches, len(p), len(r), 1)
}

// RougeL is ROUGE-L (Lin 2004) as rouge_score computes it: with the
// length L of the longest common subsequence of the prediction's and the
// reference's tokens ([RougeTokens]), precision = L/|p| and recall =
// L/|r|; all three are 0 when either text has no token. open-unlearning
// reports its recall (rougeL_recall, TOFU's ROUGE) and F1 (rougeL_f1).
// Note the order: rouge_score's score(target, prediction) takes the
// reference first.
func RougeL(prediction, reference string) Rouge {
	p, r := RougeTokens(prediction), RougeTokens(reference)
	if len(p) == 0 || len(r) == 0 {
		return Rouge{}
	}
	return rougeScore(lcsLength(r, p), len(p), len(r), 0)
}

// rougeScore builds a score from matches; minLen is the floor of the
// lengths in the divisions (rouge_score divides ROUGE-N by max(len, 1)).
func rougeScore(matches, predLen, refLen, minLen int) Rouge {
	s := Rouge{
		Precision: float64(matches) / float64(max(predLen, minLen)),
		Recall:    float64(matches) / float64(max(refLen, minLen)),
	}
	if s.Precision+s.Recall > 0 {
		s.F1 = 2 * s.Precision * s.Recall / (s.Precision + s.Recall)
	}
	return s
}

// lcsLength is the length of the longest common subsequence of a and b,
// by dynamic programming over two rows.
func lcsLength(a, b []string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for i := 1; i <= len(a); i++ {
		for j := 1; j <= len(b); j++ {
			if a[i-1] == b[j-1] {
				cur[j] = prev[j-1] + 1
			} else {
				cur[j] = max(prev[j], cur[j-1])
			}
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
