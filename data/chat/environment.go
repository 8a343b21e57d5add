package chat

import (
	"cmp"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/nikolalohinski/gonja/v2/builtins"
	"github.com/nikolalohinski/gonja/v2/builtins/methods"
	"github.com/nikolalohinski/gonja/v2/exec"
	"github.com/nikolalohinski/gonja/v2/nodes"
	"github.com/nikolalohinski/gonja/v2/parser"
	"github.com/nikolalohinski/gonja/v2/tokens"
)

// environment is gonja's default environment with the changes that make it
// behave like transformers' ImmutableSandboxedEnvironment. It is built once
// and never modified afterwards; gonja's own global sets are left untouched.
var environment = newEnvironment()

func newEnvironment() *exec.Environment {
	filters := exec.NewFilterSet(map[string]exec.FilterFunction{}).Update(builtins.Filters)
	for name, fn := range map[string]exec.FilterFunction{
		"tojson":     filterToJSON,
		"trim":       filterTrim,
		"items":      filterItems,
		"length":     filterLength,
		"count":      filterLength,
		"title":      filterTitle,
		"upper":      strFilter(pyUpper),
		"lower":      strFilter(pyLower),
		"capitalize": strFilter(pyCapitalize),
		"dictsort":   filterDictSort,
	} {
		if err := filters.Replace(name, fn); err != nil {
			panic(err) // a gonja upgrade renamed a builtin filter
		}
	}

	tests := exec.NewTestSet(map[string]exec.TestFunction{}).Update(builtins.Tests)
	for name, fn := range map[string]exec.TestFunction{
		"mapping":  testMapping,
		"sequence": testSequence,
		"iterable": testIterable,
	} {
		if err := tests.Replace(name, fn); err != nil {
			panic(err)
		}
	}

	structures := exec.NewControlStructureSet(map[string]parser.ControlStructureParser{}).Update(builtins.ControlStructures)
	if err := structures.Register("generation", generationParser); err != nil {
		panic(err)
	}

	globals := exec.EmptyContext().Update(builtins.GlobalFunctions).Update(builtins.GlobalVariables)
	globals.Set("namespace", newNamespace)
	globals.Set("dict", newDictGlobal)
	globals.Set("strftime_now", func(format string) string { return strftime(time.Now(), format) })

	return &exec.Environment{
		Context:           globals,
		Filters:           filters,
		Tests:             tests,
		ControlStructures: structures,
		Methods: exec.Methods{
			Bool:  methods.All.Bool,
			Int:   methods.All.Int,
			Float: methods.All.Float,
			Str:   strMethods(),
			Dict:  dictMethods(),
			List:  listMethods(),
		},
	}
}

// namespace is what namespace() returns: an object whose attributes a
// template can set inside loops ({% set ns.found = true %}). It is not a
// mapping.
type namespace map[string]any

// newNamespace is the namespace global: namespace(mapping?, **attributes).
func newNamespace(args *exec.VarArgs) (namespace, error) {
	ns := namespace{}
	if len(args.Args) > 1 {
		return nil, fmt.Errorf("namespace() takes at most one positional argument, got %d", len(args.Args))
	}
	if len(args.Args) == 1 {
		if !args.Args[0].IsDict() {
			return nil, fmt.Errorf("namespace(): %s is not a mapping", args.Args[0].String())
		}
		for _, p := range dictPairs(args.Args[0]) {
			ns[p.Key.String()] = p.Value.Interface()
		}
	}
	for k, v := range args.KwArgs {
		ns[k] = v.Interface()
	}
	return ns, nil
}

