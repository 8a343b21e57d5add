// Package config reads recipe files: YAML mapped 1:1 onto typed structs,
// with torchtune-style key=value overrides and a precise error for every
// key the struct does not have.
//
// Keys are the `yaml` tags of the struct fields. A recipe file is checked
// against the type before it is decoded, so a typo such as `optimizer.lrr`
// is reported with the file, line and the keys that are allowed, instead of
// being silently ignored.
package config

import (
	"bytes"
	"fmt"
	"os"
	"reflect"
	"slices"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Load reads the YAML file at path, applies overrides ("a.b.c=value", the
// value parsed as YAML: 3, 1e-4, true, [a, b], {k: v}) and decodes the
// result into out, a pointer to a struct. Unknown keys, in the file or the
// overrides, are errors naming them. path may be empty: the overrides then
// make the whole configuration.
func Load(path string, overrides []string, out any) error {
	root := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
	name := "overrides"
	if path != "" {
		name = path
		raw, err := os.ReadFile(path)
		if err != nil {
			return fmt.Errorf("config: %w", err)
		}
		if len(bytes.TrimSpace(raw)) > 0 {
			var doc yaml.Node
			if err := yaml.Unmarshal(raw, &doc); err != nil {
				return fmt.Errorf("config %s: %w", path, err)
			}
			if len(doc.Content) == 1 {
				root = doc.Content[0]
			}
			if root.Kind != yaml.MappingNode {
				return fmt.Errorf("config %s: the document must be a mapping of keys to values", path)
			}
		}
	}
	t := reflect.TypeOf(out)
	if t == nil || t.Kind() != reflect.Pointer || t.Elem().Kind() != reflect.Struct {
		return fmt.Errorf("config: Load needs a pointer to a struct, got %T", out)
	}
	if err := checkKeys(root, t.Elem(), "", name); err != nil {
		return err
	}
	for _, o := range overrides {
		if err := Override(root, t.Elem(), o); err != nil {
			return err
		}
	}
	dec := yaml.NewDecoder(bytes.NewReader(mustEncode(root)))
	dec.KnownFields(true)
	if err := dec.Decode(out); err != nil {
		return fmt.Errorf("config %s: %w", name, err)
	}
	return nil
}

func mustEncode(n *yaml.Node) []byte {
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	if err := enc.Encode(n); err != nil {
		// Encoding a tree that was decoded or built from parsed scalars
		// cannot fail.
		panic(err)
	}
	enc.Close()
	return buf.Bytes()
}

// Override applies one "a.b.c=value" to the mapping root of a
// configuration of type t, creating the mappings on the way. The key path
// must exist in t.
func Override(root *yaml.Node, t reflect.Type, kv string) error {
	key, value, ok := strings.Cut(kv, "=")
	key = strings.TrimSpace(key)
	if !ok || key == "" {
		return fmt.Errorf("override %q: want key=value, e.g. optimizer.lr=1e-4", kv)
	}
	var val yaml.Node
	if err := yaml.Unmarshal([]byte(value), &val); err != nil {
		return fmt.Errorf("override %s: value %q: %w", key, value, err)
	}
	v := &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!null", Value: "null"}
	if len(val.Content) == 1 {
		v = val.Content[0]
	}
	parts := strings.Split(key, ".")
	node, typ := root, t
	for i, p := range parts {
		here := strings.Join(parts[:i], ".")
		typ = deref(typ)
		var field reflect.Type
		switch typ.Kind() {
		case reflect.Struct:
			f, ok := fieldByKey(typ, p)
			if !ok {
				return unknownKey("override "+key, here, p, typ)
			}
			field = f
		case reflect.Map:
			field = typ.Elem()
		case reflect.Slice, reflect.Array:
			idx, err := strconv.Atoi(p)
			if err != nil || idx < 0 {
				return fmt.Errorf("override %s: %s is a list; %q is not an index", key, orRoot(here), p)
			}
			if node.Kind != yaml.SequenceNode || idx >= len(node.Content) {
				return fmt.Errorf("override %s: %s has no element %d", key, orRoot(here), idx)
			}
			if i == len(parts)-1 {
				if err := checkKeys(v, typ.Elem(), key, "override"); err != nil {
					return err
				}
				node.Content[idx] = v
				return nil
			}
			node, typ = node.Content[idx], typ.Elem()
			continue
		default:
			return fmt.Errorf("override %s: %s is a value, it has no key %q", key, orRoot(here), p)
		}
		if node.Kind != yaml.MappingNode {
			// An explicit null (or a scalar) is replaced by a mapping.
			*node = yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
		}
		var child *yaml.Node
		for j := 0; j+1 < len(node.Content); j += 2 {
			if node.Content[j].Value == p {
				child = node.Content[j+1]
				if i == len(parts)-1 {
					node.Content[j+1] = v
				}
			}
		}
		if i == len(parts)-1 {
			if err := checkKeys(v, field, key, "override"); err != nil {
				return err
			}
			if child == nil {
				node.Content = append(node.Content, &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: p}, v)
			}
			return nil
		}
		if child == nil {
			child = &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
			node.Content = append(node.Content, &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: p}, child)
		}
		node, typ = child, field
	}
	return nil
}

