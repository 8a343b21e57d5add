package chat

import (
	"errors"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/nikolalohinski/gonja/v2/builtins/methods"
	"github.com/nikolalohinski/gonja/v2/exec"
	"golang.org/x/text/cases"
	"golang.org/x/text/language"
)

// Python's str, dict and list methods, as Jinja2 exposes them to templates.
// gonja ships most str methods; the ones below replace those whose defaults
// or results differ from Python's (strip() without arguments strips only
// spaces, split() without arguments splits on single spaces, ...). Mutating
// dict and list methods are left out: transformers' immutable sandbox
// refuses them too.

// strMethodNames are gonja's str methods kept as they are.
var strMethodNames = []string{
	"casefold", "center", "encode", "expandtabs", "format", "format_map",
	"isalnum", "isalpha", "isascii", "isdecimal", "isdigit", "islower",
	"isnumeric", "isprintable", "istitle", "isupper", "ljust", "partition",
	"rjust", "rpartition", "splitlines", "swapcase", "zfill",
}

func strMethods() *exec.MethodSet[string] {
	m := map[string]exec.Method[string]{
		"strip":        bind("strip", strStrip(true, true)),
		"lstrip":       bind("lstrip", strStrip(true, false)),
		"rstrip":       bind("rstrip", strStrip(false, true)),
		"split":        bind("split", strSplit(false)),
		"rsplit":       bind("rsplit", strSplit(true)),
		"startswith":   bind("startswith", strAffix),
		"endswith":     bind("endswith", strAffix),
		"upper":        strNoArgs("upper", pyUpper),
		"lower":        strNoArgs("lower", pyLower),
		"title":        strNoArgs("title", pyTitle),
		"capitalize":   strNoArgs("capitalize", pyCapitalize),
		"replace":      bind("replace", strReplace),
		"join":         bind("join", strJoin),
		"find":         bind("find", strFind),
		"rfind":        bind("rfind", strFind),
		"index":        bind("index", strFind),
		"rindex":       bind("rindex", strFind),
		"count":        bind("count", strFind),
		"removeprefix": bind("removeprefix", strRemove),
		"removesuffix": bind("removesuffix", strRemove),
		"isspace": strNoArgs("isspace", func(s string) bool {
			return s != "" && strings.IndexFunc(s, func(r rune) bool { return !pyIsSpace(r) }) < 0
		}),
	}
	for _, name := range strMethodNames {
		if fn, ok := methods.All.Str.Get(name); ok {
			m[name] = fn
		}
	}
	return exec.NewMethodSet(m)
}

// strMethod is a str method that learns the name it is called by.
type strMethod func(name, s string, va *exec.VarArgs) (any, error)

// bind makes fn the str method name.
func bind(name string, fn strMethod) exec.Method[string] {
	return func(s string, _ *exec.Value, va *exec.VarArgs) (any, error) { return fn(name, s, va) }
}

// strNoArgs adapts a function of the string alone to a method.
func strNoArgs[T any](name string, fn func(string) T) exec.Method[string] {
	return func(s string, _ *exec.Value, a *exec.VarArgs) (any, error) {
		if _, err := pyArgs(name, a); err != nil {
			return nil, err
		}
		return fn(s), nil
	}
}

// pyIsSpace is Python's str.isspace for one character.
func pyIsSpace(r rune) bool {
	return unicode.IsSpace(r) || (r >= 0x1c && r <= 0x1f)
}

// pyStr is str(v) for the values templates pass to string methods.
func pyStr(v *exec.Value) string { return v.String() }

// pyStrip is str.strip/lstrip/rstrip: chars nil or None strips whitespace.
func pyStrip(s string, chars *exec.Value, left, right bool) string {
	cut := pyIsSpace
	if !isNone(chars) {
		set := chars.String()
		cut = func(r rune) bool { return strings.ContainsRune(set, r) }
	}
	if left {
		s = strings.TrimLeftFunc(s, cut)
	}
	if right {
		s = strings.TrimRightFunc(s, cut)
	}
	return s
}

// strStrip is str.strip, lstrip or rstrip.
func strStrip(left, right bool) strMethod {
	return func(name, s string, va *exec.VarArgs) (any, error) {
		a, err := pyArgs(name, va, "chars")
		if err != nil {
			return nil, err
		}
		if !isNone(a[0]) && !a[0].IsString() {
			return nil, fmt.Errorf("%s arg must be None or str", name)
		}
		return pyStrip(s, a[0], left, right), nil
	}
}

