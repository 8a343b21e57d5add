package tokenizer

// byteTrie maps byte strings to values and finds, for a position in a text,
// every key that starts there. Added tokens and Unigram pieces use it.
type byteTrie[V any] struct {
	next map[uint64]int32 // node<<8 | byte -> child node; node 0 is the root
	vals []V              // value of the key ending at each node
	has  []bool           // whether a key ends at each node
}

func newByteTrie[V any]() byteTrie[V] {
	return byteTrie[V]{next: make(map[uint64]int32), vals: make([]V, 1), has: make([]bool, 1)}
}

// empty reports whether the trie holds no key.
func (t *byteTrie[V]) empty() bool { return len(t.has) == 1 }

// insert adds key s with value v; a key already present keeps its value.
func (t *byteTrie[V]) insert(s string, v V) {
	node := int32(0)
	for i := 0; i < len(s); i++ {
		key := uint64(node)<<8 | uint64(s[i])
		child, ok := t.next[key]
		if !ok {
			child = int32(len(t.has))
			t.next[key] = child
			var zero V
			t.vals = append(t.vals, zero)
			t.has = append(t.has, false)
		}
		node = child
	}
	if !t.has[node] {
		t.vals[node], t.has[node] = v, true
	}
}

// prefixes calls f(end, v) for every key equal to s[start:end], shortest
// first.
func (t *byteTrie[V]) prefixes(s string, start int, f func(end int, v V)) {
	node := int32(0)
	for i := start; i < len(s); i++ {
		child, ok := t.next[uint64(node)<<8|uint64(s[i])]
		if !ok {
			return
		}
		node = child
		if t.has[node] {
			f(i+1, t.vals[node])
		}
	}
}
