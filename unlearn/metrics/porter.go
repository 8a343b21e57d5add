package metrics

import "strings"

// PorterStem stems one word as nltk.stem.porter.PorterStemmer() does in
// its default mode, NLTK_EXTENSIONS, which is the stemmer rouge_score
// uses with use_stemmer=True.
//
// The algorithm is Porter's (1980), "An algorithm for suffix stripping",
// Program 14(3): 130–137, steps 1a, 1b, 1c, 2, 3, 4, 5a and 5b, with the
// departures NLTK's mode makes:
//
//   - a table of irregular forms (sky/skies → sky, dying → die, lying →
//     lie, tying → tie, news → news, innings → inning, outings → outing,
//     cannings → canning, howe, proceed, exceed, succeed);
//   - words of one or two letters are returned as they are;
//   - 1a: a four-letter word ending in -ies becomes -ie (dies → die);
//   - 1b: -ied becomes -ie in a four-letter word and -i otherwise;
//   - 1c: y → i only after a consonant that is not the first letter
//     (happy → happi, enjoy → enjoy);
//   - 2: -alli → -al is tried first and step 2 repeated; -bli → -ble
//     instead of -abli → -able; extra rules -fulli → -ful and -logi → -log
//     (with the measure taken over the stem plus "l");
//   - the *o condition also holds for a two-letter vowel–consonant stem.
//
// The word is lowercased first (NLTK's to_lowercase=True); letters are
// compared byte by byte, so the word should be ASCII, as rouge_score's
// tokens are.
func PorterStem(word string) string {
	stem := strings.ToLower(word)
	if irr, ok := porterIrregular[word]; ok {
		return irr
	}
	if len(word) <= 2 {
		return stem
	}
	stem = porterStep1a(stem)
	stem = porterStep1b(stem)
	stem = porterStep1c(stem)
	stem = porterStep2(stem)
	stem = porterStep3(stem)
	stem = porterStep4(stem)
	stem = porterStep5a(stem)
	stem = porterStep5b(stem)
	return stem
}

// porterIrregular is NLTK's pool of irregular forms, keyed by the word as
// given (NLTK looks up the word before lowercasing it).
var porterIrregular = map[string]string{
	"sky": "sky", "skies": "sky",
	"dying": "die", "lying": "lie", "tying": "tie",
	"news":    "news",
	"innings": "inning", "inning": "inning",
	"outings": "outing", "outing": "outing",
	"cannings": "canning", "canning": "canning",
	"howe":    "howe",
	"proceed": "proceed", "exceed": "exceed", "succeed": "succeed",
}

// porterConsonant reports whether w[i] is a consonant: a letter other
// than a, e, i, o, u, and other than a y preceded by a consonant.
func porterConsonant(w string, i int) bool {
	switch w[i] {
	case 'a', 'e', 'i', 'o', 'u':
		return false
	case 'y':
		if i == 0 {
			return true
		}
		return !porterConsonant(w, i-1)
	}
	return true
}

// porterMeasure is m in [C](VC)^m[V]: the number of vowel-to-consonant
// transitions.
func porterMeasure(w string) int {
	m := 0
	prevVowel := false
	for i := range len(w) {
		c := porterConsonant(w, i)
		if c && prevVowel {
			m++
		}
		prevVowel = !c
	}
	return m
}

func porterContainsVowel(w string) bool {
	for i := range len(w) {
		if !porterConsonant(w, i) {
			return true
		}
	}
	return false
}

// porterEndsDouble is *d: w ends with a double consonant.
func porterEndsDouble(w string) bool {
	n := len(w)
	return n >= 2 && w[n-1] == w[n-2] && porterConsonant(w, n-1)
}

// porterEndsCVC is *o: w ends consonant–vowel–consonant and the last
// consonant is not w, x or y; NLTK also accepts a two-letter
// vowel–consonant word.
func porterEndsCVC(w string) bool {
	n := len(w)
	if n >= 3 && porterConsonant(w, n-3) && !porterConsonant(w, n-2) && porterConsonant(w, n-1) {
		switch w[n-1] {
		case 'w', 'x', 'y':
		default:
			return true
		}
	}
	return n == 2 && !porterConsonant(w, 0) && porterConsonant(w, 1)
}

// porterRule replaces suffix by repl when the stem before the suffix
// satisfies cond (nil: always).
type porterRule struct {
	suffix, repl string
	cond         func(stem string) bool
}

// porterApply applies the first rule whose suffix w ends with; if its
// condition fails, w is returned unchanged and no later rule is tried.
func porterApply(w string, rules []porterRule) string {
	for _, r := range rules {
		if strings.HasSuffix(w, r.suffix) {
			stem := w[:len(w)-len(r.suffix)]
			if r.cond == nil || r.cond(stem) {
				return stem + r.repl
			}
			return w
		}
	}
	return w
}

func porterMGT0(stem string) bool { return porterMeasure(stem) > 0 }
func porterMGT1(stem string) bool { return porterMeasure(stem) > 1 }

func porterStep1a(w string) string {
	if strings.HasSuffix(w, "ies") && len(w) == 4 {
		return w[:len(w)-3] + "ie"
	}
	return porterApply(w, []porterRule{
		{"sses", "ss", nil},
		{"ies", "i", nil},
		{"ss", "ss", nil},
		{"s", "", nil},
	})
}

