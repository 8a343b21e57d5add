package decoding

import (
	"fmt"
	"slices"
	"strings"
	"testing"
)

// slopVocab is a toy vocabulary in which "tapestry" can be spelt several
// ways across token boundaries.
var slopVocab = []string{
	0:  "a",
	1:  " tap",
	2:  "estry",
	3:  " tapestry",
	4:  " of",
	5:  " Tap",
	6:  "est",
	7:  "ry",
	8:  " the",
	9:  ",",
	10: " a",
	11: " \u212Aey", // KELVIN SIGN (3 bytes), whose lowercase is k (1 byte)
	12: " cat",
	13: "ion",
}

func slopDecode(ids []int) string {
	var b strings.Builder
	for _, id := range ids {
		b.WriteString(slopVocab[id])
	}
	return b.String()
}

func mustAntislop(t *testing.T, phrases []string, opts AntislopOptions) *Antislop {
	t.Helper()
	a, err := NewAntislop(phrases, slopDecode, opts)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func TestAntislopCheck(t *testing.T) {
	fold := AntislopOptions{FoldCase: true}
	words := AntislopOptions{FoldCase: true, WholeWords: true}
	for _, tc := range []struct {
		name    string
		phrases []string
		opts    AntislopOptions
		ids     []int
		since   int // -1: Check
		want    *SlopHit
	}{
		{"not yet", []string{"tapestry"}, fold, []int{0, 1}, -1, nil},
		// "a tap|estry": the phrase starts in token 1 (" tap", bytes 1-4) and
		// is completed by token 2.
		{"across tokens", []string{"tapestry"}, fold, []int{0, 1, 2}, -1,
			&SlopHit{Phrase: "tapestry", Text: "tapestry", Pos: 1, Token: 1}},
		{"one token", []string{"tapestry"}, fold, []int{0, 3}, -1,
			&SlopHit{Phrase: "tapestry", Text: "tapestry", Pos: 1, Token: 3}},
		{"later position", []string{"tapestry"}, fold, []int{0, 4, 10, 1, 2}, -1,
			&SlopHit{Phrase: "tapestry", Text: "tapestry", Pos: 3, Token: 1}},
		{"three tokens, case folded", []string{"tapestry"}, fold, []int{0, 5, 6, 7}, -1,
			&SlopHit{Phrase: "tapestry", Text: "Tapestry", Pos: 1, Token: 5}},
		{"case kept", []string{"tapestry"}, AntislopOptions{}, []int{0, 5, 6, 7}, -1, nil},
		{"phrase case folded too", []string{"TAPESTRY"}, fold, []int{0, 1, 2}, -1,
			&SlopHit{Phrase: "TAPESTRY", Text: "tapestry", Pos: 1, Token: 1}},
		// The occurrence ended before the last token: reported by an earlier
		// check, not again; a full scan finds it.
		{"old occurrence", []string{"tapestry"}, fold, []int{0, 1, 2, 4}, -1, nil},
		{"full scan", []string{"tapestry"}, fold, []int{0, 1, 2, 4}, 0,
			&SlopHit{Phrase: "tapestry", Text: "tapestry", Pos: 1, Token: 1}},
		// Two phrases completed by the same token: the earliest start wins.
		{"earliest", []string{"estry", "tapestry"}, fold, []int{0, 1, 2}, -1,
			&SlopHit{Phrase: "tapestry", Text: "tapestry", Pos: 1, Token: 1}},
		// Same start: the longest wins.
		{"longest", []string{"ta", "tapestry", "tapes"}, fold, []int{0, 1, 2}, 0,
			&SlopHit{Phrase: "tapestry", Text: "tapestry", Pos: 1, Token: 1}},
		// A multi-word phrase starting inside the first token.
		{"phrase over three tokens", []string{"a tapestry of"}, fold, []int{0, 3, 4}, -1,
			&SlopHit{Phrase: "a tapestry of", Text: "a tapestry of", Pos: 0, Token: 0}},
		// Whole words: the end of the text is a boundary, as in the reference,
		// so "tap" hits as soon as " tap" is generated...
		{"whole word at the end", []string{"tap"}, words, []int{0, 1}, -1,
			&SlopHit{Phrase: "tap", Text: "tap", Pos: 1, Token: 1}},
		// ...but not inside "tapestry", nor "estry" after "tap".
		{"inside a word", []string{"tap", "estry"}, words, []int{0, 1, 2}, 0, nil},
		{"followed by a space", []string{"tap"}, words, []int{0, 1, 4}, 0,
			&SlopHit{Phrase: "tap", Text: "tap", Pos: 1, Token: 1}},
		{"cat is not in cation", []string{"cat"}, words, []int{0, 12, 13}, 0, nil},
		{"without WholeWords it is", []string{"cat"}, fold, []int{0, 12, 13}, 0,
			&SlopHit{Phrase: "cat", Text: "cat", Pos: 1, Token: 12}},
		// A phrase ending in a non-word character needs no boundary there.
		{"punctuation end", []string{"the,"}, words, []int{8, 9, 0}, 0,
			&SlopHit{Phrase: "the,", Text: "the,", Pos: 0, Token: 8}},
		// The Kelvin sign is 3 bytes and folds to a 1-byte k: offsets map
		// back to the original text.
		{"folding changes byte lengths", []string{"key"}, fold, []int{0, 11}, -1,
			&SlopHit{Phrase: "key", Text: "\u212Aey", Pos: 1, Token: 11}},
		// Window 1: the new token and one before it, " tap" + "estry".
		{"window", []string{"tapestry"}, AntislopOptions{Window: 1}, []int{0, 4, 10, 1, 2}, -1,
			&SlopHit{Phrase: "tapestry", Text: "tapestry", Pos: 3, Token: 1}},
		{"window too short", []string{"a tapestry"}, AntislopOptions{Window: 1}, []int{0, 4, 10, 1, 2}, -1, nil},
		{"window long enough", []string{"a tapestry"}, AntislopOptions{Window: 2}, []int{0, 4, 10, 1, 2}, -1,
			&SlopHit{Phrase: "a tapestry", Text: "a tapestry", Pos: 2, Token: 10}},
		{"empty", []string{"tapestry"}, fold, nil, -1, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := mustAntislop(t, tc.phrases, tc.opts)
			var hit SlopHit
			var ok bool
			if tc.since < 0 {
				hit, ok = a.Check(tc.ids)
			} else {
				hit, ok = a.CheckSince(tc.ids, tc.since)
			}
			switch {
			case tc.want == nil && ok:
				t.Errorf("unexpected hit %+v in %q", hit, slopDecode(tc.ids))
			case tc.want != nil && !ok:
				t.Errorf("no hit in %q, want %+v", slopDecode(tc.ids), *tc.want)
			case tc.want != nil && hit != *tc.want:
				t.Errorf("got %+v, want %+v", hit, *tc.want)
			}
		})
	}
}

