package data

import (
	"fmt"
	"strings"

	"github.com/lethe-ml/lethe/data/chat"
	"github.com/parquet-go/parquet-go"
)

// scalarColumn is a top-level, non-repeated leaf column.
type scalarColumn struct {
	name  string
	index int // leaf column index in the file
}

// messagesColumn locates the role and content leaves of a list of structs,
// with the definition levels that tell null and empty lists apart (Dremel
// encoding: a value's definition level counts how many optional or repeated
// nodes on its path are present).
type messagesColumn struct {
	name           string
	role, content  scalarColumn // leaf paths are dotted, e.g. messages.list.element.role
	listNonNull    int          // def >= this: the list itself is not null
	listNonEmpty   int          // def >= this: the list has an element here
	elementNonNull int          // def >= this: the element struct is not null
}

// layout is where one file keeps the fields of a shape.
type layout struct {
	shape                    Shape
	text, prompt, completion scalarColumn
	messages                 messagesColumn
	split                    *scalarColumn
}

// columnNames lists the top-level columns of a file, for error messages.
func columnNames(root *parquet.Column) string {
	var names []string
	for _, c := range root.Columns() {
		names = append(names, fmt.Sprintf("%q", c.Name()))
	}
	if len(names) == 0 {
		return "none"
	}
	return strings.Join(names, ", ")
}

// hasColumn reports whether the file has a top-level column called name.
func hasColumn(root *parquet.Column, name string) bool { return root.Column(name) != nil }

// typeName spells a column's type for error messages.
func typeName(c *parquet.Column) string {
	if c.Leaf() {
		return c.Type().String()
	}
	return "group"
}

// stringLeaf checks that c is a string leaf; nested says it is a field of
// a list's elements, so it repeats with the list but must not repeat itself.
func stringLeaf(c *parquet.Column, what string, nested bool) (scalarColumn, error) {
	name := strings.Join(c.Path(), ".")
	switch {
	case !c.Leaf():
		return scalarColumn{}, fmt.Errorf("%s %q is a %s, want a string", what, name, groupKind(c))
	case c.Repeated() || (!nested && c.MaxRepetitionLevel() > 0):
		return scalarColumn{}, fmt.Errorf("%s %q is repeated (a list), want one string", what, name)
	case c.Type().Kind() != parquet.ByteArray:
		return scalarColumn{}, fmt.Errorf("%s %q has type %s, want a string (BYTE_ARRAY)", what, name, c.Type())
	}
	return scalarColumn{name: name, index: c.Index()}, nil
}

// groupKind says whether a group column is a list (or map) or a struct.
func groupKind(c *parquet.Column) string {
	leaf := c
	for !leaf.Leaf() && len(leaf.Columns()) > 0 {
		leaf = leaf.Columns()[0]
	}
	if leaf.MaxRepetitionLevel() > c.MaxRepetitionLevel() {
		return "list (or map)"
	}
	return "struct"
}

// findString resolves a top-level string column.
func findString(root *parquet.Column, name, what string) (scalarColumn, error) {
	c := root.Column(name)
	if c == nil {
		return scalarColumn{}, fmt.Errorf("no %s %q; the columns are %s", what, name, columnNames(root))
	}
	return stringLeaf(c, what, false)
}

// findSplitColumn resolves the column a Split compares against.
func findSplitColumn(root *parquet.Column, name string) (scalarColumn, error) {
	c := root.Column(name)
	if c == nil {
		return scalarColumn{}, fmt.Errorf("no split column %q; the columns are %s", name, columnNames(root))
	}
	if !c.Leaf() || c.MaxRepetitionLevel() > 0 {
		return scalarColumn{}, fmt.Errorf("split column %q is a %s, want a string, integer or boolean", name, typeName(c))
	}
	switch c.Type().Kind() {
	case parquet.ByteArray, parquet.Int32, parquet.Int64, parquet.Boolean:
	default:
		return scalarColumn{}, fmt.Errorf("split column %q has type %s, want a string, integer or boolean", name, c.Type())
	}
	return scalarColumn{name: name, index: c.Index()}, nil
}

// findMessages resolves a list of {role, content} structs. It accepts the
// standard three-level LIST layout (messages.list.element.{role,content}) as
// pyarrow and Spark write it, and the legacy two-level one (a repeated group
// holding role and content directly).
func findMessages(root *parquet.Column, name, role, content string) (messagesColumn, error) {
	node := root.Column(name)
	if node == nil {
		return messagesColumn{}, fmt.Errorf("no messages column %q; the columns are %s", name, columnNames(root))
	}
	m := messagesColumn{name: name}
	def, repeated := 0, false
	for depth := 0; ; depth++ {
		if node.Leaf() {
			what := "a " + node.Type().String()
			if repeated {
				what = "a list of " + node.Type().String()
			}
			return m, fmt.Errorf("messages column %q is %s, want a list of {%s, %s} structs", name, what, role, content)
		}
		if node.Optional() || node.Repeated() {
			def++
		}
		if depth == 0 && node.Optional() {
			m.listNonNull = def
		}
		if node.Repeated() {
			if repeated {
				return m, fmt.Errorf("messages column %q is a list of lists, want a list of {%s, %s} structs", name, role, content)
			}
			repeated = true
			m.listNonEmpty = def
		}
		r, c := node.Column(role), node.Column(content)
		if r != nil && c != nil {
			if !repeated {
				return m, fmt.Errorf("messages column %q is a single struct, want a list of {%s, %s} structs", name, role, content)
			}
			m.elementNonNull = def
			var err error
			if m.role, err = stringLeaf(r, "messages field", true); err != nil {
				return m, err
			}
			if m.content, err = stringLeaf(c, "messages field", true); err != nil {
				return m, err
			}
			return m, nil
		}
		children := node.Columns()
		if len(children) != 1 {
			var fields []string
			for _, ch := range children {
				fields = append(fields, fmt.Sprintf("%q", ch.Name()))
			}
			return m, fmt.Errorf("messages column %q: the list's elements have fields %s, want %q and %q (set source.columns.role and .content)",
				name, strings.Join(fields, ", "), role, content)
		}
		node = children[0]
	}
}

