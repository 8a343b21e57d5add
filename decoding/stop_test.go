package decoding

import (
	"slices"
	"strings"
	"testing"
)

func TestStopper(t *testing.T) {
	cfg := Defaults()
	cfg.EOSTokenIDs = []int{2, 3}
	cfg.StopTokenIDs = []int{9}
	s, err := NewStopper(cfg, []int{4, 4, 4, 2})
	if err != nil {
		t.Fatal(err)
	}
	if s.PadID() != 2 {
		t.Fatalf("pad %d, want the first EOS id 2", s.PadID())
	}
	steps := []struct {
		in, out []int
		done    bool
	}{
		{[]int{5, 3, 6, 7}, []int{5, 3, 6, 7}, false}, // seq 1 emits EOS 3 and keeps it
		{[]int{5, 8, 9, 7}, []int{5, 2, 9, 7}, false}, // seq 1 padded; seq 2 stop id; seq 3 hits its budget of 2
		{[]int{5, 8, 8, 8}, []int{5, 2, 2, 2}, false},
		{[]int{6, 8, 8, 8}, []int{6, 2, 2, 2}, true}, // seq 0 reaches 4 new tokens
	}
	for i, st := range steps {
		tokens := slices.Clone(st.in)
		done, err := s.Update(tokens)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(tokens, st.out) || done != st.done {
			t.Errorf("step %d: tokens %v done %v, want %v %v", i, tokens, done, st.out, st.done)
		}
	}
	wantReasons := []StopReason{StoppedLength, StoppedEOS, StoppedToken, StoppedLength}
	wantLengths := []int{4, 1, 2, 2}
	for i := range 4 {
		if s.Reason(i) != wantReasons[i] || s.Length(i) != wantLengths[i] || !s.Finished(i) {
			t.Errorf("seq %d: %v after %d tokens, want %v after %d", i, s.Reason(i), s.Length(i), wantReasons[i], wantLengths[i])
		}
	}
	if !s.Done() {
		t.Error("not done")
	}
}

func TestStopperPad(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  GenerationConfig
		pad  int
	}{
		{"explicit pad", GenerationConfig{PadTokenID: ptr(0), EOSTokenIDs: []int{5}}, 0},
		{"first eos", GenerationConfig{EOSTokenIDs: []int{5, 6}}, 5},
		{"first stop id", GenerationConfig{StopTokenIDs: []int{8}}, 8},
		{"none", GenerationConfig{}, -1},
	} {
		s, err := NewStopper(tc.cfg, []int{1})
		if err != nil || s.PadID() != tc.pad {
			t.Errorf("%s: pad %d, %v; want %d", tc.name, s.PadID(), err, tc.pad)
		}
	}
	if _, err := NewStopper(Defaults(), []int{3, 0}); err == nil || !strings.Contains(err.Error(), "sequence 1") {
		t.Errorf("zero budget: %v", err)
	}
	s, _ := NewStopper(Defaults(), []int{3, 3})
	if _, err := s.Update([]int{1}); err == nil {
		t.Error("short token slice accepted")
	}
}
