package peft

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/dlclark/regexp2"
)

// AllLinear is the target_modules shorthand for every linear module except
// the output layer (PEFT's INCLUDE_LINEAR_LAYERS_SHORTHAND).
const AllLinear = "all-linear"

// Targets is PEFT's target_modules or exclude_modules: unset, a list of
// names, or one regular expression (a JSON string).
//
// A name in the list matches a module whose name equals it or ends with
// "." + it; the expression (Python syntax) must match the whole module name
// (re.fullmatch). "all-linear" as the expression means every linear module
// but the LM head.
type Targets struct {
	// Names is the list form (nil when Regex is used or nothing is set).
	Names []string
	// Regex is the expression form, used when IsRegex is set.
	Regex   string
	IsRegex bool
}

// NameList returns Targets matching module names or name suffixes.
func NameList(names ...string) Targets { return Targets{Names: names} }

// Regexp returns Targets matching names against a regular expression.
func Regexp(re string) Targets { return Targets{Regex: re, IsRegex: true} }

// IsZero reports whether nothing is set (JSON null).
func (t Targets) IsZero() bool { return !t.IsRegex && t.Names == nil }

// JSON returns the value adapter_config.json holds: null, a list of
// strings or a string.
func (t Targets) JSON() any {
	switch {
	case t.IsRegex:
		return t.Regex
	case t.Names == nil:
		return nil
	}
	out := make([]any, len(t.Names))
	for i, n := range t.Names {
		out[i] = n
	}
	return out
}

// String renders the targets for messages.
func (t Targets) String() string {
	if t.IsRegex {
		return strconv.Quote(t.Regex)
	}
	return fmt.Sprintf("%q", t.Names)
}

// ParseTargets reads a target_modules-like value from decoded JSON (null, a
// string or a list of strings); field names it in errors.
func ParseTargets(v any, field string) (Targets, error) {
	switch x := v.(type) {
	case nil:
		return Targets{}, nil
	case string:
		return Regexp(x), nil
	case []any:
		names := make([]string, 0, len(x))
		for _, e := range x {
			s, ok := e.(string)
			if !ok {
				return Targets{}, fmt.Errorf("%s: want strings, got %v", field, e)
			}
			names = append(names, s)
		}
		return NameList(names...), nil
	}
	return Targets{}, fmt.Errorf("%s: want null, a string or a list of strings, got %v", field, v)
}

// regex caches compiled Python-syntax expressions (dlclark/regexp2 follows
// Python's syntax closely where Go's regexp does not).
var regexCache sync.Map // string -> *regexp2.Regexp

func compile(pattern string) (*regexp2.Regexp, error) {
	if re, ok := regexCache.Load(pattern); ok {
		return re.(*regexp2.Regexp), nil
	}
	re, err := regexp2.Compile(pattern, regexp2.None)
	if err != nil {
		return nil, err
	}
	regexCache.Store(pattern, re)
	return re, nil
}

// FullMatch is Python's re.fullmatch(pattern, s) is not None.
func FullMatch(pattern, s string) (bool, error) {
	re, err := compile(`\A(?:` + pattern + `)\z`)
	if err != nil {
		return false, fmt.Errorf("regular expression %q: %w", pattern, err)
	}
	return re.MatchString(s)
}

// match is Python's re.match: anchored at the start only. It returns the
// first group's text when the pattern has one.
func match(pattern, s string) (bool, string, error) {
	re, err := compile(`\A(?:` + pattern + `)`)
	if err != nil {
		return false, "", fmt.Errorf("regular expression %q: %w", pattern, err)
	}
	m, err := re.FindStringMatch(s)
	if err != nil || m == nil {
		return false, "", err
	}
	g := ""
	if groups := m.Groups(); len(groups) > 1 {
		g = groups[1].String()
	}
	return true, g, nil
}

// Selector decides which modules an adapter wraps, as PEFT's
// check_target_module_exists does.
type Selector struct {
	// Targets is target_modules.
	Targets Targets
	// Exclude is exclude_modules.
	Exclude Targets
	// LayersToTransform restricts list targets to these layer indices (nil:
	// every layer).
	LayersToTransform []int
	// LayersPattern names the module list the layer index follows
	// ("layers", "h"); empty means any.
	LayersPattern []string
	// ModulesToSave are never targeted (they are trained as full copies).
	ModulesToSave []string
}

// Result is the outcome of matching one module name.
type Result int

// The outcomes of Selector.Match.
const (
	NotMatched Result = iota
	Matched
	Excluded
)

