package facts

import (
	"reflect"
	"strings"
	"testing"
)

func parseCorpus(t *testing.T) ([]Country, []Element) {
	t.Helper()
	countries, elements, err := readCorpus(Corpus(), "corpus")
	if err != nil {
		t.Fatal(err)
	}
	return countries, elements
}

// TestParseCountries parses every row of the shipped countries.txt.
func TestParseCountries(t *testing.T) {
	countries, _ := parseCorpus(t)
	var capitals, iso2, iso3 int
	byName := make(map[string]Country)
	for _, c := range countries {
		if c.Capital != "" {
			capitals++
		}
		if c.ISO2 != "" {
			iso2++
		}
		if c.ISO3 != "" {
			iso3++
		}
		byName[c.Name] = c
	}
	// 243 lines: one comment and 242 countries, 12 of them without a
	// capital and 2 without ISO codes.
	if got := [4]int{len(countries), capitals, iso2, iso3}; got != [4]int{242, 230, 240, 240} {
		t.Errorf("countries, with capital, with ISO2, with ISO3 = %v, want [242 230 240 240]", got)
	}
	tests := []Country{
		{UNCode: "248", ISO2: "AX", ISO3: "ALA", Name: "Åland Islands", Capital: "Mariehamn", CapitalField: "Mariehamn", Line: 3},
		{UNCode: "010", ISO2: "AQ", ISO3: "ATA", Name: "Antarctica", Line: 10},
		{UNCode: "204", ISO2: "BJ", ISO3: "BEN", Name: "Benin", Capital: "Porto-Novo", CapitalField: "Porto-Novo (official capital), Cotonou (seat of government)", Line: 25},
		{UNCode: "068", ISO2: "BO", ISO3: "BOL", Name: "Bolivia", Capital: "La Paz", CapitalField: "La Paz (seat of government), Sucre (legal capital and seat of judiciary)", Line: 28},
		{UNCode: "830", Name: "Channel Islands", Line: 46},
		{UNCode: "384", ISO2: "CI", ISO3: "CIV", Name: "Côte d'Ivoire", Capital: "Yamoussoukro", CapitalField: "Yamoussoukro (official capital), Abidjan (administrative center)", Line: 56},
		{UNCode: "250", ISO2: "FR", ISO3: "FRA", Name: "France", Capital: "Paris", CapitalField: "Paris", Line: 79},
		{UNCode: "833", Name: "Isle of Man", Capital: "Douglas", CapitalField: "Douglas", Line: 110},
		{UNCode: "500", ISO2: "MS", ISO3: "MSR", Name: "Montserrat", Capital: "Plymouth", CapitalField: "Plymouth (abandoned), Brades Estate (interim)", Line: 145},
		{UNCode: "840", ISO2: "US", ISO3: "USA", Name: "United States of America", Capital: "Washington, DC", CapitalField: "Washington, DC", Line: 232},
	}
	for _, want := range tests {
		if got := byName[want.Name]; !reflect.DeepEqual(got, want) {
			t.Errorf("country %q:\n got %+v\nwant %+v", want.Name, got, want)
		}
	}
}

// TestParseCountriesErrors checks that malformed rows are reported with
// the file and line.
func TestParseCountriesErrors(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"four fields", "# c\n250:FR:FRA:France\n", "c.txt:2: want 5 colon-separated fields"},
		{"UN code", "25x:FR:FRA:France:Paris\n", `c.txt:1: UN code "25x" is not a number`},
		{"ISO2", "250:Fr:FRA:France:Paris\n", `c.txt:1: ISO2 code "Fr" is not two capital letters`},
		{"ISO3", "250:FR:FRAN:France:Paris\n", `c.txt:1: ISO3 code "FRAN" is not three capital letters`},
		{"no name", "250:FR:FRA: :Paris\n", "c.txt:1: empty country name"},
		{"duplicate", "250:FR:FRA:France:Paris\n\n250:FR:FRA:France:Paris\n", `c.txt:3: country "France" already listed on line 1`},
		{"latin-1", "250:FR:FRA:Fran\xe7e:Paris\n", "c.txt:1: not valid UTF-8"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseCountries(strings.NewReader(tt.in), "c.txt")
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %v, want one containing %q", err, tt.want)
			}
		})
	}
}

