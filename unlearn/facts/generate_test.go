package facts

import (
	"fmt"
	"math"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"
)

func mustDefault(t *testing.T) []Example {
	t.Helper()
	ex, err := Default()
	if err != nil {
		t.Fatal(err)
	}
	return ex
}

// TestDefaultCounts pins the number of entities and examples of each
// split and kind of the default benchmark.
func TestDefaultCounts(t *testing.T) {
	ex := mustDefault(t)
	type key struct{ split, kind string }
	rows := make(map[key]int)
	entities := make(map[key]map[string]bool)
	facts := make(map[string]int)
	for _, e := range ex {
		k := key{e.Split, e.Kind}
		rows[k]++
		if entities[k] == nil {
			entities[k] = make(map[string]bool)
		}
		entities[k][e.Entity] = true
		facts[e.Fact]++
	}
	tests := []struct {
		split, kind    string
		entities, rows int
	}{
		{SplitForget, KindCountry, 24, 72},
		{SplitForget, KindElement, 12, 36},
		{SplitHoldout, KindCountry, 24, 71},
		{SplitHoldout, KindElement, 12, 34},
		{SplitRetain, KindCountry, 193, 567},
		{SplitRetain, KindElement, 94, 280},
	}
	total := 0
	for _, tt := range tests {
		k := key{tt.split, tt.kind}
		if len(entities[k]) != tt.entities || rows[k] != tt.rows {
			t.Errorf("%s %s: %d entities, %d examples; want %d, %d", tt.split, tt.kind, len(entities[k]), rows[k], tt.entities, tt.rows)
		}
		total += tt.rows
	}
	if len(ex) != total {
		t.Errorf("%d examples, want %d", len(ex), total)
	}
	wantFacts := map[string]int{FactCapital: 230, FactISO2: 240, FactISO3: 240, FactSymbol: 116, FactNumber: 118, FactName: 116}
	if !reflect.DeepEqual(facts, wantFacts) {
		t.Errorf("examples per fact %v, want %v", facts, wantFacts)
	}
}

// TestSampleRows pins a few examples of the default benchmark.
func TestSampleRows(t *testing.T) {
	ex := mustDefault(t)
	want := []Example{
		{
			Question:          "What is the capital of France?",
			Answer:            "Paris",
			ParaphrasedAnswer: "The capital of France is Paris.",
			PerturbedAnswers:  []string{"The capital of France is Djibouti.", "The capital of France is Havana.", "The capital of France is Mogadishu."},
			WrongAnswers:      []string{"Djibouti", "Havana", "Mogadishu"},
			Entity:            "France", Kind: KindCountry, Fact: FactCapital, Split: SplitRetain,
		},
		{
			Question:          "What is the two-letter ISO code of Honduras?",
			Answer:            "HN",
			ParaphrasedAnswer: "The two-letter ISO code of Honduras is HN.",
			PerturbedAnswers:  []string{"The two-letter ISO code of Honduras is GH.", "The two-letter ISO code of Honduras is BN.", "The two-letter ISO code of Honduras is AD."},
			WrongAnswers:      []string{"GH", "BN", "AD"},
			Entity:            "Honduras", Kind: KindCountry, Fact: FactISO2, Split: SplitForget,
		},
		{
			Question:          "What is the atomic number of Iron?",
			Answer:            "26",
			ParaphrasedAnswer: "The atomic number of Iron is 26.",
			PerturbedAnswers:  []string{"The atomic number of Iron is 80.", "The atomic number of Iron is 55.", "The atomic number of Iron is 36."},
			WrongAnswers:      []string{"80", "55", "36"},
			Entity:            "Iron", Kind: KindElement, Fact: FactNumber, Split: SplitRetain,
		},
		{
			Question:          "Which element has the symbol Fe?",
			Answer:            "Iron",
			ParaphrasedAnswer: "The element with the symbol Fe is Iron.",
			PerturbedAnswers:  []string{"The element with the symbol Fe is Astatine.", "The element with the symbol Fe is Holmium.", "The element with the symbol Fe is Francium."},
			WrongAnswers:      []string{"Astatine", "Holmium", "Francium"},
			Entity:            "Iron", Kind: KindElement, Fact: FactName, Split: SplitRetain,
		},
	}
	for _, w := range want {
		var got *Example
		for i := range ex {
			if ex[i].Entity == w.Entity && ex[i].Fact == w.Fact {
				got = &ex[i]
			}
		}
		if got == nil {
			t.Errorf("no %s example for %s", w.Fact, w.Entity)
		} else if !reflect.DeepEqual(*got, w) {
			t.Errorf("%s of %s:\n got %#v\nwant %#v", w.Fact, w.Entity, *got, w)
		}
	}
}

