package facts

import (
	"bufio"
	"bytes"
	"embed"
	"fmt"
	"io"
	"io/fs"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Names of the corpus files that Generate reads.
const (
	CountriesFile = "countries.txt"
	ElementsFile  = "elements.dict.txt"
)

//go:embed corpus/countries.txt corpus/elements.dict.txt
var embedded embed.FS

// Corpus returns the corpus files shipped with the package (copies of
// Debian's miscfiles countries list and dict-elements dictionary, both in
// the public domain), as a file system holding CountriesFile and
// ElementsFile at its root.
func Corpus() fs.FS {
	sub, err := fs.Sub(embedded, "corpus")
	if err != nil {
		panic(err) // "corpus" is a valid path, so Sub cannot fail.
	}
	return sub
}

// A Country is one row of countries.txt.
type Country struct {
	// UNCode is the UN M.49 numeric code, three digits ("250").
	UNCode string
	// ISO2 and ISO3 are the ISO 3166-1 alpha-2 and alpha-3 codes ("FR",
	// "FRA"); both are empty for the few rows without codes.
	ISO2, ISO3 string
	// Name is the country's name as written in the file ("France").
	Name string
	// Capital is the first capital the file lists, without the notes in
	// parentheses that follow it: "Porto-Novo (official capital), Cotonou
	// (seat of government)" gives "Porto-Novo". A field without
	// parentheses is kept whole ("Washington, DC"). Empty when the file
	// lists none.
	Capital string
	// CapitalField is the capital field exactly as written.
	CapitalField string
	// Line is the row's line number in the file, from 1.
	Line int
}

// ParseCountries parses a countries file in the miscfiles format: one
// country a line as "UN code:ISO2:ISO3:name:capital", blank lines and lines
// starting with '#' ignored. name is the file name that errors cite, with
// the line number.
func ParseCountries(r io.Reader, name string) ([]Country, error) {
	var out []Country
	seen := make(map[string]int)
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSuffix(sc.Text(), "\r")
		if strings.TrimSpace(line) == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if !utf8.ValidString(line) {
			return nil, fmt.Errorf("%s:%d: not valid UTF-8", name, n)
		}
		f := strings.SplitN(line, ":", 5)
		if len(f) != 5 {
			return nil, fmt.Errorf("%s:%d: want 5 colon-separated fields (UN code:ISO2:ISO3:name:capital), got %d", name, n, len(f))
		}
		for i := range f {
			f[i] = strings.TrimSpace(f[i])
		}
		c := Country{UNCode: f[0], ISO2: f[1], ISO3: f[2], Name: f[3], CapitalField: f[4], Capital: firstCapital(f[4]), Line: n}
		switch {
		case !isDigits(c.UNCode):
			return nil, fmt.Errorf("%s:%d: UN code %q is not a number", name, n, c.UNCode)
		case c.ISO2 != "" && !isUpper(c.ISO2, 2):
			return nil, fmt.Errorf("%s:%d: ISO2 code %q is not two capital letters", name, n, c.ISO2)
		case c.ISO3 != "" && !isUpper(c.ISO3, 3):
			return nil, fmt.Errorf("%s:%d: ISO3 code %q is not three capital letters", name, n, c.ISO3)
		case c.Name == "":
			return nil, fmt.Errorf("%s:%d: empty country name", name, n)
		}
		if prev, ok := seen[c.Name]; ok {
			return nil, fmt.Errorf("%s:%d: country %q already listed on line %d", name, n, c.Name, prev)
		}
		seen[c.Name] = n
		out = append(out, c)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return out, nil
}

// firstCapital returns the capital field up to the first note in
// parentheses.
func firstCapital(field string) string {
	if i := strings.IndexByte(field, '('); i >= 0 {
		field = field[:i]
	}
	return strings.TrimSpace(field)
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}

func isUpper(s string, n int) bool {
	if len(s) != n {
		return false
	}
	for _, r := range s {
		if r < 'A' || r > 'Z' {
			return false
		}
	}
	return true
}

// An Element is one chemical element of the elements dictionary.
type Element struct {
	// Name is the dictionary's headword with its first letter in upper
	// case ("Iron"); the dictionary uses British spellings in places
	// ("Sulphur", "Caesium") and the temporary IUPAC names of elements 104
	// to 108 and 112 to 118 ("Unnilquadium", "Ununoctium").
	Name string
	// Symbol is the chemical symbol ("Fe"); empty for the two elements the
	// dictionary gives none (106 and 107).
	Symbol string
	// Number is the atomic number.
	Number int
	// Weight is the atomic weight in daltons, 0 when the dictionary gives
	// none ("???").
	Weight float64
	// WeightEstimated reports that the dictionary marks Weight as the mass
	// number of the most stable isotope, "(98)", or as uncertain, "(272)?".
	WeightEstimated bool
	// Description is the entry's text after its fields, lines joined by
	// single spaces.
	Description string
	// Line is the line number of the entry's headword, from 1.
	Line int
}

// ParseElements parses a chemical elements dictionary in dictd's source
// format, as Debian's dict-elements ships it. name is the file name that
// errors cite, with the line number.
//
// The format: entries are separated by blank lines; an entry's first line
// is its headword ("iron"); the lines right after it may be fields
// "Symbol: Fe", "Atomic number: 26" and "Atomic weight: 55.847" (keys are
// matched without regard to case, and the dictionary's misspelling "Atmic
// weight" is accepted); the rest is free text. Entries without an atomic
// number, such as the "00-database-*" headers, old names ("wolfram"),
// deuterium, or the neutron, are skipped. Weights may be written "(98)"
// or "(272)?" (see Element.WeightEstimated) or "???" (unknown).
//
// When an atomic number has more than one entry, the later entry wins: the
// dictionary lists element 110 first as "unnildecium" (Unn) and later, in
// text added from Wikipedia, as "darmstadtium" (Ds), its IUPAC name.
//
// The file is decoded as UTF-8 when valid and as ISO 8859-1 otherwise (the
// Debian file is ISO 8859-1). The elements are returned by atomic number;
// two elements with the same symbol or name are an error.
func ParseElements(r io.Reader, name string) ([]Element, error) {
	b, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	text := latin1(b)
	lines := strings.Split(text, "\n")
	byNumber := make(map[int]Element)
	maxNumber := 0
	for i := 0; i < len(lines); {
		if strings.TrimSpace(strings.TrimSuffix(lines[i], "\r")) == "" {
			i++
			continue
		}
		start := i
		for i < len(lines) && strings.TrimSpace(strings.TrimSuffix(lines[i], "\r")) != "" {
			i++
		}
		e, ok, err := parseEntry(lines[start:i], name, start+1)
		if err != nil {
			return nil, err
		}
		if ok {
			byNumber[e.Number] = e
			maxNumber = max(maxNumber, e.Number)
		}
	}
	out := make([]Element, 0, len(byNumber))
	for n := 1; n <= maxNumber; n++ {
		if e, ok := byNumber[n]; ok {
			out = append(out, e)
		}
	}
	symbols := make(map[string]Element)
	names := make(map[string]Element)
	for _, e := range out {
		if prev, ok := symbols[e.Symbol]; ok && e.Symbol != "" {
			return nil, fmt.Errorf("%s:%d: symbol %q of %s is also the symbol of %s (line %d)", name, e.Line, e.Symbol, e.Name, prev.Name, prev.Line)
		}
		if prev, ok := names[strings.ToLower(e.Name)]; ok {
			return nil, fmt.Errorf("%s:%d: element %s (number %d) is also element number %d (line %d)", name, e.Line, e.Name, e.Number, prev.Number, prev.Line)
		}
		symbols[e.Symbol] = e
		names[strings.ToLower(e.Name)] = e
	}
	return out, nil
}

// parseEntry parses the entry whose lines are lines, the first of them on
// line first of the file. ok is false for entries without an atomic number.
func parseEntry(lines []string, name string, first int) (e Element, ok bool, err error) {
	for i := range lines {
		lines[i] = strings.TrimRight(lines[i], "\r \t")
	}
	head := strings.TrimSpace(lines[0])
	e.Line = first
	var number, weight string
	var hasNumber, hasWeight bool
	body := 1
fields:
	for ; body < len(lines); body++ {
		key, value, found := strings.Cut(lines[body], ":")
		if !found {
			break
		}
		value = strings.TrimSpace(value)
		switch strings.ToLower(strings.TrimSpace(key)) {
		case "symbol":
			if value != "" && !isSymbol(value) {
				return e, false, fmt.Errorf("%s:%d: symbol %q of %q is not a capital letter followed by up to two small letters", name, first+body, value, head)
			}
			e.Symbol = value
		case "atomic number":
			number, hasNumber = value, true
		case "atomic weight", "atmic weight":
			weight, hasWeight = value, true
		case "weight":
			// The neutron's mass in kilograms; not an element's field.
		default:
			break fields
		}
	}
	if !hasNumber {
		return e, false, nil
	}
	if !isName(head) {
		return e, false, fmt.Errorf("%s:%d: headword %q is not an element name", name, first, head)
	}
	r, size := utf8.DecodeRuneInString(head)
	e.Name = strings.ToUpper(string(r)) + head[size:]
	n, err := strconv.Atoi(number)
	if err != nil || n < 1 {
		return e, false, fmt.Errorf("%s:%d: atomic number %q of %s is not a positive integer", name, first+fieldLine(lines, "atomic number"), number, e.Name)
	}
	e.Number = n
	if hasWeight {
		e.Weight, e.WeightEstimated, err = parseWeight(weight)
		if err != nil {
			return e, false, fmt.Errorf("%s:%d: atomic weight of %s: %w", name, first+fieldLine(lines, "weight"), e.Name, err)
		}
	}
	e.Description = strings.Join(strings.Fields(strings.Join(lines[body:], " ")), " ")
	return e, true, nil
}

// fieldLine returns the index of the first of lines whose key ends with
// suffix, for error messages.
func fieldLine(lines []string, suffix string) int {
	for i, l := range lines {
		if key, _, ok := strings.Cut(l, ":"); ok && strings.HasSuffix(strings.ToLower(key), suffix) {
			return i
		}
	}
	return 0
}

// parseWeight parses an atomic weight field: "55.847", "(98)", "(272)?",
// or "???" and "" for none.
func parseWeight(s string) (w float64, estimated bool, err error) {
	t := strings.TrimRight(s, "?")
	if t == "" {
		return 0, false, nil
	}
	estimated = t != s
	if strings.HasPrefix(t, "(") && strings.HasSuffix(t, ")") {
		t, estimated = t[1:len(t)-1], true
	}
	w, err = strconv.ParseFloat(t, 64)
	if err != nil || w <= 0 {
		return 0, false, fmt.Errorf("%q is not a positive number", s)
	}
	return w, estimated, nil
}

func isSymbol(s string) bool {
	if len(s) < 1 || len(s) > 3 || s[0] < 'A' || s[0] > 'Z' {
		return false
	}
	for i := 1; i < len(s); i++ {
		if s[i] < 'a' || s[i] > 'z' {
			return false
		}
	}
	return true
}

func isName(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r == '-') {
			return false
		}
	}
	return true
}

