package tokenizer

import (
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"unicode/utf8"

	"github.com/dlclark/regexp2"
)

// splitterAlphabet mixes every character class the scanners distinguish:
// ASCII and other letters, digits of several kinds (Nd, Nl, No), the
// Unicode spaces, newlines, apostrophes and contraction letters in both
// cases, punctuation, symbols, combining marks and emoji.
var splitterAlphabet = []string{
	"a", "b", "Z", "é", "ß", "日", "本", "ا", "ה", "ก", "ि",
	"s", "t", "re", "ve", "m", "ll", "d", "S", "T", "RE", "VE", "M", "LL", "D", "Re", "lL",
	"0", "1", "9", "٣", "²", "½", "Ⅻ",
	" ", " ", " ", "  ", "\t", "\n", "\r", "\r\n", "\u00a0", "\u3000", "\u2028", "\u2009", "\u000b", "\u0085",
	"'", "'", "\"", ".", ",", "!", "?", "-", "(", ")", "$", "%", "+", "#", "_", "—", "€",
	"\u0301", "\u200d", "\u200b", "🤗", "👩‍👩‍👧", "\x00",
}

func randomSplitterText(r *rand.Rand) string {
	var sb strings.Builder
	n := r.IntN(24)
	for i := 0; i < n; i++ {
		sb.WriteString(splitterAlphabet[r.IntN(len(splitterAlphabet))])
	}
	return sb.String()
}

func TestFastSplittersMatchRegex(t *testing.T) {
	for _, tc := range []struct {
		name, pattern string
	}{
		{"gpt2", gpt2Pattern},
		{"llama3", llama3Pattern},
		{"qwen2", qwen2Pattern},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fast := fastSplitter(tc.pattern)
			if fast == nil {
				t.Fatal("no fast splitter for the pattern")
			}
			re := regexp2.MustCompile(tc.pattern, regexp2.None)
			r := rand.New(rand.NewPCG(1, 2))
			fixed := []string{"", " ", "  ", "a", "'s", "'S", "'", "''s", " 's", "  x", "x  ", "\n\n x", " \n ", "12345", " 123", "a,b", " !!\n\n", "\r\n\r\n  \n  x"}
			for i := 0; i < 20000+len(fixed); i++ {
				var s string
				if i < len(fixed) {
					s = fixed[i]
				} else {
					s = randomSplitterText(r)
				}
				want, err := regexFindAll(re, s, nil)
				if err != nil {
					t.Fatal(err)
				}
				got := fast(s, nil)
				if !slices.Equal(got, want) {
					t.Fatalf("%q:\n got %v\nwant %v", s, pieceStrings(s, got), pieceStrings(s, want))
				}
			}
		})
	}
}

// TestContractionFolding checks the case folding Oniguruma applies to the
// (?i:...) contractions of Llama 3 and Qwen, which regexp2 does not: "ſ"
// (U+017F) folds to "s".
func TestContractionFolding(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []string
	}{
		{"it'S", []string{"it", "'S"}},
		{"it'ſ", []string{"it", "'ſ"}},
		{"WE'LL", []string{"WE", "'LL"}},
		{"we'Ve", []string{"we", "'Ve"}},
		{"x'q", []string{"x", "'q"}},
	} {
		got := pieceStrings(tc.in, splitLlama3(tc.in, nil, 3))
		if strings.Join(got, "|") != strings.Join(tc.want, "|") {
			t.Errorf("%q: got %q, want %q", tc.in, got, tc.want)
		}
	}
	// GPT-2's contractions are case-sensitive.
	if got := pieceStrings("IT'S", splitGPT2("IT'S", nil)); strings.Join(got, "|") != "IT|'|S" {
		t.Errorf("gpt2 IT'S: got %q", got)
	}
}

func FuzzFastSplitters(f *testing.F) {
	for _, s := range []string{"Hello, world!", "  leading\ttabs\r\n", "I'LL 123456 ½ Ⅻ", "日本語 🤗 x'ſ"} {
		f.Add(s)
	}
	res := map[string]*regexp2.Regexp{}
	for _, p := range []string{gpt2Pattern, llama3Pattern, qwen2Pattern} {
		res[p] = regexp2.MustCompile(p, regexp2.None)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if strings.ContainsRune(s, 'ſ') || !isValidUTF8(s) {
			t.Skip("regexp2 does not fold ſ; invalid UTF-8 has no regex meaning")
		}
		for p, re := range res {
			want, err := regexFindAll(re, s, nil)
			if err != nil {
				t.Fatal(err)
			}
			if got := fastSplitter(p)(s, nil); !slices.Equal(got, want) {
				t.Fatalf("%q with %q:\n got %q\nwant %q", s, p, pieceStrings(s, got), pieceStrings(s, want))
			}
		}
	})
}

func pieceStrings(s string, spans []span) []string {
	out := make([]string, len(spans))
	for i, sp := range spans {
		out[i] = s[sp.start:sp.end]
	}
	return out
}

func isValidUTF8(s string) bool { return utf8.ValidString(s) }