func porterStep1b(w string) string {
	if strings.HasSuffix(w, "ied") {
		if len(w) == 4 {
			return w[:len(w)-3] + "ie"
		}
		return w[:len(w)-3] + "i"
	}
	if strings.HasSuffix(w, "eed") {
		stem := w[:len(w)-3]
		if porterMeasure(stem) > 0 {
			return stem + "ee"
		}
		return w
	}
	var stem string
	ok := false
	for _, suf := range []string{"ed", "ing"} {
		if strings.HasSuffix(w, suf) {
			stem = w[:len(w)-len(suf)]
			if porterContainsVowel(stem) {
				ok = true
				break
			}
		}
	}
	if !ok {
		return w
	}
	switch {
	case strings.HasSuffix(stem, "at"):
		return stem + "e"
	case strings.HasSuffix(stem, "bl"):
		return stem + "e"
	case strings.HasSuffix(stem, "iz"):
		return stem + "e"
	case porterEndsDouble(stem):
		switch stem[len(stem)-1] {
		case 'l', 's', 'z':
			return stem
		}
		return stem[:len(stem)-1]
	case porterMeasure(stem) == 1 && porterEndsCVC(stem):
		return stem + "e"
	}
	return stem
}

func porterStep1c(w string) string {
	if strings.HasSuffix(w, "y") {
		stem := w[:len(w)-1]
		if len(stem) > 1 && porterConsonant(stem, len(stem)-1) {
			return stem + "i"
		}
	}
	return w
}

var porterStep2Rules = []porterRule{
	{"ational", "ate", porterMGT0},
	{"tional", "tion", porterMGT0},
	{"enci", "ence", porterMGT0},
	{"anci", "ance", porterMGT0},
	{"izer", "ize", porterMGT0},
	{"bli", "ble", porterMGT0},
	{"alli", "al", porterMGT0},
	{"entli", "ent", porterMGT0},
	{"eli", "e", porterMGT0},
	{"ousli", "ous", porterMGT0},
	{"ization", "ize", porterMGT0},
	{"ation", "ate", porterMGT0},
	{"ator", "ate", porterMGT0},
	{"alism", "al", porterMGT0},
	{"iveness", "ive", porterMGT0},
	{"fulness", "ful", porterMGT0},
	{"ousness", "ous", porterMGT0},
	{"aliti", "al", porterMGT0},
	{"iviti", "ive", porterMGT0},
	{"biliti", "ble", porterMGT0},
	{"fulli", "ful", porterMGT0},
	// "logi" → "log" with the measure of the stem plus its "l", so that
	// short stems such as geo-logi work like archaeo-logi.
	{"logi", "log", func(stem string) bool { return porterMeasure(stem+"l") > 0 }},
}

func porterStep2(w string) string {
	if strings.HasSuffix(w, "alli") && porterMGT0(w[:len(w)-4]) {
		return porterStep2(w[:len(w)-4] + "al")
	}
	return porterApply(w, porterStep2Rules)
}

var porterStep3Rules = []porterRule{
	{"icate", "ic", porterMGT0},
	{"ative", "", porterMGT0},
	{"alize", "al", porterMGT0},
	{"iciti", "ic", porterMGT0},
	{"ical", "ic", porterMGT0},
	{"ful", "", porterMGT0},
	{"ness", "", porterMGT0},
}

func porterStep3(w string) string { return porterApply(w, porterStep3Rules) }

var porterStep4Rules = []porterRule{
	{"al", "", porterMGT1},
	{"ance", "", porterMGT1},
	{"ence", "", porterMGT1},
	{"er", "", porterMGT1},
	{"ic", "", porterMGT1},
	{"able", "", porterMGT1},
	{"ible", "", porterMGT1},
	{"ant", "", porterMGT1},
	{"ement", "", porterMGT1},
	{"ment", "", porterMGT1},
	{"ent", "", porterMGT1},
	{"ion", "", func(stem string) bool {
		return porterMeasure(stem) > 1 && (strings.HasSuffix(stem, "s") || strings.HasSuffix(stem, "t"))
	}},
	{"ou", "", porterMGT1},
	{"ism", "", porterMGT1},
	{"ate", "", porterMGT1},
	{"iti", "", porterMGT1},
	{"ous", "", porterMGT1},
	{"ive", "", porterMGT1},
	{"ize", "", porterMGT1},
}

func porterStep4(w string) string { return porterApply(w, porterStep4Rules) }

// porterStep5a removes a final e if m > 1, or if m = 1 and the stem does
// not end *o; unlike the other steps both conditions are tried.
func porterStep5a(w string) string {
	if strings.HasSuffix(w, "e") {
		stem := w[:len(w)-1]
		m := porterMeasure(stem)
		if m > 1 || (m == 1 && !porterEndsCVC(stem)) {
			return stem
		}
	}
	return w
}

// porterStep5b turns a final -ll into -l when the measure of the word
// without its last letter is above 1.
func porterStep5b(w string) string {
	if strings.HasSuffix(w, "ll") && porterMeasure(w[:len(w)-1]) > 1 {
		return w[:len(w)-1]
	}
	return w
}
