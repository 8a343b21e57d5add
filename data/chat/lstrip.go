package chat

import (
	"regexp"
	"strings"
)

// gonja's lstrip_blocks strips the spaces before a block or comment tag even
// when other text precedes them on the line ("a  {% if %}" loses its
// spaces), where Jinja2 strips them only when the tag starts its line. So
// gonja runs with lstrip_blocks off and lstripBlocks applies Jinja2's rule to
// the source beforehand.

// rawBegin and rawEnd match {% raw %} and {% endraw %}, whose content is text.
var (
	rawBegin = regexp.MustCompile(`^\{%[-+]?\s*raw\s*([-+]?)%\}`)
	rawEnd   = regexp.MustCompile(`\{%[-+]?\s*endraw\s*[-+]?%\}`)
)

// lstripBlocks removes the spaces and tabs that Jinja2's lstrip_blocks
// removes: those between the start of a line and a {% or {# tag (without a
// '+' or '-' sign), when nothing else precedes the tag on its line. Besides
// that it only turns {% raw %} into {% raw +%}, so newlines (and line
// numbers) stay. Source it cannot
// scan (an unterminated tag) is left for the parser to report.
func lstripBlocks(src string) string {
	var out strings.Builder
	out.Grow(len(src))
	textStart := 0
	// emitText writes the text before a tag at pos, stripped if the tag
	// (opened by open, e.g. "{%") is subject to lstrip_blocks.
	emitText := func(text string, tagPos int) {
		open := src[tagPos : tagPos+2]
		sign := byte(0)
		if tagPos+2 < len(src) {
			sign = src[tagPos+2]
		}
		if open != "{{" && sign != '-' && sign != '+' {
			lineStart := strings.LastIndexByte(text, '\n') + 1
			atLineStart := lineStart > 0 || textStart == 0
			if atLineStart && lineStart < len(text) && strings.TrimLeftFunc(text[lineStart:], pyIsSpace) == "" {
				text = text[:lineStart]
			}
		}
		out.WriteString(text)
	}
	for {
		pos := nextTag(src, textStart)
		if pos < 0 {
			out.WriteString(src[textStart:])
			return out.String()
		}
		emitText(src[textStart:pos], pos)
		if m := rawBegin.FindStringSubmatchIndex(src[pos:]); m != nil {
			contentStart := pos + m[1]
			if m[2] == m[3] {
				// Jinja2 keeps the newline after {% raw %}, which trim_blocks
				// removes after other tags; gonja removes it unless told "+%}".
				out.WriteString(src[pos:pos+m[2]] + "+%}")
			} else {
				out.WriteString(src[pos:contentStart])
			}
			e := rawEnd.FindStringIndex(src[contentStart:])
			if e == nil {
				out.WriteString(src[contentStart:])
				return out.String()
			}
			textStart = contentStart
			emitText(src[contentStart:contentStart+e[0]], contentStart+e[0])
			out.WriteString(src[contentStart+e[0] : contentStart+e[1]])
			textStart = contentStart + e[1]
			continue
		}
		end := tagEnd(src, pos)
		if end < 0 {
			out.WriteString(src[pos:])
			return out.String()
		}
		out.WriteString(src[pos:end])
		textStart = end
	}
}

// nextTag returns the position of the next "{{", "{%" or "{#" at or after
// from, or -1.
func nextTag(src string, from int) int {
	for i := from; i+1 < len(src); i++ {
		if src[i] == '{' && (src[i+1] == '{' || src[i+1] == '%' || src[i+1] == '#') {
			return i
		}
	}
	return -1
}

// tagEnd returns the position just after the tag opened at pos, or -1. A
// comment ends at the first "#}"; in a block or variable tag, the closing
// "%}" or "}}" counts only outside string literals and brackets, as in
// Jinja2's lexer.
func tagEnd(src string, pos int) int {
	kind := src[pos+1]
	if kind == '#' {
		i := strings.Index(src[pos+2:], "#}")
		if i < 0 {
			return -1
		}
		return pos + 2 + i + 2
	}
	closer := "%}"
	if kind == '{' {
		closer = "}}"
	}
	depth := 0
	for i := pos + 2; i < len(src); i++ {
		switch c := src[i]; c {
		case '\'', '"':
			for i++; i < len(src) && src[i] != c; i++ {
				if src[i] == '\\' {
					i++
				}
			}
			if i >= len(src) {
				return -1
			}
		case '(', '[':
			depth++
		case ')', ']':
			depth = max(depth-1, 0)
		case '{':
			depth++
		case '%', '}':
			if depth == 0 && strings.HasPrefix(src[i:], closer) {
				return i + 2
			}
			if c == '}' {
				depth = max(depth-1, 0)
			}
		}
	}
	return -1
}