func orRoot(path string) string {
	if path == "" {
		return "the configuration"
	}
	return path
}

var unmarshalerType = reflect.TypeFor[yaml.Unmarshaler]()

// checkKeys walks n alongside type t and reports the first mapping key t
// does not have. where names the source (file or "override").
func checkKeys(n *yaml.Node, t reflect.Type, path, where string) error {
	if n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	if t.Implements(unmarshalerType) || reflect.PointerTo(t).Implements(unmarshalerType) {
		return nil
	}
	t = deref(t)
	switch n.Kind {
	case yaml.MappingNode:
		switch t.Kind() {
		case reflect.Struct:
			for i := 0; i+1 < len(n.Content); i += 2 {
				k, v := n.Content[i], n.Content[i+1]
				if k.Value == "<<" { // merge key
					if err := checkKeys(v, t, path, where); err != nil {
						return err
					}
					continue
				}
				f, ok := fieldByKey(t, k.Value)
				if !ok {
					return unknownKey(fmt.Sprintf("config %s:%d", where, k.Line), path, k.Value, t)
				}
				if err := checkKeys(v, f, join(path, k.Value), where); err != nil {
					return err
				}
			}
		case reflect.Map:
			for i := 0; i+1 < len(n.Content); i += 2 {
				if err := checkKeys(n.Content[i+1], t.Elem(), join(path, n.Content[i].Value), where); err != nil {
					return err
				}
			}
		}
	case yaml.SequenceNode:
		if t.Kind() == reflect.Slice || t.Kind() == reflect.Array {
			for i, c := range n.Content {
				if err := checkKeys(c, t.Elem(), join(path, strconv.Itoa(i)), where); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func deref(t reflect.Type) reflect.Type {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	return t
}

// unknownKey formats the error for a key type t lacks.
func unknownKey(prefix, path, key string, t reflect.Type) error {
	keys := Keys(t)
	in := ""
	if path != "" {
		in = " in " + path
	}
	return fmt.Errorf("%s: unknown key %q%s (known keys: %s)", prefix, key, in, strings.Join(keys, ", "))
}

// Keys lists the YAML keys of struct type t, sorted (inlined structs'
// keys included).
func Keys(t reflect.Type) []string {
	var keys []string
	t = deref(t)
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, opts := tag(f)
		if name == "-" {
			continue
		}
		if slices.Contains(opts, "inline") {
			keys = append(keys, Keys(f.Type)...)
			continue
		}
		keys = append(keys, name)
	}
	slices.Sort(keys)
	return keys
}

// fieldByKey finds the field of struct t with YAML key key.
func fieldByKey(t reflect.Type, key string) (reflect.Type, bool) {
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, opts := tag(f)
		if name == "-" {
			continue
		}
		if slices.Contains(opts, "inline") {
			if ft, ok := fieldByKey(deref(f.Type), key); ok {
				return ft, true
			}
			continue
		}
		if name == key {
			return f.Type, true
		}
	}
	return nil, false
}

// tag returns a field's YAML key (yaml.v3's default: the lowercased field
// name) and options.
func tag(f reflect.StructField) (string, []string) {
	parts := strings.Split(f.Tag.Get("yaml"), ",")
	name := parts[0]
	if name == "" {
		name = strings.ToLower(f.Name)
	}
	return name, parts[1:]
}

// Validator is a recipe that fills its defaults and checks itself.
type Validator interface{ Validate() error }

// LoadValid is Load followed by out.Validate, whose errors are reported as
// "config PATH: ..." ("config overrides: ..." without a file).
func LoadValid(path string, overrides []string, out Validator) error {
	if err := Load(path, overrides, out); err != nil {
		return err
	}
	if err := out.Validate(); err != nil {
		where := path
		if where == "" {
			where = "overrides"
		}
		return fmt.Errorf("config %s: %w", where, err)
	}
	return nil
}