// scriptedModel returns the next-token logits of a toy model that wants to
// write "a tapestry of the," and knows three ways to spell "tapestry".
func scriptedModel(ids []int) []float32 {
	row := make([]float32, len(slopVocab))
	prefer := func(weights map[int]float32) {
		for id, w := range weights {
			row[id] = w
		}
	}
	if len(ids) == 0 {
		prefer(map[int]float32{0: 5})
		return row
	}
	switch ids[len(ids)-1] {
	case 0: // "a"
		prefer(map[int]float32{1: 5, 3: 4, 5: 3, 4: 2})
	case 1: // " tap"
		prefer(map[int]float32{2: 5})
	case 5: // " Tap"
		prefer(map[int]float32{6: 5})
	case 6: // "est"
		prefer(map[int]float32{7: 5})
	case 2, 3, 7: // the end of "tapestry"
		prefer(map[int]float32{4: 5})
	case 4: // " of"
		prefer(map[int]float32{8: 5})
	default:
		prefer(map[int]float32{9: 5})
	}
	return row
}

// TestAntislopBacktracking runs greedy decoding of scriptedModel with the
// Antislop sampler: every spelling of "tapestry" is caught when it completes,
// the generation goes back to position 1, and the first token of each
// spelling is banned there in turn, until the model writes "a of the,".
func TestAntislopBacktracking(t *testing.T) {
	a := mustAntislop(t, []string{"tapestry"}, AntislopOptions{FoldCase: true, WholeWords: true})
	var bans Bans
	var ids []int
	var events []string
	for steps := 0; len(ids) < 4; steps++ {
		if steps > 50 {
			t.Fatalf("no progress: %v", ids)
		}
		row := scriptedModel(ids)
		bans.Process(row, nil, len(ids))
		ids = append(ids, Argmax(row))
		kept, hit, found := a.Backtrack(ids, &bans)
		if found {
			events = append(events, fmt.Sprintf("%q@%d ban %q", hit.Text, hit.Pos, slopVocab[hit.Token]))
			ids = kept
		}
	}
	if got := slopDecode(ids); got != "a of the," {
		t.Errorf("generated %q, want %q", got, "a of the,")
	}
	wantEvents := []string{`"tapestry"@1 ban " tap"`, `"tapestry"@1 ban " tapestry"`, `"Tapestry"@1 ban " Tap"`}
	if !slices.Equal(events, wantEvents) {
		t.Errorf("events %q, want %q", events, wantEvents)
	}
	if want := (Bans{1: {1, 3, 5}}); fmt.Sprint(bans) != fmt.Sprint(want) {
		t.Errorf("bans %v, want %v", bans, want)
	}
	// The banned first tokens cannot come back at position 1.
	row := scriptedModel([]int{0})
	bans.Apply(row, 1)
	if k := kept(row); slices.Contains(k, 1) || slices.Contains(k, 3) || slices.Contains(k, 5) {
		t.Errorf("banned tokens still allowed: %v", row)
	}
	if Argmax(row) != 4 {
		t.Errorf("position 1 resamples %q, want \" of\"", slopVocab[Argmax(row)])
	}
}

