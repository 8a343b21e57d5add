package tokenizer

import (
	"sort"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// Unicode normalization with Hugging Face's alignments. Hugging Face
// normalizes with the unicode-normalization-alignments crate, whose
// iterators tag every output character with a change (see edit): a
// decomposition's first character replaces its source and the others are
// inserted; a composition replaces its first source and removes the others.
// Token offsets follow from those tags, so lethe computes them the same
// way: decompose character by character, put each run of combining marks in
// canonical order (the tags move with their characters), then recompose with
// the same state machine. The character data comes from x/text's tables.

// normalizeEdits returns the edits that turn s into its normalization form
// f (NFC, NFD, NFKC or NFKD).
func normalizeEdits(s string, f norm.Form) []edit {
	compat := f == norm.NFKC || f == norm.NFKD
	dec := decomposeEdits(s, compat)
	if f == norm.NFD || f == norm.NFKD {
		return dec
	}
	return recomposeEdits(dec)
}

// decomposeEdits is the Decompositions iterator: full decomposition, then
// canonical ordering of each run of non-starters (stable, by combining
// class).
func decomposeEdits(s string, compat bool) []edit {
	out := make([]edit, 0, len(s))
	dform := norm.NFD
	if compat {
		dform = norm.NFKD
	}
	var buf [utf8.UTFMax]byte
	var dbuf []byte
	for _, r := range s {
		if r < 0xA0 {
			out = append(out, edit{r, 0})
			continue
		}
		n := utf8.EncodeRune(buf[:], r)
		dbuf = dform.Append(dbuf[:0], buf[:n]...)
		first := true
		for _, d := range string(dbuf) {
			c := 1
			if first {
				c = 0
			}
			out = append(out, edit{d, c})
			first = false
		}
	}
	// Canonical ordering: stable sort of each run of non-starters.
	for i := 0; i < len(out); {
		if combiningClass(out[i].r) == 0 {
			i++
			continue
		}
		j := i + 1
		for j < len(out) && combiningClass(out[j].r) != 0 {
			j++
		}
		if j-i > 1 {
			run := out[i:j]
			sort.SliceStable(run, func(a, b int) bool { return combiningClass(run[a].r) < combiningClass(run[b].r) })
		}
		i = j
	}
	return out
}

// recomposeEdits is the Recompositions iterator: a starter (the composee)
// absorbs the following characters it composes with unless they are
// blocked; blocked marks wait in a buffer and come out after it.
func recomposeEdits(in []edit) []edit {
	out := make([]edit, 0, len(in))
	var buffer []edit
	var composee edit
	hasComposee := false
	lastCCC := -1 // -1: none
	for _, e := range in {
		class := int(combiningClass(e.r))
		if !hasComposee {
			if class != 0 {
				out = append(out, e)
				continue
			}
			composee, hasComposee = e, true
			continue
		}
		if lastCCC < 0 {
			if r, ok := composePair(composee.r, e.r); ok {
				composee = edit{r, composee.change + e.change - 1}
				continue
			}
			if class == 0 {
				out = append(out, composee)
				composee = e
				continue
			}
			buffer = append(buffer, e)
			lastCCC = class
			continue
		}
		if lastCCC >= class {
			if class == 0 {
				// Blocked by a starter: flush the composee and the buffer.
				out = append(out, composee)
				out = append(out, buffer...)
				buffer = buffer[:0]
				composee = e
				lastCCC = -1
				continue
			}
			buffer = append(buffer, e)
			lastCCC = class
			continue
		}
		if r, ok := composePair(composee.r, e.r); ok {
			composee = edit{r, composee.change + e.change - 1}
			continue
		}
		buffer = append(buffer, e)
		lastCCC = class
	}
	if hasComposee {
		out = append(out, composee)
	}
	return append(out, buffer...)
}

// combiningClass returns the canonical combining class of r.
func combiningClass(r rune) uint8 {
	if r < 0x300 {
		return 0
	}
	var buf [utf8.UTFMax]byte
	n := utf8.EncodeRune(buf[:], r)
	return norm.NFD.Properties(buf[:n]).CCC()
}

// composePair returns the primary composite of a and b, if there is one.
func composePair(a, b rune) (rune, bool) {
	// No composition has a second character below U+0300.
	if b < 0x300 {
		return 0, false
	}
	var buf [2 * utf8.UTFMax]byte
	n := utf8.EncodeRune(buf[:], a)
	n += utf8.EncodeRune(buf[n:], b)
	var out [2 * utf8.UTFMax]byte
	res := norm.NFC.Append(out[:0], buf[:n]...)
	r, size := utf8.DecodeRune(res)
	if size != len(res) || r == utf8.RuneError {
		return 0, false
	}
	return r, true
}