// strSplit is str.split or str.rsplit.
func strSplit(fromRight bool) strMethod {
	return func(name, s string, va *exec.VarArgs) (any, error) { return pySplit(name, s, va, fromRight) }
}

func pySplit(name, s string, va *exec.VarArgs, fromRight bool) (any, error) {
	a, err := pyArgs(name, va, "sep", "maxsplit")
	if err != nil {
		return nil, err
	}
	maxsplit := -1
	if !isNone(a[1]) {
		if !a[1].IsInteger() {
			return nil, fmt.Errorf("%s(): maxsplit must be an int", name)
		}
		maxsplit = a[1].Integer()
	}
	var parts []string
	if isNone(a[0]) {
		parts = splitWhitespace(s, maxsplit, fromRight)
	} else {
		sep := a[0].String()
		if sep == "" {
			return nil, fmt.Errorf("%s(): empty separator", name)
		}
		switch {
		case maxsplit < 0:
			parts = strings.Split(s, sep)
		case !fromRight:
			parts = strings.SplitN(s, sep, maxsplit+1)
		default:
			for ; maxsplit > 0; maxsplit-- {
				i := strings.LastIndex(s, sep)
				if i < 0 {
					break
				}
				parts = append(parts, s[i+len(sep):])
				s = s[:i]
			}
			parts = append(parts, s)
			reverse(parts)
		}
	}
	out := make([]any, len(parts))
	for i, p := range parts {
		out[i] = p
	}
	return out, nil
}

// splitWhitespace is str.split()/rsplit() without a separator: runs of
// whitespace separate, and the rest after maxsplit splits is kept whole.
func splitWhitespace(s string, maxsplit int, fromRight bool) []string {
	var parts []string
	if !fromRight {
		for {
			s = strings.TrimLeftFunc(s, pyIsSpace)
			if s == "" {
				return parts
			}
			if maxsplit == 0 {
				return append(parts, s)
			}
			end := strings.IndexFunc(s, pyIsSpace)
			if end < 0 {
				return append(parts, s)
			}
			parts = append(parts, s[:end])
			s = s[end:]
			maxsplit--
		}
	}
	for {
		s = strings.TrimRightFunc(s, pyIsSpace)
		if s == "" {
			break
		}
		if maxsplit == 0 {
			parts = append(parts, s)
			break
		}
		start := strings.LastIndexFunc(s, pyIsSpace)
		if start < 0 {
			parts = append(parts, s)
			break
		}
		_, size := utf8.DecodeRuneInString(s[start:])
		parts = append(parts, s[start+size:])
		s = s[:start]
		maxsplit--
	}
	reverse(parts)
	return parts
}

func reverse[T any](s []T) {
	for i, j := 0, len(s)-1; i < j; i, j = i+1, j-1 {
		s[i], s[j] = s[j], s[i]
	}
}

// sliceBounds resolves Python's s[start:end] on a string of n characters.
func sliceBounds(n int, start, end *exec.Value) (int, int, error) {
	bound := func(v *exec.Value, def int) (int, error) {
		if isNone(v) {
			return def, nil
		}
		if !v.IsInteger() {
			return 0, errors.New("slice indices must be integers or None")
		}
		i := v.Integer()
		if i < 0 {
			i += n
		}
		return min(max(i, 0), n), nil
	}
	s, err := bound(start, 0)
	if err != nil {
		return 0, 0, err
	}
	e, err := bound(end, n)
	return s, e, err
}

// strAffix is str.startswith and str.endswith, with a str or a tuple of str.
func strAffix(name, s string, va *exec.VarArgs) (any, error) {
	a, err := pyArgs(name, va, "affix", "start", "end")
	if err != nil {
		return nil, err
	}
	if a[0] == nil {
		return nil, fmt.Errorf("%s() takes at least 1 argument (0 given)", name)
	}
	runes := []rune(s)
	start, end, err := sliceBounds(len(runes), a[1], a[2])
	if err != nil {
		return nil, fmt.Errorf("%s(): %w", name, err)
	}
	if start > end {
		return false, nil
	}
	sub := string(runes[start:end])
	var affixes []string
	switch {
	case a[0].IsString():
		affixes = []string{a[0].String()}
	case a[0].IsList():
		for i := range a[0].Len() {
			e := a[0].Index(i)
			if !e.IsString() {
				return nil, fmt.Errorf("tuple for %s must only contain str", name)
			}
			affixes = append(affixes, e.String())
		}
	default:
		return nil, fmt.Errorf("%s first arg must be str or a tuple of str", name)
	}
	for _, x := range affixes {
		if (name == "startswith" && strings.HasPrefix(sub, x)) || (name == "endswith" && strings.HasSuffix(sub, x)) {
			return true, nil
		}
	}
	return false, nil
}