// TestParseCountriesFormat checks CRLF line ends, spaces around fields
// and colons inside the capital field.
func TestParseCountriesFormat(t *testing.T) {
	got, err := ParseCountries(strings.NewReader("# header\r\n\r\n250: FR :FRA:France:Paris \r\n999:::Nowhere:A:B (note)\n"), "c.txt")
	if err != nil {
		t.Fatal(err)
	}
	want := []Country{
		{UNCode: "250", ISO2: "FR", ISO3: "FRA", Name: "France", Capital: "Paris", CapitalField: "Paris", Line: 3},
		{UNCode: "999", Name: "Nowhere", Capital: "A:B", CapitalField: "A:B (note)", Line: 4},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %+v\nwant %+v", got, want)
	}
}

// TestParseElements parses all 118 elements of the shipped dictionary.
func TestParseElements(t *testing.T) {
	_, elements := parseCorpus(t)
	if len(elements) != 118 {
		t.Fatalf("%d elements, want 118", len(elements))
	}
	symbols := make(map[string]bool)
	var noSymbol []int
	for i, e := range elements {
		if e.Number != i+1 {
			t.Errorf("element %d has atomic number %d", i+1, e.Number)
		}
		if e.Symbol == "" {
			noSymbol = append(noSymbol, e.Number)
		} else if symbols[e.Symbol] {
			t.Errorf("symbol %q repeats", e.Symbol)
		}
		symbols[e.Symbol] = true
		if e.Name == "" || e.Description == "" {
			t.Errorf("element %d: name %q, description %q", e.Number, e.Name, e.Description)
		}
		if (e.Weight == 0) != (e.Number == 117) {
			t.Errorf("element %d (%s): weight %v", e.Number, e.Name, e.Weight)
		}
	}
	if !reflect.DeepEqual(noSymbol, []int{106, 107}) {
		t.Errorf("elements without a symbol: %v, want [106 107]", noSymbol)
	}
	tests := []struct {
		want Element
		desc string // a prefix of the description
	}{
		{Element{Name: "Hydrogen", Symbol: "H", Number: 1, Weight: 1.0079, Line: 27}, "Colourless, odourless gaseous chemical element. Lightest"},
		{Element{Name: "Sulphur", Symbol: "S", Number: 16, Weight: 32.064, Line: 188}, ""},
		{Element{Name: "Iron", Symbol: "Fe", Number: 26, Weight: 55.847, Line: 287}, ""},
		{Element{Name: "Technetium", Symbol: "Tc", Number: 43, Weight: 98, WeightEstimated: true, Line: 467}, ""},
		{Element{Name: "Gold", Symbol: "Au", Number: 79, Weight: 196.96655, Line: 904}, ""},
		{Element{Name: "Unnilhexium", Number: 106, Weight: 263, WeightEstimated: true, Line: 1221}, "Half-life of 0.9 +/- 0.2 s."},
		// The later entry for 110 replaces unnildecium (Unn, line 1259).
		{Element{Name: "Darmstadtium", Symbol: "Ds", Number: 110, Weight: 281, Line: 1267}, "Darmstadtium, formerly known as ununnilium"},
		{Element{Name: "Ununseptium", Symbol: "Uus", Number: 117, Line: 1406}, ""},
		{Element{Name: "Ununoctium", Symbol: "Uuo", Number: 118, Weight: 294, Line: 1417}, "Ununoctium , also known as eka-radon"},
	}
	for _, tt := range tests {
		got := elements[tt.want.Number-1]
		if !strings.HasPrefix(got.Description, tt.desc) {
			t.Errorf("element %d: description %.60q, want prefix %q", tt.want.Number, got.Description, tt.desc)
		}
		got.Description = ""
		if got != tt.want {
			t.Errorf("element %d:\n got %+v\nwant %+v", tt.want.Number, got, tt.want)
		}
	}
	// The file is ISO 8859-1: "R\xf6ntgen" must read as "Röntgen".
	if d := elements[110].Description; !strings.Contains(d, "Wilhelm Conrad Röntgen") {
		t.Errorf("Roentgenium's description lacks %q: %q", "Wilhelm Conrad Röntgen", d)
	}
}

