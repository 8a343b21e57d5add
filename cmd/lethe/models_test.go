package main

import (
	"encoding/json"
	"fmt"
	"math"
	"strings"
	"testing"

	"github.com/lethe-ml/lethe/models/safetensors"
)

const fixtureDir = "../../models/testdata/hf/"

// fixtureInts reads an int64 tensor of a fixture's expected.safetensors.
func fixtureInts(t *testing.T, arch, name string) []int64 {
	t.Helper()
	f, err := safetensors.Open(fixtureDir + arch + "/expected.safetensors")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	v, err := f.Int64(name)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func joinIDs(xs []int64) string {
	s := make([]string, len(xs))
	for i, x := range xs {
		s[i] = fmt.Sprint(x)
	}
	return strings.Join(s, ",")
}

func TestGenerateCLIMatchesTransformers(t *testing.T) {
	for _, arch := range []string{"llama", "qwen3", "gpt2"} {
		prompt := fixtureInts(t, arch, "prompt_ids")
		want := fixtureInts(t, arch, "greedy_ids")
		out, err := runCLI(t, "", "generate", "--model", fixtureDir+arch, "--backend", "go:ops_sequential",
			"--prompt-ids", joinIDs(prompt), "--max-new-tokens", "10", "--min-new-tokens", "10")
		if err != nil {
			t.Fatalf("%s: %v", arch, err)
		}
		var got struct{ IDs []int64 }
		if err := json.Unmarshal([]byte(out), &got); err != nil {
			t.Fatalf("%s: %v in %q", arch, err, out)
		}
		if joinIDs(got.IDs) != joinIDs(want) {
			t.Errorf("%s: %v, want %v", arch, got.IDs, want)
		}
	}
}

func TestScoreCLI(t *testing.T) {
	ids := fixtureInts(t, "llama", "input_ids")
	out, err := runCLI(t, "", "score", "--model", fixtureDir+"llama", "--backend", "go:ops_sequential", "--ids", joinIDs(ids[:12]))
	if err != nil {
		t.Fatal(err)
	}
	var sc struct {
		Loss     float64
		Tokens   int
		LogProbs []float64
	}
	if err := json.Unmarshal([]byte(out), &sc); err != nil {
		t.Fatal(err)
	}
	sum := 0.0
	for _, lp := range sc.LogProbs {
		sum -= lp
	}
	if sc.Tokens != 11 || len(sc.LogProbs) != 11 || math.Abs(sum/11-sc.Loss) > 1e-9 {
		t.Errorf("score %+v", sc)
	}
	for _, bad := range [][]string{
		{"score", "--model", fixtureDir + "llama", "--backend", "go", "--ids", "1,x"},
		{"score", "--model", fixtureDir + "llama", "--backend", "go", "--ids", "1,99999"},
		{"score", "--model", fixtureDir + "llama", "--backend", "go", "--ids", "1", "--text", "a"},
		{"generate", "--model", fixtureDir + "nope", "--backend", "go", "--prompt-ids", "1"},
		{"generate", "--model", fixtureDir + "llama", "--backend", "tpu9", "--prompt-ids", "1"},
	} {
		if _, err := runCLI(t, "", bad...); err == nil {
			t.Errorf("%v: no error", bad)
		}
	}
}

func TestInspectCLI(t *testing.T) {
	out, err := runCLI(t, "", "inspect", "--json", fixtureDir+"mixtral")
	if err != nil {
		t.Fatal(err)
	}
	var r struct {
		ModelType  string `json:"model_type"`
		Parameters int64
		DTypes     map[string]int64
	}
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatal(err)
	}
	// 320·64·2 embeddings/head + 64 final norm + per layer 2·64 norms,
	// q,o 64·64, k,v 32·64, gate 4·64, 4 experts × 3 × 160·64.
	perLayer := int64(2*64 + 2*64*64 + 2*32*64 + 4*64 + 4*3*160*64)
	want := int64(2*320*64+64) + 2*perLayer
	if r.ModelType != "mixtral" || r.Parameters != want || r.DTypes["F32"] != want {
		t.Errorf("inspect: %+v, want %d parameters", r, want)
	}
}

func TestBenchCLI(t *testing.T) {
	out, err := runCLI(t, "", "bench", "--config", "tiny", "--backend", "go", "--batch", "2", "--prompt-len", "8",
		"--new-tokens", "4", "--repeats", "1", "--no-cache", "--json")
	if err != nil {
		t.Fatal(err)
	}
	var r struct {
		Model     string  `json:"model"`
		Batch     int     `json:"batch"`
		Prefill   float64 `json:"prefill_tokens_per_s"`
		Decode    float64 `json:"decode_tokens_per_s"`
		Generate  float64 `json:"generate_tokens_per_s"`
		NoCache   float64 `json:"decode_no_cache_tokens_per_s"`
		NewTokens int     `json:"new_tokens"`
	}
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("%v in %q", err, out)
	}
	if r.Model != "tiny" || r.Batch != 2 || r.NewTokens != 4 || !(r.Prefill > 0 && r.Decode > 0 && r.Generate > 0 && r.NoCache > 0) {
		t.Errorf("bench: %+v", r)
	}
}
