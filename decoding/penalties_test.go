package decoding

import (
	"slices"
	"testing"
)

func TestFrequencyPresencePenalty(t *testing.T) {
	for _, tc := range []struct {
		name    string
		p       FrequencyPresencePenalty
		logits  []float32
		history []int
		step    int
		want    []float32
	}{
		{
			// History = prompt [0 0 4] + generated [1 1 2]: the prompt's tokens
			// are not penalised. Token 1 occurs twice: 2 - 2·0.5 - 0.25 = 0.75;
			// token 2 once: 3 - 0.5 - 0.25 = 2.25.
			name:    "generated only",
			p:       FrequencyPresencePenalty{Frequency: 0.5, Presence: 0.25},
			logits:  []float32{1, 2, 3, -1, 4},
			history: []int{0, 0, 4, 1, 1, 2},
			step:    3,
			want:    []float32{1, 0.75, 2.25, -1, 4},
		},
		{
			// Frequency alone scales with the count: 4 - 3·1 = 1.
			name:    "frequency",
			p:       FrequencyPresencePenalty{Frequency: 1},
			logits:  []float32{4, 4},
			history: []int{0, 0, 0},
			step:    3,
			want:    []float32{1, 4},
		},
		{
			// Presence alone ignores the count.
			name:    "presence",
			p:       FrequencyPresencePenalty{Presence: 2},
			logits:  []float32{4, 4, 4},
			history: []int{2, 0, 0, 0},
			step:    4,
			want:    []float32{2, 4, 2},
		},
		{
			// Negative penalties encourage repeats: -1 + 2·0.5 + 1 = 1.
			name:    "negative",
			p:       FrequencyPresencePenalty{Frequency: -0.5, Presence: -1},
			logits:  []float32{-1, 0},
			history: []int{0, 0},
			step:    2,
			want:    []float32{1, 0},
		},
		{
			// step 0: nothing generated yet, nothing penalised.
			name:    "prompt only",
			p:       FrequencyPresencePenalty{Frequency: 1, Presence: 1},
			logits:  []float32{1, 2},
			history: []int{0, 1},
			step:    0,
			want:    []float32{1, 2},
		},
		{
			// Masked tokens stay masked; ids outside the row are ignored.
			name:    "masked and out of range",
			p:       FrequencyPresencePenalty{Frequency: 1, Presence: 1},
			logits:  []float32{inf, 2},
			history: []int{0, 7, -1, 1},
			step:    4,
			want:    []float32{inf, 0},
		},
		{
			// float32 arithmetic as in vLLM: float32(0.1)·3 rounded, then
			// subtracted.
			name:    "float32",
			p:       FrequencyPresencePenalty{Frequency: 0.1, Presence: 0.3},
			logits:  []float32{1},
			history: []int{0, 0, 0},
			step:    3,
			want: func() []float32 {
				f, p, x := float32(0.1), float32(0.3), float32(1)
				x -= float32(f * 3)
				x -= p
				return []float32{x}
			}(),
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			row := slices.Clone(tc.logits)
			tc.p.Process(row, tc.history, tc.step)
			if !slices.Equal(row, tc.want) {
				t.Errorf("got %v, want %v", row, tc.want)
			}
		})
	}
	if got := (FrequencyPresencePenalty{Frequency: 0.5, Presence: -1}).String(); got != "FrequencyPresencePenalty(frequency=0.5, presence=-1)" {
		t.Errorf("String() = %q", got)
	}
	var _ Processor = FrequencyPresencePenalty{}
}
