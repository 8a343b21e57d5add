// Package builtin embeds tokenizers that ship inside the lethe binary, so
// that commands have a working default without any download.
package builtin

import (
	_ "embed"
	"fmt"
	"sort"

	"github.com/lethe-ml/lethe/data/tokenizer"
)

//go:embed gpt2.tokenizer.json.gz
var gpt2 []byte

var files = map[string][]byte{"gpt2": gpt2}

// Names lists the embedded tokenizers.
func Names() []string {
	out := make([]string, 0, len(files))
	for n := range files {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// Load returns an embedded tokenizer by name ("gpt2": GPT-2's byte-level
// BPE, 50257 tokens).
func Load(name string) (*tokenizer.Tokenizer, error) {
	data, ok := files[name]
	if !ok {
		return nil, fmt.Errorf("no built-in tokenizer %q (have %v)", name, Names())
	}
	return tokenizer.FromJSONGzip(data, "builtin:"+name)
}
