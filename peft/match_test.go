package peft

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"

	. "github.com/gomlx/gomlx/core/graph"

	"github.com/lethe-ml/lethe/models"
)

func TestSelectorMatch(t *testing.T) {
	q0 := "model.layers.0.self_attn.q_proj"
	q1 := "model.layers.1.self_attn.q_proj"
	up1 := "model.layers.1.mlp.up_proj"
	expert := "model.layers.1.block_sparse_moe.experts.0.w1"
	cases := []struct {
		name string
		sel  Selector
		key  string
		want Result
	}{
		{"suffix", Selector{Targets: NameList("q_proj")}, q0, Matched},
		{"suffix needs a dot", Selector{Targets: NameList("proj")}, q0, NotMatched},
		{"full name", Selector{Targets: NameList(q0)}, q0, Matched},
		{"regex full match", Selector{Targets: Regexp(`.*\.(q|v)_proj`)}, q1, Matched},
		{"regex must match all", Selector{Targets: Regexp(`q_proj`)}, q1, NotMatched},
		{"regex lookahead (Python syntax)", Selector{Targets: Regexp(`.*layers\.(?!0\.).*q_proj`)}, q0, NotMatched},
		{"exclude list", Selector{Targets: NameList("q_proj"), Exclude: NameList("layers.0.self_attn.q_proj")}, q0, Excluded},
		{"exclude regex", Selector{Targets: NameList("q_proj"), Exclude: Regexp(`.*\.1\..*`)}, q1, Excluded},
		{"layers_to_transform", Selector{Targets: NameList("q_proj"), LayersToTransform: []int{1}}, q0, NotMatched},
		{"layers_to_transform hit", Selector{Targets: NameList("q_proj"), LayersToTransform: []int{1}}, q1, Matched},
		{"layers_pattern", Selector{Targets: NameList("up_proj"), LayersToTransform: []int{1}, LayersPattern: []string{"layers"}}, up1, Matched},
		{"layers_pattern miss", Selector{Targets: NameList("up_proj"), LayersToTransform: []int{1}, LayersPattern: []string{"h"}}, up1, NotMatched},
		{"first index is the layer, not the expert", Selector{Targets: NameList("w1"), LayersToTransform: []int{1}}, expert, Matched},
		{"full names ignore layers", Selector{Targets: NameList(q0), LayersToTransform: []int{1}}, q0, Matched},
		{"modules_to_save excluded", Selector{Targets: NameList("q_proj"), ModulesToSave: []string{"self_attn"}}, q0, Excluded},
	}
	for _, c := range cases {
		got, err := c.sel.Match(c.key)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if got != c.want {
			t.Errorf("%s: Match(%q) = %d, want %d", c.name, c.key, got, c.want)
		}
	}
	if _, err := (&Selector{Targets: Regexp(`(`)}).Match(q0); err == nil || !strings.Contains(err.Error(), "target_modules") {
		t.Errorf("bad regex: %v", err)
	}
}

func TestPatternKey(t *testing.T) {
	keys := []string{"layers.0.self_attn.q_proj", "v_proj", `.*mlp.*`}
	for _, c := range []struct{ name, want string }{
		{"model.layers.0.self_attn.q_proj", "layers.0.self_attn.q_proj"},
		{"model.layers.1.self_attn.q_proj", ""},
		{"model.layers.1.self_attn.v_proj", "v_proj"},
		{"model.layers.1.mlp.down_proj", `.*mlp.*`},
		{"model.layers.1.self_attn.xv_proj", ""},
	} {
		got, ok, err := PatternKey(keys, c.name)
		if err != nil {
			t.Fatal(err)
		}
		if got != c.want || ok != (c.want != "") {
			t.Errorf("PatternKey(%q) = %q, %v; want %q", c.name, got, ok, c.want)
		}
	}
}

func loadFixture(t *testing.T, arch string) *models.Model {
	t.Helper()
	m, err := models.Load(filepath.Join("..", "models", "testdata", "hf", arch), models.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestModules(t *testing.T) {
	m := loadFixture(t, "gpt2")
	mods := Modules(m)
	var conv, tied int
	for _, md := range mods {
		if md.Conv1D {
			conv++
		}
		if md.Tied {
			tied++
			if md.Name != "lm_head" || md.Hook != "transformer.wte" || !md.StoredOutIn || md.Out != 320 || md.In != 64 {
				t.Errorf("tied head %+v", md)
			}
		}
	}
	if conv != 8 || tied != 1 || len(mods) != 9 {
		t.Errorf("gpt2: %d modules, %d Conv1D, %d tied", len(mods), conv, tied)
	}
	names := ModuleNames(m)
	sel := &Selector{Targets: NameList("c_attn", "c_proj", "c_fc")}
	got, err := SelectModules(sel, mods, names)
	if err != nil || len(got) != 8 {
		t.Fatalf("select: %d, %v", len(got), err)
	}
	// A target that is not a linear layer, and one that matches nothing.
	if _, err := SelectModules(&Selector{Targets: NameList("wte")}, mods, names); err == nil || !strings.Contains(err.Error(), "not a linear layer") {
		t.Errorf("embedding target: %v", err)
	}
	if _, err := SelectModules(&Selector{Targets: NameList("q_proj")}, mods, names); err == nil || !strings.Contains(err.Error(), "match no module") {
		t.Errorf("no match: %v", err)
	}
	llama := loadFixture(t, "llama")
	all, err := SelectModules(&Selector{Targets: Regexp(AllLinear)}, Modules(llama), ModuleNames(llama))
	if err != nil || len(all) != 14 || slices.ContainsFunc(all, func(m Module) bool { return m.Name == "lm_head" }) {
		t.Errorf("all-linear: %d modules, %v", len(all), err)
	}
	saved, warns, err := SavedModules([]string{"lm_head", "nothing"}, Modules(llama), ModuleNames(llama))
	if err != nil || len(saved) != 1 || saved[0].Name != "lm_head" || len(warns) != 1 {
		t.Errorf("modules_to_save: %v %q %v", saved, warns, err)
	}
	if _, _, err := SavedModules([]string{"embed_tokens"}, Modules(llama), ModuleNames(llama)); err == nil {
		t.Error("modules_to_save of an embedding should be an error")
	}
}

func TestComposeHooks(t *testing.T) {
	var trace []string
	h1 := models.Hooks{Linear: func(name string, x, y *Node) *Node { trace = append(trace, "1:"+name); return y }}
	h2 := models.Hooks{Linear: func(name string, x, y *Node) *Node { trace = append(trace, "2:"+name); return y },
		Embeddings: func(x *Node) *Node { trace = append(trace, "emb"); return x }}
	c := ComposeHooks(h1, models.Hooks{}, h2)
	if c.Layer != nil || c.Weight != nil || c.Linear == nil || c.Embeddings == nil {
		t.Fatal("wrong hooks set")
	}
	c.Linear("q", nil, nil)
	c.Embeddings(nil)
	if strings.Join(trace, " ") != "1:q 2:q emb" {
		t.Errorf("trace %q", trace)
	}
	if e := ComposeHooks(); e.Linear != nil || e.Embeddings != nil {
		t.Error("empty composition should set nothing")
	}
}
