package mc

import (
	"context"
	"errors"

	"github.com/lethe-ml/lethe/data"
	"github.com/lethe-ml/lethe/decoding"
	"github.com/lethe-ml/lethe/models"
)

// Answered is an example's answer and its uncertainty.
type Answered struct {
	// Prompt and Gold are the example's halves; Answer is the model's
	// greedy answer (Gold itself when the gold completion is scored).
	Prompt, Gold, Answer []int
	// Scores are the answer's MC-dropout uncertainty.
	Scores Sequence
}

// SplitSample cuts a tokenized example into its prompt (the tokens before
// the first label) and its completion (the labelled tokens).
func SplitSample(s data.Sample) (prompt, completion []int) {
	for i, id := range s.IDs {
		if s.Labels[i] == data.IgnoreIndex && completion == nil {
			prompt = append(prompt, int(id))
			continue
		}
		if s.Labels[i] != data.IgnoreIndex {
			completion = append(completion, int(id))
		}
	}
	return prompt, completion
}

// Answer answers prompt greedily with gen (cfg: the decoding settings,
// greedy with its stop ids and length limit) and scores the answer with
// K dropout passes; with gen nil it scores gold instead.
func (s *Scorer) Answer(ctx context.Context, gen *models.Generator, cfg decoding.GenerationConfig, prompt, gold []int) (Answered, error) {
	a := Answered{Prompt: prompt, Gold: gold, Answer: gold}
	if gen != nil {
		g, err := gen.Generate(ctx, [][]int{prompt}, models.GenerateOptions{Config: cfg})
		if err != nil {
			return a, err
		}
		a.Answer = g.Tokens[0]
	}
	if len(a.Answer) == 0 {
		return a, errors.New("mc: empty answer")
	}
	var err error
	a.Scores, err = s.Score(ctx, prompt, a.Answer)
	return a, err
}