// strFind is str.find, rfind, index, rindex and count; positions count
// characters, as in Python.
func strFind(name, s string, va *exec.VarArgs) (any, error) {
	a, err := pyArgs(name, va, "sub", "start", "end")
	if err != nil {
		return nil, err
	}
	if a[0] == nil || !a[0].IsString() {
		return nil, fmt.Errorf("%s() argument 1 must be str", name)
	}
	sub := a[0].String()
	runes := []rune(s)
	start, end, err := sliceBounds(len(runes), a[1], a[2])
	if err != nil {
		return nil, fmt.Errorf("%s(): %w", name, err)
	}
	if start > end {
		switch name {
		case "count":
			return 0, nil
		case "index", "rindex":
			return nil, errors.New("substring not found")
		}
		return -1, nil
	}
	hay := string(runes[start:end])
	var i int
	switch name {
	case "count":
		return strings.Count(hay, sub), nil
	case "find", "index":
		i = strings.Index(hay, sub)
	default:
		i = strings.LastIndex(hay, sub)
	}
	if i < 0 {
		if name == "index" || name == "rindex" {
			return nil, errors.New("substring not found")
		}
		return -1, nil
	}
	return start + utf8.RuneCountInString(hay[:i]), nil
}

func strRemove(name, s string, va *exec.VarArgs) (any, error) {
	a, err := pyArgs(name, va, "affix")
	if err != nil {
		return nil, err
	}
	if a[0] == nil || !a[0].IsString() {
		return nil, fmt.Errorf("%s() argument must be str", name)
	}
	if name == "removeprefix" {
		return strings.TrimPrefix(s, a[0].String()), nil
	}
	return strings.TrimSuffix(s, a[0].String()), nil
}

// strReplace is str.replace(old, new, count=-1).
func strReplace(name, s string, va *exec.VarArgs) (any, error) {
	a, err := pyArgs(name, va, "old", "new", "count")
	if err != nil {
		return nil, err
	}
	if a[0] == nil || a[1] == nil || !a[0].IsString() || !a[1].IsString() {
		return nil, errors.New("replace() takes two str arguments")
	}
	n := -1
	if !isNone(a[2]) {
		if !a[2].IsInteger() {
			return nil, errors.New("replace(): count must be an int")
		}
		n = a[2].Integer()
	}
	return strings.Replace(s, a[0].String(), a[1].String(), n), nil
}

// strJoin is str.join(iterable): the items must be strings.
func strJoin(name, s string, va *exec.VarArgs) (any, error) {
	a, err := pyArgs(name, va, "iterable")
	if err != nil {
		return nil, err
	}
	if a[0] == nil {
		return nil, errors.New("join() takes exactly one argument (0 given)")
	}
	items, err := iterate(a[0])
	if err != nil {
		return nil, fmt.Errorf("join(): %w", err)
	}
	parts := make([]string, len(items))
	for i, item := range items {
		if !item.IsString() {
			return nil, fmt.Errorf("sequence item %d: expected str instance, %s found", i, item.String())
		}
		parts[i] = item.String()
	}
	return strings.Join(parts, s), nil
}

// iterate returns the items Python's iter() gives: characters of a string,
// elements of a list, keys of a dict.
func iterate(v *exec.Value) ([]*exec.Value, error) {
	switch {
	case v.IsString():
		var out []*exec.Value
		for _, r := range v.String() {
			out = append(out, exec.AsValue(string(r)))
		}
		return out, nil
	case v.IsList():
		out := make([]*exec.Value, v.Len())
		for i := range out {
			out[i] = v.Index(i)
		}
		return out, nil
	case v.IsDict():
		pairs := dictPairs(v)
		out := make([]*exec.Value, len(pairs))
		for i, p := range pairs {
			out[i] = p.Key
		}
		return out, nil
	}
	return nil, fmt.Errorf("%s is not iterable", v.String())
}

// pyUpper is str.upper, with the full case mappings (ß → SS).
func pyUpper(s string) string { return cases.Upper(language.Und).String(s) }

