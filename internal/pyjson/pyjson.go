// Package pyjson writes JSON string literals byte for byte as Python's json
// module does (and as serde_json does, which is Python's ensure_ascii=False
// form), so that files lethe writes match the ones the Python stack writes.
package pyjson

import "unicode/utf8"

// Writer is what WriteString writes to (*strings.Builder, *bytes.Buffer).
type Writer interface {
	WriteString(s string) (int, error)
	WriteByte(c byte) error
}

// WriteString writes s as a JSON string literal: '"' and '\\' escaped,
// \b \f \n \r \t in short form, the other control characters as \u00xx
// (lowercase hex). With ensureASCII (json.dumps' default) every character
// outside ' '..'~' is escaped as \uxxxx, with a surrogate pair beyond the
// BMP; without it such characters are written as UTF-8.
func WriteString(w Writer, s string, ensureASCII bool) {
	w.WriteByte('"')
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == '"':
			w.WriteString(`\"`)
		case r == '\\':
			w.WriteString(`\\`)
		case r == '\n':
			w.WriteString(`\n`)
		case r == '\r':
			w.WriteString(`\r`)
		case r == '\t':
			w.WriteString(`\t`)
		case r == '\b':
			w.WriteString(`\b`)
		case r == '\f':
			w.WriteString(`\f`)
		case r < 0x20:
			writeU4(w, r)
		case ensureASCII && r >= 0x7f:
			if r > 0xFFFF {
				r -= 0x10000
				writeU4(w, 0xD800|(r>>10)&0x3FF)
				writeU4(w, 0xDC00|r&0x3FF)
			} else {
				writeU4(w, r)
			}
		default:
			w.WriteString(s[i : i+size])
		}
		i += size
	}
	w.WriteByte('"')
}

func writeU4(w Writer, r rune) {
	const hex = "0123456789abcdef"
	w.WriteString(`\u`)
	for shift := 12; shift >= 0; shift -= 4 {
		w.WriteByte(hex[(r>>shift)&0xF])
	}
}