// latin1 returns b as a string, decoded as ISO 8859-1 unless it is valid
// UTF-8.
func latin1(b []byte) string {
	if utf8.Valid(b) {
		return string(b)
	}
	var buf bytes.Buffer
	buf.Grow(len(b) + len(b)/16)
	for _, c := range b {
		buf.WriteRune(rune(c))
	}
	return buf.String()
}

// readCorpus parses the two corpus files of fsys; dir names fsys in errors.
func readCorpus(fsys fs.FS, dir string) ([]Country, []Element, error) {
	path := func(f string) string {
		if dir == "" {
			return f
		}
		return strings.TrimSuffix(dir, "/") + "/" + f
	}
	cf, err := fsys.Open(CountriesFile)
	if err != nil {
		return nil, nil, fmt.Errorf("facts: %s: %w", path(CountriesFile), err)
	}
	defer cf.Close()
	countries, err := ParseCountries(cf, path(CountriesFile))
	if err != nil {
		return nil, nil, fmt.Errorf("facts: %w", err)
	}
	ef, err := fsys.Open(ElementsFile)
	if err != nil {
		return nil, nil, fmt.Errorf("facts: %s: %w", path(ElementsFile), err)
	}
	defer ef.Close()
	elements, err := ParseElements(ef, path(ElementsFile))
	if err != nil {
		return nil, nil, fmt.Errorf("facts: %w", err)
	}
	return countries, elements, nil
}