// pyLower is str.lower.
func pyLower(s string) string { return cases.Lower(language.Und).String(s) }

// isCased reports whether r is a cased character (Lu, Ll or Lt).
func isCased(r rune) bool {
	return unicode.IsUpper(r) || unicode.IsLower(r) || unicode.IsTitle(r)
}

// pyTitle is str.title: the first cased character of every run of cased
// characters in title case, the others in lower case.
func pyTitle(s string) string {
	var b strings.Builder
	prevCased := false
	for _, r := range s {
		if prevCased {
			b.WriteString(pyLower(string(r)))
		} else {
			b.WriteRune(unicode.ToTitle(r))
		}
		prevCased = isCased(r)
	}
	return b.String()
}

// pyCapitalize is str.capitalize: the first character in title case, the
// rest in lower case.
func pyCapitalize(s string) string {
	r, size := utf8.DecodeRuneInString(s)
	if size == 0 {
		return s
	}
	return string(unicode.ToTitle(r)) + pyLower(s[size:])
}

func dictMethods() *exec.MethodSet[map[string]any] {
	return exec.NewMethodSet(map[string]exec.Method[map[string]any]{
		"keys": func(_ map[string]any, self *exec.Value, va *exec.VarArgs) (any, error) {
			if _, err := pyArgs("keys", va); err != nil {
				return nil, err
			}
			pairs := dictPairs(self)
			out := make([]any, len(pairs))
			for i, p := range pairs {
				out[i] = p.Key.Interface()
			}
			return out, nil
		},
		"values": func(_ map[string]any, self *exec.Value, va *exec.VarArgs) (any, error) {
			if _, err := pyArgs("values", va); err != nil {
				return nil, err
			}
			pairs := dictPairs(self)
			out := make([]any, len(pairs))
			for i, p := range pairs {
				out[i] = p.Value.Interface()
			}
			return out, nil
		},
		"items": func(_ map[string]any, self *exec.Value, va *exec.VarArgs) (any, error) {
			if _, err := pyArgs("items", va); err != nil {
				return nil, err
			}
			return dictItems(self), nil
		},
		"get": func(_ map[string]any, self *exec.Value, va *exec.VarArgs) (any, error) {
			a, err := pyArgs("get", va, "key", "default")
			if err != nil {
				return nil, err
			}
			if a[0] == nil {
				return nil, errors.New("get expected at least 1 argument, got 0")
			}
			for _, p := range dictPairs(self) {
				if p.Key.EqualValueTo(a[0]) {
					return p.Value.Interface(), nil
				}
			}
			if a[1] == nil {
				return nil, nil
			}
			return a[1].Interface(), nil
		},
		"copy": func(_ map[string]any, self *exec.Value, va *exec.VarArgs) (any, error) {
			if _, err := pyArgs("copy", va); err != nil {
				return nil, err
			}
			return dictValue(&exec.Dict{Pairs: append([]*exec.Pair(nil), dictPairs(self)...)}), nil
		},
	})
}

func listMethods() *exec.MethodSet[[]any] {
	return exec.NewMethodSet(map[string]exec.Method[[]any]{
		"index": func(_ []any, self *exec.Value, va *exec.VarArgs) (any, error) {
			a, err := pyArgs("index", va, "value")
			if err != nil {
				return nil, err
			}
			if a[0] == nil {
				return nil, errors.New("index expected 1 argument, got 0")
			}
			for i := range self.Len() {
				if self.Index(i).EqualValueTo(a[0]) {
					return i, nil
				}
			}
			return nil, fmt.Errorf("%s is not in list", a[0].String())
		},
		"count": func(_ []any, self *exec.Value, va *exec.VarArgs) (any, error) {
			a, err := pyArgs("count", va, "value")
			if err != nil {
				return nil, err
			}
			if a[0] == nil {
				return nil, errors.New("count() takes exactly one argument (0 given)")
			}
			n := 0
			for i := range self.Len() {
				if self.Index(i).EqualValueTo(a[0]) {
					n++
				}
			}
			return n, nil
		},
		"copy": func(_ []any, self *exec.Value, va *exec.VarArgs) (any, error) {
			if _, err := pyArgs("copy", va); err != nil {
				return nil, err
			}
			out := make([]any, self.Len())
			for i := range out {
				out[i] = self.Index(i).Interface()
			}
			return out, nil
		},
	})
}