// TestParseElementsFormat checks the parser on small dictionaries.
func TestParseElementsFormat(t *testing.T) {
	in := "00-database-short\n     Test\n\n" +
		"iron\r\nSYMBOL: Fe\r\natomic number: 26\r\nAtmic weight: (56)?\r\nA metal: grey.\r\n\r\n" +
		"wolfram\nOriginal name for {tungsten}.\n\n" +
		"deuterium\nSymbol: D\nAtomic Weight: 2\n\n" +
		"unnilunium\nSymbol: Unu\nAtomic number: 1\nAtomic weight: 1\n\n\n" +
		"hydrogen\nSymbol: H\nAtomic number: 1\nNote: no weight.\n  Lightest.\n"
	got, err := ParseElements(strings.NewReader(in), "e.dict")
	if err != nil {
		t.Fatal(err)
	}
	want := []Element{
		{Name: "Hydrogen", Symbol: "H", Number: 1, Description: "Note: no weight. Lightest.", Line: 23},
		{Name: "Iron", Symbol: "Fe", Number: 26, Weight: 56, WeightEstimated: true, Description: "A metal: grey.", Line: 4},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %+v\nwant %+v", got, want)
	}
}

// TestParseElementsErrors checks that malformed entries are reported with
// the file and line.
func TestParseElementsErrors(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"number", "\niron\nSymbol: Fe\nAtomic number: 2x6\n", `e.dict:4: atomic number "2x6" of Iron is not a positive integer`},
		{"zero", "iron\nAtomic number: 0\n", `e.dict:2: atomic number "0" of Iron`},
		{"symbol", "iron\nSymbol: FE\nAtomic number: 26\n", `e.dict:2: symbol "FE" of "iron"`},
		{"weight", "iron\nSymbol: Fe\nAtomic number: 26\nAtomic weight: heavy\n", `e.dict:4: atomic weight of Iron: "heavy" is not a positive number`},
		{"headword", "iron 26\nAtomic number: 26\n", `e.dict:1: headword "iron 26" is not an element name`},
		{"same symbol", "iron\nSymbol: Fe\nAtomic number: 26\n\nferrum\nSymbol: Fe\nAtomic number: 27\n", `e.dict:5: symbol "Fe" of Ferrum is also the symbol of Iron (line 1)`},
		{"same name", "iron\nAtomic number: 26\n\niron\nAtomic number: 27\n", `e.dict:4: element Iron (number 27) is also element number 26 (line 1)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseElements(strings.NewReader(tt.in), "e.dict")
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %v, want one containing %q", err, tt.want)
			}
		})
	}
}

// TestGenerateMissingCorpus checks that a missing corpus file is named.
func TestGenerateMissingCorpus(t *testing.T) {
	dir := t.TempDir()
	_, err := Generate(dir, DefaultOptions())
	if want := dir + "/countries.txt"; err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("error %v, want one naming %q", err, want)
	}
}

// TestGenerateFromDir checks that the corpus directory and the embedded
// corpus give the same benchmark.
func TestGenerateFromDir(t *testing.T) {
	fromDir, err := Generate("corpus", DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	embedded, err := Default()
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(fromDir, embedded) {
		t.Error("Generate(\"corpus\") differs from Default()")
	}
}