// detectShape picks a shape from the columns present: a messages list, then
// prompt + completion, then text.
func detectShape(root *parquet.Column, cols Columns) (Shape, error) {
	switch {
	case hasColumn(root, cols.Messages):
		return ShapeMessages, nil
	case hasColumn(root, cols.Prompt) && hasColumn(root, cols.Completion):
		return ShapePromptCompletion, nil
	case hasColumn(root, cols.Text):
		return ShapeText, nil
	}
	return "", fmt.Errorf("cannot detect the dataset shape: no column %q (messages), %q + %q (prompt_completion) or %q (text); the columns are %s; set source.shape and source.columns",
		cols.Messages, cols.Prompt, cols.Completion, cols.Text, columnNames(root))
}

// resolveLayout checks that a file's schema holds the columns of shape and
// returns where they are.
func resolveLayout(root *parquet.Column, shape Shape, cfg SourceConfig) (layout, error) {
	l := layout{shape: shape}
	var err error
	switch shape {
	case ShapeText:
		l.text, err = findString(root, cfg.Columns.Text, "text column")
	case ShapePromptCompletion:
		if l.prompt, err = findString(root, cfg.Columns.Prompt, "prompt column"); err == nil {
			l.completion, err = findString(root, cfg.Columns.Completion, "completion column")
		}
	case ShapeMessages:
		l.messages, err = findMessages(root, cfg.Columns.Messages, cfg.Columns.Role, cfg.Columns.Content)
	default:
		err = fmt.Errorf("unknown shape %q", shape)
	}
	if err != nil {
		return l, err
	}
	if cfg.Split.Column != "" {
		s, err := findSplitColumn(root, cfg.Split.Column)
		if err != nil {
			return l, err
		}
		l.split = &s
	}
	return l, nil
}

// leaves lists the leaf columns a layout reads, in a fixed order that
// decodeRow relies on.
func (l layout) leaves() []scalarColumn {
	var out []scalarColumn
	switch l.shape {
	case ShapeText:
		out = append(out, l.text)
	case ShapePromptCompletion:
		out = append(out, l.prompt, l.completion)
	case ShapeMessages:
		out = append(out, l.messages.role, l.messages.content)
	}
	if l.split != nil {
		out = append(out, *l.split)
	}
	return out
}

// decodeRow fills ex from the cells of one row, one slice per leaf in the
// order of l.leaves(). null names the first null field, if any.
func (l layout) decodeRow(cells [][]cell, ex *Example) (null string, err error) {
	ex.Shape = l.shape
	scalar := func(i int, name string, dst *string) {
		c := cells[i][0]
		*dst = c.s
		if c.null && null == "" {
			null = name
		}
	}
	next := 0
	switch l.shape {
	case ShapeText:
		scalar(0, l.text.name, &ex.Text)
		next = 1
	case ShapePromptCompletion:
		scalar(0, l.prompt.name, &ex.Prompt)
		scalar(1, l.completion.name, &ex.Completion)
		next = 2
	case ShapeMessages:
		null, err = l.messages.decode(cells[0], cells[1], ex)
		next = 2
	}
	if l.split != nil {
		ex.Split = cells[next][0].s
	}
	return null, err
}

// decode assembles the messages of one row from its role and content cells.
func (m messagesColumn) decode(roles, contents []cell, ex *Example) (null string, err error) {
	if len(roles) != len(contents) {
		return "", fmt.Errorf("columns %q and %q disagree on the number of messages (%d and %d): %w",
			m.role.name, m.content.name, len(roles), len(contents), parquet.ErrCorrupted)
	}
	ex.Messages = nil
	for k, r := range roles {
		switch {
		case r.def < m.listNonNull:
			return m.name, nil
		case r.def < m.listNonEmpty:
			continue // an empty list has one placeholder value
		case r.def < m.elementNonNull:
			null = fmt.Sprintf("%s[%d]", m.name, k)
			continue
		case r.null && null == "":
			null = fmt.Sprintf("%s[%d].%s", m.name, k, m.role.name[strings.LastIndexByte(m.role.name, '.')+1:])
		}
		ex.Messages = append(ex.Messages, chat.Message{Role: r.s, Content: contents[k].s})
	}
	return null, nil
}
