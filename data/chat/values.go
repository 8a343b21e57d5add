package chat

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"slices"
	"strconv"
	"strings"

	"github.com/nikolalohinski/gonja/v2/exec"
)

// Values handed to a template use one representation per Python type:
// None is nil, bool, int, float64, string, a list is []any and a dict is an
// *exec.Dict, gonja's ordered dict (Python dicts keep insertion order, which
// tojson and .items() show). gonja takes every *exec.Dict for true, so an
// empty dict is an empty map[string]any instead, which is false as in Python.

// dictValue returns d, or an empty map when d has no items (see above).
func dictValue(d *exec.Dict) any {
	if len(d.Pairs) == 0 {
		return map[string]any{}
	}
	return d
}

// dictBuilder builds an ordered dict.
type dictBuilder struct{ d exec.Dict }

func (b *dictBuilder) add(key string, value any) *dictBuilder {
	b.d.Pairs = append(b.d.Pairs, &exec.Pair{Key: exec.AsValue(key), Value: exec.AsValue(value)})
	return b
}

// messagesValue converts messages to a list of dicts (see Message).
func messagesValue(messages []Message) ([]any, error) {
	out := make([]any, len(messages))
	for i, m := range messages {
		msg := (&dictBuilder{}).add("role", m.Role).add("content", m.Content)
		if m.ReasoningContent != "" {
			msg.add("reasoning_content", m.ReasoningContent)
		}
		if m.ToolCalls != nil {
			calls := make([]any, len(m.ToolCalls))
			for j, c := range m.ToolCalls {
				fn := (&dictBuilder{}).add("name", c.Function.Name)
				if len(c.Function.Arguments) > 0 {
					args, err := decodeOrdered(c.Function.Arguments)
					if err != nil {
						return nil, fmt.Errorf("message %d: tool call %d (%s): arguments: %w", i, j, c.Function.Name, err)
					}
					fn.add("arguments", args)
				}
				call := &dictBuilder{}
				if c.ID != "" {
					call.add("id", c.ID)
				}
				typ := c.Type
				if typ == "" {
					typ = "function"
				}
				calls[j] = &call.add("type", typ).add("function", &fn.d).d
			}
			msg.add("tool_calls", calls)
		}
		if m.ToolCallID != "" {
			msg.add("tool_call_id", m.ToolCallID)
		}
		if m.Name != "" {
			msg.add("name", m.Name)
		}
		out[i] = &msg.d
	}
	return out, nil
}

// toTemplateValue converts a Go value given as a template variable to the
// representation above. Go maps get sorted keys; json.RawMessage, and values
// of other types (structs, typed slices and maps), which go through
// encoding/json, keep the order of their JSON encoding.
func toTemplateValue(v any) (any, error) {
	switch x := v.(type) {
	case nil, bool, string, float64:
		return x, nil
	case *exec.Dict:
		return dictValue(x), nil
	case int:
		return x, nil
	case int8, int16, int32, int64, uint, uint8, uint16, uint32, uint64:
		return int(reflect.ValueOf(x).Convert(reflect.TypeFor[int64]()).Int()), nil
	case float32:
		return float64(x), nil
	case json.Number:
		return numberValue(x)
	case json.RawMessage:
		return decodeOrdered(x)
	case Message:
		ms, err := messagesValue([]Message{x})
		if err != nil {
			return nil, err
		}
		return ms[0], nil
	case []Message:
		return messagesValue(x)
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			c, err := toTemplateValue(e)
			if err != nil {
				return nil, fmt.Errorf("[%d]: %w", i, err)
			}
			out[i] = c
		}
		return out, nil
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		d := &exec.Dict{Pairs: make([]*exec.Pair, 0, len(keys))}
		for _, k := range keys {
			c, err := toTemplateValue(x[k])
			if err != nil {
				return nil, fmt.Errorf("[%q]: %w", k, err)
			}
			d.Pairs = append(d.Pairs, &exec.Pair{Key: exec.AsValue(k), Value: exec.AsValue(c)})
		}
		return dictValue(d), nil
	}
	raw, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("convert %T to a template value: %w", v, err)
	}
	return decodeOrdered(raw)
}

// numberValue converts a JSON number to int when it is written as an integer,
// as Python's json module does, and to float64 otherwise. Integers beyond
// int64, which Python keeps exact, become float64.
func numberValue(n json.Number) (any, error) {
	s := string(n)
	if !strings.ContainsAny(s, ".eE") {
		if i, err := strconv.ParseInt(s, 10, 64); err == nil && int64(int(i)) == i {
			return int(i), nil
		}
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return nil, fmt.Errorf("number %s: %w", s, err)
	}
	return f, nil
}

// decodeOrdered decodes JSON keeping the key order of objects.
func decodeOrdered(raw []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	v, err := decodeValue(dec)
	if err != nil {
		return nil, fmt.Errorf("decode JSON: %w", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, errors.New("decode JSON: data after the top-level value")
	}
	return v, nil
}

func decodeValue(dec *json.Decoder) (any, error) {
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	switch t := tok.(type) {
	case json.Delim:
		switch t {
		case '[':
			list := []any{}
			for dec.More() {
				e, err := decodeValue(dec)
				if err != nil {
					return nil, err
				}
				list = append(list, e)
			}
			if _, err := dec.Token(); err != nil {
				return nil, err
			}
			return list, nil
		case '{':
			d := &exec.Dict{Pairs: []*exec.Pair{}}
			for dec.More() {
				k, err := dec.Token()
				if err != nil {
					return nil, err
				}
				key, ok := k.(string)
				if !ok {
					return nil, fmt.Errorf("object key %v is not a string", k)
				}
				v, err := decodeValue(dec)
				if err != nil {
					return nil, err
				}
				// A repeated key keeps its first position and its last value, as in Python.
				if i := slices.IndexFunc(d.Pairs, func(p *exec.Pair) bool { return p.Key.String() == key }); i >= 0 {
					d.Pairs[i].Value = exec.AsValue(v)
					continue
				}
				d.Pairs = append(d.Pairs, &exec.Pair{Key: exec.AsValue(key), Value: exec.AsValue(v)})
			}
			if _, err := dec.Token(); err != nil {
				return nil, err
			}
			return dictValue(d), nil
		}
		return nil, fmt.Errorf("unexpected %v", t)
	case json.Number:
		return numberValue(t)
	default: // nil, bool, string
		return t, nil
	}
}
