package hints

import (
	"errors"
	"fmt"
)

// Pair maps a student hidden state to a teacher hidden state, by index
// into models.Outputs.Hidden: 0 is the embeddings, i the output of layer
// i, and L (the number of layers) the last state, after the final norm.
type Pair struct {
	Student, Teacher int
}

// String formats the pair as "s<Student>-t<Teacher>", the name of its
// scope in the store.
func (p Pair) String() string { return fmt.Sprintf("s%d-t%d", p.Student, p.Teacher) }

// Map is the default layer mapping, TinyBERT's uniform strategy (Jiao et
// al., "TinyBERT: Distilling BERT for Natural Language Understanding",
// 2020) over hidden states: for a student of Ls layers and a teacher of Lt
// layers, student state i is paired with teacher state
//
//	round(i·Lt/Ls),  i = 0, 1, ..., Ls
//
// (halves rounded up), so the embeddings pair with the embeddings (0 ↔ 0)
// and the last states with each other (Ls ↔ Lt). Drop pairs from the
// result to leave states out (the embeddings, say). Map returns nil when
// either count is not positive.
func Map(studentLayers, teacherLayers int) []Pair {
	if studentLayers <= 0 || teacherLayers <= 0 {
		return nil
	}
	pairs := make([]Pair, 0, studentLayers+1)
	for i := 0; i <= studentLayers; i++ {
		// floor(i·Lt/Ls + 1/2), in integers.
		t := (2*i*teacherLayers + studentLayers) / (2 * studentLayers)
		pairs = append(pairs, Pair{Student: i, Teacher: t})
	}
	return pairs
}

// ValidatePairs checks a layer mapping against a student of studentLayers
// layers and a teacher of teacherLayers layers (hidden states 0..L): it
// must not be empty, every index must be in range and no pair may repeat.
// Errors name the pair (by its position in pairs) and the index at fault.
func ValidatePairs(pairs []Pair, studentLayers, teacherLayers int) error {
	if studentLayers <= 0 || teacherLayers <= 0 {
		return fmt.Errorf("hints: layer counts must be positive (student %d, teacher %d)", studentLayers, teacherLayers)
	}
	if len(pairs) == 0 {
		return errors.New("hints: no layer pairs")
	}
	seen := map[Pair]int{}
	for i, p := range pairs {
		if p.Student < 0 || p.Student > studentLayers {
			return fmt.Errorf("hints: pair %d (%d→%d): student hidden state %d is out of range [0, %d] (the student has %d layers)",
				i, p.Student, p.Teacher, p.Student, studentLayers, studentLayers)
		}
		if p.Teacher < 0 || p.Teacher > teacherLayers {
			return fmt.Errorf("hints: pair %d (%d→%d): teacher hidden state %d is out of range [0, %d] (the teacher has %d layers)",
				i, p.Student, p.Teacher, p.Teacher, teacherLayers, teacherLayers)
		}
		if j, dup := seen[p]; dup {
			return fmt.Errorf("hints: pair %d (%d→%d) repeats pair %d", i, p.Student, p.Teacher, j)
		}
		seen[p] = i
	}
	return nil
}
