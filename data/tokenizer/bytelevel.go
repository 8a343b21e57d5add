package tokenizer

import "unicode/utf8"

// GPT-2's byte-level alphabet: every byte is shown as a printable character,
// so that byte-level BPE vocabularies are valid text. Printable Latin-1 bytes
// map to themselves; the others to U+0100 and up, in byte order.
var (
	byteToRune [256]rune
	// runeToByte inverts byteToRune; characters outside the alphabet are absent.
	runeToByte = map[rune]byte{}
	// byteToString[b] is string(byteToRune[b]).
	byteToString [256]string
)

func init() {
	n := 0
	for b := 0; b < 256; b++ {
		printable := ('!' <= b && b <= '~') || (0xA1 <= b && b <= 0xAC) || (0xAE <= b && b <= 0xFF)
		if printable {
			byteToRune[b] = rune(b)
		} else {
			byteToRune[b] = rune(256 + n)
			n++
		}
		runeToByte[byteToRune[b]] = byte(b)
		byteToString[b] = string(byteToRune[b])
	}
}

// byteLevelTransform rewrites every byte of n as its byte-level character,
// aligned to the input character the byte belongs to.
func byteLevelTransform(n *normString) {
	al := n.materialize()
	var b builder
	b.grow(2 * len(n.s))
	for i := 0; i < len(n.s); i++ {
		r := byteToRune[n.s[i]]
		if r < utf8.RuneSelf {
			b.sb.WriteByte(byte(r))
			b.align = append(b.align, al[i])
		} else {
			b.writeRune(r, al[i])
		}
	}
	*n = b.done(n.orig)
}
