package main

import (
	"strings"
	"testing"
)

// TestGenerateStrategiesCLI: `lethe generate --strategy` prints the same
// {"ids": [...]} line as greedy for self-speculative decoding (several
// exit layers) and for DCD with dropout 0 and β = 0; other strategies
// print a line of the same form; an unknown strategy is an error that
// lists them.
func TestGenerateStrategiesCLI(t *testing.T) {
	base := []string{"generate", "--model", "../../models/testdata/hf/llama", "--prompt-ids", "1,5,9,20,3", "--max-new-tokens", "10", "--backend", "go:ops_sequential"}
	greedy, err := runCLI(t, "", base...)
	if err != nil {
		t.Fatal(err)
	}
	for _, extra := range [][]string{
		{"--strategy", "speculative", "--exit-layer", "1", "--draft", "3"},
		{"--strategy", "speculative", "--exit-layer", "2"},
		{"--strategy", "dcd", "--dropout", "0", "--beta", "0"},
		{"--strategy", "greedy"},
	} {
		out, err := runCLI(t, "", append(append([]string{}, base...), extra...)...)
		if err != nil {
			t.Fatalf("%v: %v", extra, err)
		}
		if out != greedy {
			t.Errorf("%v: %s, greedy %s", extra, out, greedy)
		}
	}
	for _, s := range []string{"contrastive", "dola", "mc-dropout", "dropout-decoding", "sample"} {
		out, err := runCLI(t, "", append(append([]string{}, base...), "--strategy", s, "--seed", "3")...)
		if err != nil {
			t.Fatalf("%s: %v", s, err)
		}
		if !strings.HasPrefix(out, `{"ids":[1,5,9,20,3,`) || strings.Count(out, ",") != 14 {
			t.Errorf("%s: %q", s, out)
		}
	}
	if _, err := runCLI(t, "", append(append([]string{}, base...), "--strategy", "beam")...); err == nil || !strings.Contains(err.Error(), "speculative") {
		t.Errorf("unknown strategy: %v", err)
	}
}