// newDictGlobal is the dict global: dict(**items). The parser does not keep the
// order of keyword arguments, so the keys are sorted (Python would keep the
// order they are written in).
func newDictGlobal(args *exec.VarArgs) (any, error) {
	if len(args.Args) > 0 {
		return nil, errors.New("dict() takes keyword arguments only")
	}
	keys := make([]string, 0, len(args.KwArgs))
	for k := range args.KwArgs {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	d := &exec.Dict{Pairs: make([]*exec.Pair, 0, len(keys))}
	for _, k := range keys {
		d.Pairs = append(d.Pairs, &exec.Pair{Key: exec.AsValue(k), Value: exec.AsValue(args.KwArgs[k].Interface())})
	}
	return dictValue(d), nil
}

// generationParser parses transformers' {% generation %}...{% endgeneration %}
// block, which marks the assistant tokens of a turn (for
// return_assistant_tokens_mask); when rendering text it only renders its body.
func generationParser(p *parser.Parser, args *parser.Parser) (nodes.ControlStructure, error) {
	cs := &generationBlock{location: p.Current()}
	if !args.End() {
		return nil, args.Error("generation takes no arguments", args.Current())
	}
	wrapper, endargs, err := p.WrapUntil("endgeneration")
	if err != nil {
		return nil, err
	}
	if !endargs.End() {
		return nil, endargs.Error("endgeneration takes no arguments", endargs.Current())
	}
	cs.wrapper = wrapper
	return cs, nil
}

type generationBlock struct {
	location *tokens.Token
	wrapper  *nodes.Wrapper
}

func (g *generationBlock) Position() *tokens.Token { return g.location }

func (g *generationBlock) String() string {
	return fmt.Sprintf("GenerationControlStructure(Line=%d Col=%d)", g.location.Line, g.location.Col)
}

func (g *generationBlock) Execute(r *exec.Renderer, _ *nodes.ControlStructureBlock) error {
	return r.ExecuteWrapper(g.wrapper)
}

// pyArgs binds positional and keyword arguments to the named parameters of a
// Python function; missing ones are nil.
func pyArgs(fn string, va *exec.VarArgs, names ...string) ([]*exec.Value, error) {
	out := make([]*exec.Value, len(names))
	if len(va.Args) > len(names) {
		return nil, fmt.Errorf("%s() takes at most %d arguments (%d given)", fn, len(names), len(va.Args))
	}
	copy(out, va.Args)
	for k, v := range va.KwArgs {
		i := indexOf(names, k)
		if i < 0 {
			return nil, fmt.Errorf("%s() got an unexpected keyword argument %q", fn, k)
		}
		if out[i] != nil {
			return nil, fmt.Errorf("%s() got multiple values for argument %q", fn, k)
		}
		out[i] = v
	}
	return out, nil
}

func indexOf(names []string, name string) int {
	for i, n := range names {
		if n == name {
			return i
		}
	}
	return -1
}

// isNone reports whether an optional argument is absent or None.
func isNone(v *exec.Value) bool { return v == nil || v.IsNil() }

// filterToJSON is transformers' tojson: json.dumps(x, ensure_ascii=False,
// indent=None, separators=None, sort_keys=False), without Jinja's HTML
// escaping.
func filterToJSON(_ *exec.Evaluator, in *exec.Value, params *exec.VarArgs) *exec.Value {
	if in.IsError() {
		return in
	}
	a, err := pyArgs("tojson", params, "ensure_ascii", "indent", "separators", "sort_keys")
	if err != nil {
		return exec.AsValue(err)
	}
	opts := jsonOptions{itemSep: ", ", keySep: ": "}
	opts.ensureASCII = !isNone(a[0]) && a[0].IsTrue()
	if !isNone(a[1]) {
		var indent string
		switch {
		case a[1].IsString():
			indent = a[1].String()
		case a[1].IsInteger():
			indent = strings.Repeat(" ", max(a[1].Integer(), 0))
		default:
			return exec.AsValue(fmt.Errorf("tojson: indent must be an int or a string, not %s", a[1].String()))
		}
		opts.indent = &indent
		opts.itemSep = ","
	}
	if !isNone(a[2]) {
		if !a[2].IsList() || a[2].Len() != 2 {
			return exec.AsValue(fmt.Errorf("tojson: separators must be an (item_separator, key_separator) pair, not %s", a[2].String()))
		}
		opts.itemSep, opts.keySep = a[2].Index(0).String(), a[2].Index(1).String()
	}
	opts.sortKeys = !isNone(a[3]) && a[3].IsTrue()
	out, err := pyJSON(in, opts)
	if err != nil {
		return exec.AsValue(err)
	}
	return exec.AsSafeValue(out)
}

// filterTrim is Jinja's trim: str.strip(chars).
func filterTrim(_ *exec.Evaluator, in *exec.Value, params *exec.VarArgs) *exec.Value {
	if in.IsError() {
		return in
	}
	a, err := pyArgs("trim", params, "chars")
	if err != nil {
		return exec.AsValue(err)
	}
	return exec.AsValue(pyStrip(pyStr(in), a[0], true, true))
}

// filterItems is Jinja's items: the (key, value) pairs of a dict in order.
func filterItems(_ *exec.Evaluator, in *exec.Value, params *exec.VarArgs) *exec.Value {
	if in.IsError() {
		return in
	}
	if _, err := pyArgs("items", params); err != nil {
		return exec.AsValue(err)
	}
	if in.IsNil() {
		return exec.AsValue([]any{})
	}
	if !in.IsDict() {
		return exec.AsValue(fmt.Errorf("items: %s is not a mapping", in.String()))
	}
	return exec.AsValue(dictItems(in))
}

// filterLength is Jinja's length (and count): len(x).
func filterLength(_ *exec.Evaluator, in *exec.Value, params *exec.VarArgs) *exec.Value {
	if in.IsError() {
		return in
	}
	if _, err := pyArgs("length", params); err != nil {
		return exec.AsValue(err)
	}
	if in.IsDict() {
		return exec.AsValue(len(dictPairs(in)))
	}
	return exec.AsValue(in.Len())
}

// dictItems returns the (key, value) pairs of a dict as two-element lists.
func dictItems(in *exec.Value) []any {
	pairs := dictPairs(in)
	out := make([]any, len(pairs))
	for i, p := range pairs {
		out[i] = []any{p.Key.Interface(), p.Value.Interface()}
	}
	return out
}

// testMapping is Jinja's `is mapping`: dicts, not namespaces.
func testMapping(_ *exec.Context, in *exec.Value, _ *exec.VarArgs) (bool, error) {
	_, isNamespace := in.Interface().(namespace)
	return in.IsDict() && !isNamespace, nil
}

// testSequence is Jinja's `is sequence`: anything with a length.
func testSequence(_ *exec.Context, in *exec.Value, _ *exec.VarArgs) (bool, error) {
	return in.IsString() || in.IsList() || in.IsDict(), nil
}

// testIterable is Jinja's `is iterable`.
func testIterable(_ *exec.Context, in *exec.Value, _ *exec.VarArgs) (bool, error) {
	return in.IsString() || in.IsList() || in.IsDict(), nil
}

// strFilter adapts a str → str function to a filter without arguments.
func strFilter(fn func(string) string) exec.FilterFunction {
	return func(_ *exec.Evaluator, in *exec.Value, params *exec.VarArgs) *exec.Value {
		if in.IsError() {
			return in
		}
		if _, err := pyArgs("filter", params); err != nil {
			return exec.AsValue(err)
		}
		return exec.AsValue(fn(pyStr(in)))
	}
}

// titleWordSplit is Jinja2's _word_beginning_split_re.
var titleWordSplit = regexp.MustCompile(`[-\s({\[<]+`)

// filterTitle is Jinja2's title filter (not str.title): every word, as split
// by spaces, hyphens and opening brackets, gets an upper-case first character
// and lower-case rest.
func filterTitle(_ *exec.Evaluator, in *exec.Value, params *exec.VarArgs) *exec.Value {
	if in.IsError() {
		return in
	}
	if _, err := pyArgs("title", params); err != nil {
		return exec.AsValue(err)
	}
	s := pyStr(in)
	var b strings.Builder
	word := func(w string) {
		if w == "" {
			return
		}
		r, size := utf8.DecodeRuneInString(w)
		b.WriteString(pyUpper(string(r)))
		b.WriteString(pyLower(w[size:]))
	}
	last := 0
	for _, m := range titleWordSplit.FindAllStringIndex(s, -1) {
		word(s[last:m[0]])
		b.WriteString(s[m[0]:m[1]])
		last = m[1]
	}
	word(s[last:])
	return exec.AsValue(b.String())
}

// filterDictSort is Jinja2's dictsort(value, case_sensitive=False, by='key',
// reverse=False): the (key, value) pairs sorted.
func filterDictSort(_ *exec.Evaluator, in *exec.Value, params *exec.VarArgs) *exec.Value {
	if in.IsError() {
		return in
	}
	a, err := pyArgs("dictsort", params, "case_sensitive", "by", "reverse")
	if err != nil {
		return exec.AsValue(err)
	}
	if !in.IsDict() {
		return exec.AsValue(fmt.Errorf("dictsort: %s is not a mapping", in.String()))
	}
	caseSensitive := !isNone(a[0]) && a[0].IsTrue()
	byValue := false
	if !isNone(a[1]) {
		switch a[1].String() {
		case "key":
		case "value":
			byValue = true
		default:
			return exec.AsValue(errors.New("dictsort: you can only sort by either 'key' or 'value'"))
		}
	}
	pairs := append([]*exec.Pair(nil), dictPairs(in)...)
	sortKey := func(p *exec.Pair) *exec.Value {
		v := p.Key
		if byValue {
			v = p.Value
		}
		if !caseSensitive && v.IsString() {
			return exec.AsValue(pyLower(v.String()))
		}
		return v
	}
	slices.SortStableFunc(pairs, func(x, y *exec.Pair) int { return pyCompare(sortKey(x), sortKey(y)) })
	if !isNone(a[2]) && a[2].IsTrue() {
		reverse(pairs)
	}
	out := make([]any, len(pairs))
	for i, p := range pairs {
		out[i] = []any{p.Key.Interface(), p.Value.Interface()}
	}
	return exec.AsValue(out)
}

// pyCompare orders numbers by value and everything else by its text.
func pyCompare(x, y *exec.Value) int {
	if x.IsNumber() && y.IsNumber() {
		return cmp.Compare(x.Float(), y.Float())
	}
	return strings.Compare(x.String(), y.String())
}
