package facts

import (
	"errors"
	"fmt"
	"hash/fnv"
	"io/fs"
	"math"
	"os"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Kinds of entities.
const (
	KindCountry = "country"
	KindElement = "element"
)

// Facts asked about an entity.
const (
	// FactCapital asks for a country's capital.
	FactCapital = "capital"
	// FactISO2 asks for a country's two-letter ISO 3166-1 code.
	FactISO2 = "iso2"
	// FactISO3 asks for a country's three-letter ISO 3166-1 code.
	FactISO3 = "iso3"
	// FactSymbol asks for an element's chemical symbol.
	FactSymbol = "symbol"
	// FactNumber asks for an element's atomic number.
	FactNumber = "number"
	// FactName asks which element has a given symbol.
	FactName = "name"
)

// Splits of the benchmark. Every entity, with all of its questions, is in
// exactly one split.
const (
	// SplitForget holds the entities a model is trained on and then asked
	// to forget.
	SplitForget = "forget"
	// SplitRetain holds the entities a model is trained on and must keep.
	SplitRetain = "retain"
	// SplitHoldout holds entities a model is never trained on: the
	// non-members of membership inference, and the reference that a model
	// which forgot should resemble.
	SplitHoldout = "holdout"
)

// Kinds lists the entity kinds in the order Generate emits them.
var Kinds = []string{KindCountry, KindElement}

// Splits lists the splits.
var Splits = []string{SplitForget, SplitRetain, SplitHoldout}

// An Example is one question about one fact of one entity.
type Example struct {
	// Question asks for the fact: "What is the capital of France?".
	Question string
	// Answer is the fact, short: "Paris".
	Answer string
	// ParaphrasedAnswer states the fact as a sentence: "The capital of
	// France is Paris." It is the correct answer of a TOFU-style truth
	// ratio.
	ParaphrasedAnswer string
	// PerturbedAnswers are wrong answers in the same sentence as
	// ParaphrasedAnswer with the fact replaced by that of another entity
	// of the same kind: "The capital of France is Lima." Sentences, not
	// bare values, so that the truth ratio compares texts that differ only
	// in the fact.
	PerturbedAnswers []string
	// WrongAnswers are the bare wrong facts of PerturbedAnswers, in the
	// same order: "Lima".
	WrongAnswers []string
	// Entity names the entity the fact belongs to: "France", "Iron".
	Entity string
	// Kind is KindCountry or KindElement.
	Kind string
	// Fact is one of the Fact constants.
	Fact string
	// Split is SplitForget, SplitRetain or SplitHoldout.
	Split string
}

// Options configures Generate.
type Options struct {
	// Seed chooses the split of the entities and the perturbed answers.
	Seed uint64
	// ForgetFraction is the share of each kind's entities in the forget
	// split, in (0, 1).
	ForgetFraction float64
	// HoldoutFraction is the share of each kind's entities in the holdout
	// split, in [0, 1); ForgetFraction + HoldoutFraction must be below 1.
	HoldoutFraction float64
	// Perturbed is the number of perturbed answers per example, at least 0.
	Perturbed int
}

// DefaultOptions returns the options of the shipped benchmark file: seed
// 1, 10% of the entities to forget, 10% held out, 3 perturbed answers.
func DefaultOptions() Options {
	return Options{Seed: 1, ForgetFraction: 0.1, HoldoutFraction: 0.1, Perturbed: 3}
}

// Validate reports whether the options are usable.
func (o Options) Validate() error {
	var errs []error
	if !(o.ForgetFraction > 0 && o.ForgetFraction < 1) {
		errs = append(errs, fmt.Errorf("forget fraction %v is not in (0, 1)", o.ForgetFraction))
	}
	if !(o.HoldoutFraction >= 0 && o.HoldoutFraction < 1) {
		errs = append(errs, fmt.Errorf("holdout fraction %v is not in [0, 1)", o.HoldoutFraction))
	}
	if len(errs) == 0 && o.ForgetFraction+o.HoldoutFraction >= 1 {
		errs = append(errs, fmt.Errorf("forget fraction %v + holdout fraction %v leave nothing to retain", o.ForgetFraction, o.HoldoutFraction))
	}
	if o.Perturbed < 0 {
		errs = append(errs, fmt.Errorf("perturbed answers %d is negative", o.Perturbed))
	}
	return errors.Join(errs...)
}

// Generate reads the corpus files CountriesFile and ElementsFile from
// corpusDir and returns the benchmark's examples; see GenerateFS.
func Generate(corpusDir string, opts Options) ([]Example, error) {
	return generate(os.DirFS(corpusDir), corpusDir, opts)
}

// GenerateFS returns the benchmark's examples for the corpus files
// CountriesFile and ElementsFile at the root of fsys, such as Corpus().
//
// Countries give up to three facts (FactCapital, FactISO2, FactISO3) and
// elements up to three (FactSymbol, FactNumber, FactName); a fact that
// the corpus leaves empty is skipped, and so is an entity without facts.
// Examples come in corpus order: countries in file order, then elements
// by atomic number, each entity's facts in the order above.
//
// Entities are split per kind, so that each split holds the same share of
// countries and of elements: a seeded shuffle of each kind's entities puts
// the first round(ForgetFraction·n) in SplitForget, the next
// round(HoldoutFraction·n) in SplitHoldout and the rest in SplitRetain.
//
// The perturbed answers of an example are the facts of the same kind
// from other entities (of any split), drawn without replacement by a
// generator seeded with Seed and the example's kind, entity and fact, so
// an example's draw does not depend on the rest of the corpus' order.
// Candidates equal to the answer, or that Correct would confuse with it,
// are left out. Draws prefer candidates of the same form as the answer:
// the same number of characters for codes, symbols and numbers, the same
// number of words for capitals and names; when fewer than
// Options.Perturbed such candidates exist, any candidate may be drawn.
//
// The generator is a SplitMix64 stream written out here, and hashes are
// 64-bit FNV-1a, so the output depends on nothing but the corpus and opts.
func GenerateFS(fsys fs.FS, opts Options) ([]Example, error) {
	return generate(fsys, "", opts)
}

// Default returns the shipped benchmark: GenerateFS(Corpus(),
// DefaultOptions()).
func Default() ([]Example, error) {
	return GenerateFS(Corpus(), DefaultOptions())
}

// Split returns the examples of ex in the given split, in order.
func Split(ex []Example, split string) []Example {
	var out []Example
	for _, e := range ex {
		if e.Split == split {
			out = append(out, e)
		}
	}
	return out
}

// factSpec is how one fact is asked and stated.
type factSpec struct {
	// question is a format of the subject: the entity, or for FactName
	// the symbol.
	question string
	// sentence is a format of the subject and the answer.
	sentence string
	// byWords picks the form of an answer by its number of words, not its
	// number of characters.
	byWords bool
}

var specs = map[string]factSpec{
	FactCapital: {"What is the capital of %s?", "The capital of %s is %s.", true},
	FactISO2:    {"What is the two-letter ISO code of %s?", "The two-letter ISO code of %s is %s.", false},
	FactISO3:    {"What is the three-letter ISO code of %s?", "The three-letter ISO code of %s is %s.", false},
	FactSymbol:  {"What is the chemical symbol of %s?", "The chemical symbol of %s is %s.", false},
	FactNumber:  {"What is the atomic number of %s?", "The atomic number of %s is %s.", false},
	FactName:    {"Which element has the symbol %s?", "The element with the symbol %s is %s.", true},
}

// form returns the form class of an answer, which draws of perturbed
// answers try to match.
func (s factSpec) form(answer string) int {
	if s.byWords {
		return len(strings.Fields(answer))
	}
	return utf8.RuneCountInString(answer)
}

// fact is one fact of an entity before it becomes an Example.
type fact struct {
	fact, subject, answer string
}

// entity is a country or an element with its non-empty facts.
type entity struct {
	kind, name string
	facts      []fact
}

func entities(countries []Country, elements []Element) []entity {
	var out []entity
	add := func(e *entity, f, subject, answer string) {
		if answer != "" && subject != "" {
			e.facts = append(e.facts, fact{f, subject, answer})
		}
	}
	for _, c := range countries {
		e := entity{kind: KindCountry, name: c.Name}
		add(&e, FactCapital, c.Name, c.Capital)
		add(&e, FactISO2, c.Name, c.ISO2)
		add(&e, FactISO3, c.Name, c.ISO3)
		if len(e.facts) > 0 {
			out = append(out, e)
		}
	}
	for _, el := range elements {
		e := entity{kind: KindElement, name: el.Name}
		add(&e, FactSymbol, el.Name, el.Symbol)
		add(&e, FactNumber, el.Name, strconv.Itoa(el.Number))
		add(&e, FactName, el.Symbol, el.Name)
		if len(e.facts) > 0 {
			out = append(out, e)
		}
	}
	return out
}

func generate(fsys fs.FS, dir string, opts Options) ([]Example, error) {
	if err := opts.Validate(); err != nil {
		return nil, fmt.Errorf("facts: options: %w", err)
	}
	countries, elements, err := readCorpus(fsys, dir)
	if err != nil {
		return nil, err
	}
	ents := entities(countries, elements)
	split, err := assignSplits(ents, opts)
	if err != nil {
		return nil, err
	}

	// The distinct answers of each kind and fact, sorted, for the draws.
	pools := make(map[string][]string)
	for _, e := range ents {
		for _, f := range e.facts {
			k := e.kind + "/" + f.fact
			pools[k] = append(pools[k], f.answer)
		}
	}
	for k, p := range pools {
		sort.Strings(p)
		pools[k] = compact(p)
	}

	var out []Example
	for i, e := range ents {
		for _, f := range e.facts {
			spec := specs[f.fact]
			ex := Example{
				Question:          fmt.Sprintf(spec.question, f.subject),
				Answer:            f.answer,
				ParaphrasedAnswer: fmt.Sprintf(spec.sentence, f.subject, f.answer),
				Entity:            e.name,
				Kind:              e.kind,
				Fact:              f.fact,
				Split:             split[i],
			}
			if opts.Perturbed > 0 {
				wrong, err := drawWrong(pools[e.kind+"/"+f.fact], spec, f.answer, opts.Perturbed, newRNG(opts.Seed, "perturb", e.kind, e.name, f.fact))
				if err != nil {
					return nil, fmt.Errorf("facts: perturbed answers of %s %q, fact %s: %w", e.kind, e.name, f.fact, err)
				}
				ex.WrongAnswers = wrong
				ex.PerturbedAnswers = make([]string, len(wrong))
				for j, w := range wrong {
					ex.PerturbedAnswers[j] = fmt.Sprintf(spec.sentence, f.subject, w)
				}
			}
			out = append(out, ex)
		}
	}
	return out, nil
}

// compact removes adjacent duplicates of sorted strings.
func compact(s []string) []string {
	out := s[:0]
	for i, v := range s {
		if i == 0 || v != s[i-1] {
			out = append(out, v)
		}
	}
	return out
}

// assignSplits returns the split of each entity.
func assignSplits(ents []entity, opts Options) ([]string, error) {
	split := make([]string, len(ents))
	for _, kind := range Kinds {
		var idx []int
		for i, e := range ents {
			if e.kind == kind {
				idx = append(idx, i)
			}
		}
		n := len(idx)
		forget := int(math.Round(opts.ForgetFraction * float64(n)))
		holdout := int(math.Round(opts.HoldoutFraction * float64(n)))
		if n > 0 && forget == 0 {
			return nil, fmt.Errorf("facts: forget fraction %v of %d %s entities selects none", opts.ForgetFraction, n, kind)
		}
		if forget+holdout >= n && n > 0 {
			return nil, fmt.Errorf("facts: forget fraction %v and holdout fraction %v of %d %s entities leave none to retain", opts.ForgetFraction, opts.HoldoutFraction, n, kind)
		}
		r := newRNG(opts.Seed, "split", kind)
		r.shuffle(idx)
		for j, i := range idx {
			switch {
			case j < forget:
				split[i] = SplitForget
			case j < forget+holdout:
				split[i] = SplitHoldout
			default:
				split[i] = SplitRetain
			}
		}
	}
	return split, nil
}

// drawWrong draws k wrong answers from pool (sorted, distinct).
func drawWrong(pool []string, spec factSpec, answer string, k int, r *rng) ([]string, error) {
	var cands, same []string
	for _, c := range pool {
		if Correct(c, answer) || Correct(answer, c) {
			continue
		}
		cands = append(cands, c)
		if spec.form(c) == spec.form(answer) {
			same = append(same, c)
		}
	}
	if len(same) >= k {
		cands = same
	}
	if len(cands) < k {
		return nil, fmt.Errorf("want %d, only %d other answers exist", k, len(cands))
	}
	cands = append([]string(nil), cands...)
	for i := range k {
		j := i + r.intn(len(cands)-i)
		cands[i], cands[j] = cands[j], cands[i]
	}
	return cands[:k], nil
}

// rng is a SplitMix64 generator.
type rng struct{ state uint64 }

// newRNG returns a generator seeded with seed and the FNV-1a hash of keys.
func newRNG(seed uint64, keys ...string) *rng {
	h := fnv.New64a()
	for _, k := range keys {
		h.Write([]byte(k))
		h.Write([]byte{0})
	}
	r := &rng{state: seed}
	return &rng{state: r.uint64() ^ h.Sum64()}
}

func (r *rng) uint64() uint64 {
	r.state += 0x9e3779b97f4a7c15
	z := r.state
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

// intn returns a uniform integer in [0, n), n > 0, by rejection.
func (r *rng) intn(n int) int {
	un := uint64(n)
	limit := math.MaxUint64 - math.MaxUint64%un
	for {
		if v := r.uint64(); v < limit {
			return int(v % un)
		}
	}
}

// shuffle permutes s (Fisher-Yates).
func (r *rng) shuffle(s []int) {
	for i := len(s) - 1; i > 0; i-- {
		j := r.intn(i + 1)
		s[i], s[j] = s[j], s[i]
	}
}
