package metrics

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// TestPorterStemNLTKTable compares PorterStem with NLTK 3.8's
// PorterStemmer() (NLTK_EXTENSIONS) on 2301 words: the license texts of
// Debian's /usr/share/common-licenses and words picked to reach every rule
// (testdata/gen_porter.py).
func TestPorterStemNLTKTable(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("testdata", "porter_nltk.json"))
	if err != nil {
		t.Fatal(err)
	}
	var f struct {
		NLTK  string            `json:"nltk"`
		Stems map[string]string `json:"stems"`
	}
	if err := json.Unmarshal(raw, &f); err != nil {
		t.Fatal(err)
	}
	bad := 0
	for w, want := range f.Stems {
		if got := PorterStem(w); got != want {
			bad++
			t.Errorf("PorterStem(%q) = %q, NLTK %s %q", w, got, f.NLTK, want)
		}
	}
	t.Logf("%d words, %d differ from NLTK %s", len(f.Stems), bad, f.NLTK)
}

// TestPorterStem lists stems that follow from the paper's examples and
// NLTK's documented departures.
func TestPorterStem(t *testing.T) {
	for _, c := range []struct{ word, want string }{
		{"caresses", "caress"}, // 1a sses → ss
		{"ponies", "poni"},     // 1a ies → i
		{"ties", "tie"},        // NLTK: 4-letter -ies → -ie
		{"cats", "cat"},
		{"feed", "feed"},   // 1b (m>0) eed: m(f) = 0
		{"agreed", "agre"}, // 1b eed → ee, 5a removes e (m=1, not *o)
		{"plastered", "plaster"},
		{"motoring", "motor"},
		{"sing", "sing"},
		{"hopping", "hop"},  // *d → single letter
		{"falling", "fall"}, // *d but l: kept
		{"filing", "file"},  // m=1 and *o → e
		{"conflated", "conflat"},
		{"happy", "happi"}, // 1c
		{"enjoy", "enjoy"}, // NLTK: y after a vowel stays
		{"relational", "relat"},
		{"conditional", "condit"},
		{"generalization", "gener"},
		{"hopefulness", "hope"},
		{"electrical", "electr"},
		{"adjustment", "adjust"},
		{"adoption", "adopt"},
		{"controll", "control"}, // 5b
		{"dying", "die"},        // irregular forms
		{"skies", "sky"},
		{"news", "news"},
		{"died", "die"},  // NLTK: 4-letter -ied → -ie
		{"spied", "spi"}, // NLTK: -ied → -i
		{"geology", "geolog"},
		{"by", "by"}, // two letters: unchanged
		{"Running", "run"},
	} {
		if got := PorterStem(c.word); got != c.want {
			t.Errorf("PorterStem(%q) = %q, want %q", c.word, got, c.want)
		}
	}
}

func TestRougeTokens(t *testing.T) {
	for _, c := range []struct {
		text string
		want []string
	}{
		// Values from rouge_score's tokenizer with NLTK's stemmer.
		{"The quick brown fox jumps over the lazy dog", []string{"the", "quick", "brown", "fox", "jump", "over", "the", "lazi", "dog"}},
		{"Jaime Vasquez's novels explore true-crime themes.", []string{"jaim", "vasquez", "s", "novel", "explor", "true", "crime", "theme"}},
		// Non-ASCII letters separate tokens; İ lowercases to i + a dot.
		{"Café naïve İzmir, born in 1975!", []string{"caf", "na", "ve", "i", "zmir", "born", "in", "1975"}},
		{"  ", nil},
	} {
		if got := RougeTokens(c.text); !slices.Equal(got, c.want) {
			t.Errorf("RougeTokens(%q) = %q, want %q", c.text, got, c.want)
		}
	}
}

func TestRouge(t *testing.T) {
	const tol = 1e-15
	for _, c := range []struct {
		name, pred, ref string
		r1, rl          Rouge
	}{
		{
			// rouge_score's README example: reference 9 tokens (the quick
			// brown fox jump over the lazi dog), prediction 8 (the quick
			// brown dog jump on the log). Unigram matches: the×2, quick,
			// brown, dog, jump = 6; LCS "the quick brown jump the" = 5.
			name: "readme",
			pred: "The quick brown dog jumps on the log.",
			ref:  "The quick brown fox jumps over the lazy dog",
			r1:   Rouge{Precision: 6.0 / 8, Recall: 6.0 / 9, F1: 2 * (6.0 / 8) * (6.0 / 9) / (6.0/8 + 6.0/9)},
			rl:   Rouge{Precision: 5.0 / 8, Recall: 5.0 / 9, F1: 2 * (5.0 / 8) * (5.0 / 9) / (5.0/8 + 5.0/9)},
		},
		{
			// Stemming: running/runs → run match, quickly → quickli does
			// not match quick. Matches he, run; LCS he run.
			name: "stemmed",
			pred: "He was running quickly",
			ref:  "He runs quick",
			r1:   Rouge{Precision: 0.5, Recall: 2.0 / 3, F1: 4.0 / 7},
			rl:   Rouge{Precision: 0.5, Recall: 2.0 / 3, F1: 4.0 / 7},
		},
		{
			name: "case and punctuation",
			pred: "Hello, WORLD!!",
			ref:  "hello world",
			r1:   Rouge{1, 1, 1},
			rl:   Rouge{1, 1, 1},
		},
		{
			// Unigram counts are clipped: one "the" matches; the LCS is 1.
			name: "clipping",
			pred: "the the the",
			ref:  "the cat",
			r1:   Rouge{Precision: 1.0 / 3, Recall: 0.5, F1: 0.4},
			rl:   Rouge{Precision: 1.0 / 3, Recall: 0.5, F1: 0.4},
		},
		{
			// Order matters for ROUGE-L only: LCS of (b c a) and (a b c) is 2.
			name: "order",
			pred: "bee cat ant",
			ref:  "ant bee cat",
			r1:   Rouge{1, 1, 1},
			rl:   Rouge{Precision: 2.0 / 3, Recall: 2.0 / 3, F1: 2.0 / 3},
		},
		{name: "empty prediction", pred: "", ref: "some answer", r1: Rouge{}, rl: Rouge{}},
		{name: "punctuation only", pred: "?!", ref: "", r1: Rouge{}, rl: Rouge{}},
	} {
		r1, rl := Rouge1(c.pred, c.ref), RougeL(c.pred, c.ref)
		for _, x := range []struct {
			kind      string
			got, want Rouge
		}{{"ROUGE-1", r1, c.r1}, {"ROUGE-L", rl, c.rl}} {
			if math.Abs(x.got.Precision-x.want.Precision) > tol || math.Abs(x.got.Recall-x.want.Recall) > tol || math.Abs(x.got.F1-x.want.F1) > tol {
				t.Errorf("%s %s = %+v, want %+v", c.name, x.kind, x.got, x.want)
			}
		}
	}
}
