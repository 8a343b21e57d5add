package chat

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/lethe-ml/lethe/internal/pyjson"
	"github.com/nikolalohinski/gonja/v2/exec"
)

// jsonOptions are the arguments of Python's json.dumps that transformers'
// tojson filter exposes.
type jsonOptions struct {
	ensureASCII bool
	indent      *string // nil: no newlines
	itemSep     string
	keySep      string
	sortKeys    bool
}

// pyJSON encodes a template value exactly as Python's json.dumps does.
func pyJSON(v *exec.Value, opts jsonOptions) (string, error) {
	var b strings.Builder
	if err := writeJSON(&b, v, opts, 0); err != nil {
		return "", err
	}
	return b.String(), nil
}

func writeJSON(b *strings.Builder, v *exec.Value, opts jsonOptions, level int) error {
	switch {
	case v == nil || v.IsNil():
		b.WriteString("null")
	case v.IsError():
		return fmt.Errorf("tojson: %s", v.Error())
	case v.IsBool():
		if v.Bool() {
			b.WriteString("true")
		} else {
			b.WriteString("false")
		}
	case v.IsInteger():
		b.WriteString(strconv.Itoa(v.Integer()))
	case v.IsFloat():
		b.WriteString(pyJSONFloat(v.Float()))
	case v.IsString():
		pyjson.WriteString(b, v.String(), opts.ensureASCII)
	case v.IsList():
		n := v.Len()
		if n == 0 {
			b.WriteString("[]")
			return nil
		}
		b.WriteByte('[')
		for i := range n {
			writeSeparator(b, opts, level+1, i == 0)
			if err := writeJSON(b, v.Index(i), opts, level+1); err != nil {
				return err
			}
		}
		writeClose(b, opts, level, ']')
	case v.IsDict():
		pairs := dictPairs(v)
		if len(pairs) == 0 {
			b.WriteString("{}")
			return nil
		}
		keys := make([]string, len(pairs))
		for i, p := range pairs {
			k, err := jsonKey(p.Key)
			if err != nil {
				return err
			}
			keys[i] = k
		}
		order := make([]int, len(pairs))
		for i := range order {
			order[i] = i
		}
		if opts.sortKeys {
			slices.SortStableFunc(order, func(i, j int) int { return strings.Compare(keys[i], keys[j]) })
		}
		b.WriteByte('{')
		for n, i := range order {
			writeSeparator(b, opts, level+1, n == 0)
			pyjson.WriteString(b, keys[i], opts.ensureASCII)
			b.WriteString(opts.keySep)
			if err := writeJSON(b, pairs[i].Value, opts, level+1); err != nil {
				return err
			}
		}
		writeClose(b, opts, level, '}')
	default:
		return fmt.Errorf("tojson: object of type %s is not JSON serializable", v.Val.Type())
	}
	return nil
}

// writeSeparator writes what precedes an element of a list or dict.
func writeSeparator(b *strings.Builder, opts jsonOptions, level int, first bool) {
	if !first {
		b.WriteString(opts.itemSep)
	}
	if opts.indent != nil {
		b.WriteByte('\n')
		b.WriteString(strings.Repeat(*opts.indent, level))
	}
}

func writeClose(b *strings.Builder, opts jsonOptions, level int, c byte) {
	if opts.indent != nil {
		b.WriteByte('\n')
		b.WriteString(strings.Repeat(*opts.indent, level))
	}
	b.WriteByte(c)
}

// jsonKey converts a dict key as json.dumps does (str, int, float, bool, None).
func jsonKey(k *exec.Value) (string, error) {
	switch {
	case k.IsNil():
		return "null", nil
	case k.IsString():
		return k.String(), nil
	case k.IsBool():
		if k.Bool() {
			return "true", nil
		}
		return "false", nil
	case k.IsInteger():
		return strconv.Itoa(k.Integer()), nil
	case k.IsFloat():
		return pyJSONFloat(k.Float()), nil
	}
	return "", fmt.Errorf("tojson: keys must be str, int, float, bool or None, not %s", k.Val.Type())
}

// dictPairs returns the items of a dict value in iteration order: insertion
// order for ordered dicts, sorted keys for Go maps.
func dictPairs(v *exec.Value) []*exec.Pair {
	if d, ok := asDict(v); ok {
		return d.Pairs
	}
	var pairs []*exec.Pair
	for _, k := range v.Keys() {
		item, _ := v.GetItem(k.Interface())
		pairs = append(pairs, &exec.Pair{Key: k, Value: item})
	}
	slices.SortStableFunc(pairs, func(a, b *exec.Pair) int { return strings.Compare(a.Key.String(), b.Key.String()) })
	return pairs
}

// asDict returns the ordered dict behind v, if it is one.
func asDict(v *exec.Value) (*exec.Dict, bool) {
	switch d := v.Interface().(type) {
	case *exec.Dict:
		return d, d != nil
	case exec.Dict:
		return &d, true
	}
	return nil, false
}

// pyJSONFloat formats f as json.dumps does: repr(f), with NaN, Infinity and
// -Infinity for the non-finite values.
func pyJSONFloat(f float64) string {
	switch {
	case math.IsNaN(f):
		return "NaN"
	case math.IsInf(f, 1):
		return "Infinity"
	case math.IsInf(f, -1):
		return "-Infinity"
	}
	return pyFloatRepr(f)
}

// pyFloatRepr formats a finite float as Python's repr does: the shortest
// digits that round-trip, in positional notation when the decimal exponent is
// in [-4, 16), with at least one digit after the point, otherwise as
// d.ddde±XX.
func pyFloatRepr(f float64) string {
	e := strconv.FormatFloat(f, 'e', -1, 64) // -d.ddde±XX
	mant, expStr, _ := strings.Cut(e, "e")
	exp, _ := strconv.Atoi(expStr)
	sign := ""
	if strings.HasPrefix(mant, "-") {
		sign, mant = "-", mant[1:]
	}
	digits := strings.Replace(mant, ".", "", 1)
	if exp < -4 || exp >= 16 {
		out := digits[:1]
		if len(digits) > 1 {
			out += "." + digits[1:]
		}
		esign := "+"
		if exp < 0 {
			esign, exp = "-", -exp
		}
		return fmt.Sprintf("%s%se%s%02d", sign, out, esign, exp)
	}
	point := exp + 1 // digits before the decimal point
	switch {
	case point <= 0:
		return sign + "0." + strings.Repeat("0", -point) + digits
	case point >= len(digits):
		return sign + digits + strings.Repeat("0", point-len(digits)) + ".0"
	default:
		return sign + digits[:point] + "." + digits[point:]
	}
}
