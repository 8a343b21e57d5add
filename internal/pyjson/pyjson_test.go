package pyjson

import (
	"strings"
	"testing"
)

// The expected strings are what Python 3's json.dumps(s) and
// json.dumps(s, ensure_ascii=False) print.
func TestWriteString(t *testing.T) {
	for _, c := range []struct{ in, ascii, utf8 string }{
		{"plain", `"plain"`, `"plain"`},
		{"q\"b\\s/", `"q\"b\\s/"`, `"q\"b\\s/"`},
		{"\b\f\n\r\t\x00\x1f\x7f", `"\b\f\n\r\t\u0000\u001f\u007f"`, "\"\\b\\f\\n\\r\\t\\u0000\\u001f\x7f\""},
		{"é日本", `"\u00e9\u65e5\u672c"`, `"é日本"`},
		{"🤗", `"\ud83e\udd17"`, `"🤗"`},
	} {
		var a, u strings.Builder
		WriteString(&a, c.in, true)
		WriteString(&u, c.in, false)
		if a.String() != c.ascii || u.String() != c.utf8 {
			t.Errorf("%q: ascii %s (want %s), utf8 %s (want %s)", c.in, a.String(), c.ascii, u.String(), c.utf8)
		}
	}
}