// TestGenerateDeterministic checks that a seed gives the same examples
// every time, and that another seed changes the splits and the perturbed
// answers but not the questions.
func TestGenerateDeterministic(t *testing.T) {
	a := mustDefault(t)
	b := mustDefault(t)
	if !reflect.DeepEqual(a, b) {
		t.Fatal("two runs with the same options differ")
	}
	opts := DefaultOptions()
	opts.Seed = 2
	c, err := GenerateFS(Corpus(), opts)
	if err != nil {
		t.Fatal(err)
	}
	if len(c) != len(a) {
		t.Fatalf("seed 2: %d examples, seed 1: %d", len(c), len(a))
	}
	splits, perturbed := 0, 0
	for i := range a {
		if a[i].Question != c[i].Question || a[i].Answer != c[i].Answer || a[i].ParaphrasedAnswer != c[i].ParaphrasedAnswer {
			t.Fatalf("example %d: seed 1 asks %q → %q, seed 2 %q → %q", i, a[i].Question, a[i].Answer, c[i].Question, c[i].Answer)
		}
		if a[i].Split != c[i].Split {
			splits++
		}
		if !reflect.DeepEqual(a[i].WrongAnswers, c[i].WrongAnswers) {
			perturbed++
		}
	}
	if splits == 0 || perturbed < len(a)/2 {
		t.Errorf("seed 2 changes the split of %d and the perturbed answers of %d of %d examples", splits, perturbed, len(a))
	}
}

// TestSplits checks, for several options, that every entity is in exactly
// one split and that each kind's splits have the requested sizes.
func TestSplits(t *testing.T) {
	// Entities per kind: 241 countries (Channel Islands has no facts) and
	// 118 elements.
	n := map[string]int{KindCountry: 241, KindElement: 118}
	tests := []Options{
		DefaultOptions(),
		{Seed: 7, ForgetFraction: 0.2, HoldoutFraction: 0, Perturbed: 1},
		{Seed: 3, ForgetFraction: 0.05, HoldoutFraction: 0.3, Perturbed: 0},
		{Seed: math.MaxUint64, ForgetFraction: 0.5, HoldoutFraction: 0.45, Perturbed: 5},
	}
	for _, opts := range tests {
		t.Run(fmt.Sprintf("%+v", opts), func(t *testing.T) {
			ex, err := GenerateFS(Corpus(), opts)
			if err != nil {
				t.Fatal(err)
			}
			splitOf := make(map[string]string)
			count := make(map[string]int)
			for _, e := range ex {
				id := e.Kind + "/" + e.Entity
				if s, ok := splitOf[id]; ok && s != e.Split {
					t.Fatalf("%s is in %s and %s", id, s, e.Split)
				}
				if _, ok := splitOf[id]; !ok {
					count[e.Kind+"/"+e.Split]++
				}
				splitOf[id] = e.Split
				if len(e.PerturbedAnswers) != opts.Perturbed {
					t.Fatalf("%s %s: %d perturbed answers, want %d", id, e.Fact, len(e.PerturbedAnswers), opts.Perturbed)
				}
			}
			for kind, total := range n {
				forget := int(math.Round(opts.ForgetFraction * float64(total)))
				holdout := int(math.Round(opts.HoldoutFraction * float64(total)))
				want := map[string]int{SplitForget: forget, SplitHoldout: holdout, SplitRetain: total - forget - holdout}
				for split, w := range want {
					if got := count[kind+"/"+split]; got != w {
						t.Errorf("%s %s: %d entities, want %d", kind, split, got, w)
					}
				}
			}
		})
	}
}

// TestSplitFunc checks Split against the Split fields.
func TestSplitFunc(t *testing.T) {
	ex := mustDefault(t)
	tests := []struct {
		split string
		want  int
	}{{SplitForget, 108}, {SplitRetain, 847}, {SplitHoldout, 105}, {"train", 0}}
	for _, tt := range tests {
		got := Split(ex, tt.split)
		if len(got) != tt.want {
			t.Errorf("Split(%q): %d examples, want %d", tt.split, len(got), tt.want)
		}
		for _, e := range got {
			if e.Split != tt.split {
				t.Errorf("Split(%q) returned an example of %q", tt.split, e.Split)
			}
		}
	}
}