func TestBans(t *testing.T) {
	var b Bans
	if !b.Add(3, 7) || b.Add(3, 7) || !b.Add(3, 8) || !b.Add(5, 1) || !b.Add(9, 2) {
		t.Fatalf("Add: %v", b)
	}
	if !b.Has(3, 8) || b.Has(3, 1) || b.Has(4, 7) {
		t.Errorf("Has: %v", b)
	}
	row := []float32{0, 1, 2, 3, 4, 5, 6, 7, 8}
	b.Apply(row, 3)
	if !slices.Equal(row, []float32{0, 1, 2, 3, 4, 5, 6, inf, inf}) {
		t.Errorf("Apply: %v", row)
	}
	b.Apply(row, 4) // nothing banned at 4
	b.Forget(5)
	if fmt.Sprint(b) != fmt.Sprint(Bans{3: {7, 8}, 5: {1}}) {
		t.Errorf("Forget(5): %v", b)
	}
	// Bans that would mask every token leave the row alone.
	row = []float32{inf, 2, inf}
	Bans{0: {1}}.Apply(row, 0)
	if !slices.Equal(row, []float32{inf, 2, inf}) {
		t.Errorf("last token masked: %v", row)
	}
	var _ Processor = Bans{}
}

// TestAntislopSuppression: when the ban cannot remove the phrase's first
// token (nothing else is possible), the phrase is accepted.
func TestAntislopSuppression(t *testing.T) {
	a := mustAntislop(t, []string{"tapestry"}, AntislopOptions{})
	bans := Bans{1: {3}}
	ids := []int{0, 3}
	kept, hit, found := a.Backtrack(ids, &bans)
	if found || !slices.Equal(kept, ids) || hit.Pos != 1 {
		t.Errorf("got %v, %+v, %v; want the ids back and found false", kept, hit, found)
	}
	// Backtracking forgets the bans after the hit.
	bans = Bans{1: {1}, 2: {9}, 7: {4}}
	kept, _, found = a.Backtrack([]int{0, 1, 0, 3}, &bans)
	if !found || !slices.Equal(kept, []int{0, 1, 0}) || fmt.Sprint(bans) != fmt.Sprint(Bans{1: {1}, 3: {3}, 2: {9}}) {
		t.Errorf("got %v, found %v, bans %v", kept, found, bans)
	}
}

func TestNewAntislopErrors(t *testing.T) {
	if _, err := NewAntislop([]string{"x"}, nil, AntislopOptions{}); err == nil {
		t.Error("nil decode accepted")
	}
	if _, err := NewAntislop([]string{"x", ""}, slopDecode, AntislopOptions{}); err == nil || !strings.Contains(err.Error(), "phrase 1") {
		t.Errorf("empty phrase: %v", err)
	}
	if _, err := NewAntislop([]string{"x"}, slopDecode, AntislopOptions{Window: -1}); err == nil {
		t.Error("negative window accepted")
	}
	a := mustAntislop(t, []string{"b", "a", "A"}, AntislopOptions{FoldCase: true})
	if got := a.Phrases(); !slices.Equal(got, []string{"b", "a", "A"}) {
		t.Errorf("Phrases() = %q", got)
	}
	// "a" and "A" fold to the same key: the first is reported.
	if hit, ok := a.Check([]int{0}); !ok || hit.Phrase != "a" {
		t.Errorf("duplicate: %+v, %v", hit, ok)
	}
}

// TestPhraseMatcher is the textbook Aho-Corasick example: every occurrence,
// overlapping ones included, is reported once.
func TestPhraseMatcher(t *testing.T) {
	phrases := []string{"he", "she", "his", "hers"}
	m := newPhraseMatcher(phrases)
	var got []string
	m.scan("ushers and this", func(end, k int) {
		got = append(got, fmt.Sprintf("%s@%d", phrases[k], end-m.lens[k]))
	})
	slices.Sort(got)
	want := []string{"he@2", "hers@2", "his@12", "she@1"}
	if !slices.Equal(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
}