// Match checks module name key:
//
//  1. exclude_modules: a regex that fully matches, or a listed name equal
//     to key or a suffix after a dot, excludes it;
//  2. a modules_to_save entry m with re.match(`(^|.*\.)m($|\..*)`, key)
//     excludes it;
//  3. a target regex must fully match; a listed name equal to key matches
//     outright; a listed suffix matches subject to layers_to_transform: the
//     layer index is the first number after `<pattern>.` (any segment when
//     layers_pattern is empty) and must be listed.
func (s *Selector) Match(key string) (Result, error) {
	ex := s.Exclude
	switch {
	case ex.IsRegex:
		ok, err := FullMatch(ex.Regex, key)
		if err != nil {
			return NotMatched, fmt.Errorf("exclude_modules: %w", err)
		}
		if ok {
			return Excluded, nil
		}
	case len(ex.Names) > 0:
		if slices.Contains(ex.Names, key) || hasSuffix(key, ex.Names) {
			return Excluded, nil
		}
	}
	for _, m := range s.ModulesToSave {
		ok, _, err := match(`(^|.*\.)`+m+`($|\..*)`, key)
		if err != nil {
			return NotMatched, fmt.Errorf("modules_to_save: %w", err)
		}
		if ok {
			return Excluded, nil
		}
	}
	t := s.Targets
	if t.IsRegex {
		ok, err := FullMatch(t.Regex, key)
		if err != nil {
			return NotMatched, fmt.Errorf("target_modules: %w", err)
		}
		if ok {
			return Matched, nil
		}
		return NotMatched, nil
	}
	if slices.Contains(t.Names, key) {
		return Matched, nil
	}
	if !hasSuffix(key, t.Names) {
		return NotMatched, nil
	}
	if s.LayersToTransform == nil {
		return Matched, nil
	}
	var idx string
	var found bool
	if len(s.LayersPattern) == 0 {
		ok, g, err := match(`.*?\.[^.]*\.(\d+)\.`, key)
		if err != nil {
			return NotMatched, err
		}
		found, idx = ok, g
	} else {
		for _, p := range s.LayersPattern {
			ok, g, err := match(`.*?\.`+p+`\.(\d+)\.`, key)
			if err != nil {
				return NotMatched, fmt.Errorf("layers_pattern: %w", err)
			}
			if ok {
				found, idx = true, g
				break
			}
		}
	}
	if !found {
		return NotMatched, nil
	}
	n, err := strconv.Atoi(idx)
	if err != nil {
		return NotMatched, nil
	}
	if slices.Contains(s.LayersToTransform, n) {
		return Matched, nil
	}
	return NotMatched, nil
}

func hasSuffix(key string, names []string) bool {
	for _, n := range names {
		if strings.HasSuffix(key, "."+n) {
			return true
		}
	}
	return false
}

// PatternKey returns the first key of a rank_pattern or alpha_pattern (in
// the given order) that matches module name as PEFT's get_pattern_key does:
// re.match(`(.*\.)?(KEY)$`, name).
func PatternKey(keys []string, name string) (string, bool, error) {
	for _, k := range keys {
		ok, _, err := match(`(.*\.)?(`+k+`)$`, name)
		if err != nil {
			return "", false, err
		}
		if ok {
			return k, true, nil
		}
	}
	return "", false, nil
}

// SelectModules returns the modules of mods that sel targets, checking
// every module name of the model (names) as PEFT does: a target that
// matches a module lethe cannot adapt (an embedding, a norm, a whole
// block) is an error naming it, and so is matching nothing. targets names
// the config field in errors.
func SelectModules(sel *Selector, mods []Module, names []string) ([]Module, error) {
	byName := map[string]Module{}
	var linear []string
	for _, m := range mods {
		byName[m.Name] = m
		if m.Name != "lm_head" {
			linear = append(linear, m.Name)
		}
	}
	if sel.Targets.IsRegex && strings.EqualFold(sel.Targets.Regex, AllLinear) {
		cp := *sel
		cp.Targets = NameList(linear...)
		sel = &cp
	}
	var out []Module
	for _, key := range names {
		r, err := sel.Match(key)
		if err != nil {
			return nil, err
		}
		if r != Matched {
			continue
		}
		m, ok := byName[key]
		if !ok {
			return nil, fmt.Errorf("target_modules %s matches module %q, which is not a linear layer (lethe adapts torch Linear and GPT-2 Conv1D modules only)", sel.Targets, key)
		}
		out = append(out, m)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("target_modules %s match no module of the model (module names look like %q)", sel.Targets, firstLinear(mods))
	}
	// Keep the model's (state_dict) order.
	order := map[string]int{}
	for i, m := range mods {
		order[m.Name] = i
	}
	slices.SortFunc(out, func(a, b Module) int { return order[a.Name] - order[b.Name] })
	return out, nil
}

func firstLinear(mods []Module) string {
	if len(mods) == 0 {
		return ""
	}
	return mods[0].Name
}

// SavedModules resolves modules_to_save as PEFT's _set_trainable does: every
// module whose name ends with an entry (a plain string suffix). Matching a
// module that is not a linear layer is an error; entries that match nothing
// are returned as warnings.
func SavedModules(entries []string, mods []Module, names []string) ([]Module, []string, error) {
	byName := map[string]Module{}
	for _, m := range mods {
		byName[m.Name] = m
	}
	var out []Module
	var warnings []string
	for _, e := range entries {
		found := false
		for _, key := range names {
			if !strings.HasSuffix(key, e) {
				continue
			}
			m, ok := byName[key]
			if !ok {
				return nil, nil, fmt.Errorf("modules_to_save %q matches module %q, which is not a linear layer (lethe trains copies of linear layers only)", e, key)
			}
			if !slices.ContainsFunc(out, func(x Module) bool { return x.Name == key }) {
				out = append(out, m)
			}
			found = true
		}
		if !found {
			warnings = append(warnings, fmt.Sprintf("modules_to_save %q matches no module", e))
		}
	}
	return out, warnings, nil
}