// TestPerturbedAnswers checks every example of the default benchmark: the
// perturbed answers are distinct, differ from the answer (also as Correct
// sees it), come from the same fact of other entities, and are the
// paraphrase's sentence with the wrong answer in place of the answer.
func TestPerturbedAnswers(t *testing.T) {
	ex := mustDefault(t)
	answers := make(map[string]map[string]bool) // kind/fact → answers
	for _, e := range ex {
		k := e.Kind + "/" + e.Fact
		if answers[k] == nil {
			answers[k] = make(map[string]bool)
		}
		answers[k][e.Answer] = true
	}
	for _, e := range ex {
		if len(e.PerturbedAnswers) != 3 || len(e.WrongAnswers) != 3 {
			t.Fatalf("%q: %d perturbed and %d wrong answers, want 3", e.Question, len(e.PerturbedAnswers), len(e.WrongAnswers))
		}
		if !strings.HasSuffix(e.ParaphrasedAnswer, " "+e.Answer+".") {
			t.Errorf("%q: paraphrase %q does not end with the answer %q", e.Question, e.ParaphrasedAnswer, e.Answer)
		}
		stem := strings.TrimSuffix(e.ParaphrasedAnswer, e.Answer+".")
		seen := make(map[string]bool)
		for i, w := range e.WrongAnswers {
			switch {
			case seen[w]:
				t.Errorf("%q: wrong answer %q repeats", e.Question, w)
			case w == e.Answer || Correct(w, e.Answer) || Correct(e.Answer, w):
				t.Errorf("%q: wrong answer %q matches the answer %q", e.Question, w, e.Answer)
			case !answers[e.Kind+"/"+e.Fact][w]:
				t.Errorf("%q: wrong answer %q is no %s's %s", e.Question, w, e.Kind, e.Fact)
			case e.PerturbedAnswers[i] != stem+w+".":
				t.Errorf("%q: perturbed answer %q, want %q", e.Question, e.PerturbedAnswers[i], stem+w+".")
			}
			seen[w] = true
			// Codes, symbols and numbers always find three of the same length.
			if e.Fact != FactCapital && e.Fact != FactName && utf8.RuneCountInString(w) != utf8.RuneCountInString(e.Answer) {
				t.Errorf("%q: wrong answer %q is not as long as %q", e.Question, w, e.Answer)
			}
		}
	}
}

// TestOptionsValidate checks that unusable options are refused.
func TestOptionsValidate(t *testing.T) {
	tests := []struct {
		name string
		opts Options
		want string // "" for valid options
	}{
		{"default", DefaultOptions(), ""},
		{"no holdout", Options{ForgetFraction: 0.1}, ""},
		{"no forget", Options{HoldoutFraction: 0.1}, "forget fraction 0 is not in (0, 1)"},
		{"NaN", Options{ForgetFraction: math.NaN()}, "forget fraction NaN is not in (0, 1)"},
		{"negative holdout", Options{ForgetFraction: 0.1, HoldoutFraction: -0.1}, "holdout fraction -0.1 is not in [0, 1)"},
		{"nothing retained", Options{ForgetFraction: 0.5, HoldoutFraction: 0.5}, "leave nothing to retain"},
		{"negative perturbed", Options{ForgetFraction: 0.1, Perturbed: -1}, "perturbed answers -1 is negative"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.opts.Validate()
			if tt.want == "" {
				if err != nil {
					t.Errorf("Validate: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Validate: %v, want an error containing %q", err, tt.want)
			}
			if _, err := GenerateFS(Corpus(), tt.opts); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("GenerateFS: %v, want an error containing %q", err, tt.want)
			}
		})
	}
}

// TestGenerateErrors checks options that Validate accepts but the corpus
// cannot satisfy.
func TestGenerateErrors(t *testing.T) {
	tests := []struct {
		name string
		opts Options
		want string
	}{
		{"too few entities", Options{ForgetFraction: 0.001}, "facts: forget fraction 0.001 of 241 country entities selects none"},
		{"none retained", Options{ForgetFraction: 0.5, HoldoutFraction: 0.499}, "of 241 country entities leave none to retain"},
		{"too many perturbed", Options{ForgetFraction: 0.1, Perturbed: 240}, `perturbed answers of country "Afghanistan", fact capital: want 240, only 228 other answers exist`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := GenerateFS(Corpus(), tt.opts)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %v, want one containing %q", err, tt.want)
			}
		})
	}
}
