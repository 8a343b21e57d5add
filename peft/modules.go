package peft

import (
	"regexp"
	"sort"
	"strings"

	"github.com/lethe-ml/lethe/models"
)

// Module is a linear projection of a model that an adapter can wrap: a torch
// Linear, GPT-2's Conv1D, or the LM head of a model whose head is tied to its
// input embeddings.
type Module struct {
	// Name is the module's name in transformers' named_modules()
	// ("model.layers.0.self_attn.q_proj", "lm_head"), which PEFT matches
	// targets against and builds adapter keys from.
	Name string
	// Hook is the name models.Hooks.Linear receives for it; it differs from
	// Name only for a tied head ("model.embed_tokens" when Name is
	// "lm_head").
	Hook string
	// Weight and Bias name the module's tensors in the model (Bias is "" when
	// the module has none).
	Weight, Bias string
	// In and Out are the input and output features.
	In, Out int
	// Conv1D marks GPT-2's Conv1D, whose checkpoints hold the weight
	// [in, out] (PEFT's fan_in_fan_out).
	Conv1D bool
	// StoredOutIn is set when the model's store holds the weight [out, in]
	// as torch does (a tied head, which is the embedding table); otherwise
	// it holds it [in, out] (see models.Model.Param).
	StoredOutIn bool
	// Tied marks a head that shares its weight with the input embeddings.
	Tied bool
}

var gpt2Conv1D = regexp.MustCompile(`^transformer\.h\.\d+\.(attn\.c_attn|attn\.c_proj|mlp\.c_fc|mlp\.c_proj)\.weight$`)

// Modules lists the linear modules of m in state_dict order, the tied LM
// head (if any) last.
func Modules(m *models.Model) []Module {
	var out []Module
	for _, name := range m.ParamNames() {
		if !strings.HasSuffix(name, ".weight") {
			continue
		}
		v, _ := m.Param(name)
		dims := v.Shape().Dimensions
		if len(dims) != 2 {
			continue
		}
		conv := m.Config.Family == models.FamilyGPT2 && gpt2Conv1D.MatchString(name)
		if !m.Transposed(name) && !conv {
			continue // embeddings
		}
		mod := strings.TrimSuffix(name, ".weight")
		md := Module{Name: mod, Hook: mod, Weight: name, In: dims[0], Out: dims[1], Conv1D: conv}
		if _, ok := m.Param(mod + ".bias"); ok {
			md.Bias = mod + ".bias"
		}
		out = append(out, md)
	}
	if m.Config.TieWordEmbeddings {
		embed := "model.embed_tokens"
		if m.Config.Family == models.FamilyGPT2 {
			embed = "transformer.wte"
		}
		if v, ok := m.Param(embed + ".weight"); ok {
			dims := v.Shape().Dimensions
			out = append(out, Module{Name: "lm_head", Hook: embed, Weight: embed + ".weight",
				In: dims[1], Out: dims[0], StoredOutIn: true, Tied: true})
		}
	}
	return out
}

// ModuleNames lists every module path of m as transformers' named_modules()
// would (each prefix of a tensor name, plus "lm_head" for a tied head),
// sorted; target patterns are checked against all of them, as PEFT does.
func ModuleNames(m *models.Model) []string {
	seen := map[string]bool{}
	for _, name := range m.ParamNames() {
		parts := strings.Split(name, ".")
		for i := 1; i < len(parts); i++ {
			seen[strings.Join(parts[:i], ".")] = true
		}
	}
	if m.Config.TieWordEmbeddings {
		seen["lm_head"] = true
	}
	out := make([]string, 0, len(seen))
	for k := range seen {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// DefaultTargets are PEFT's target modules for a model_type when a config
// names none (TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING).
var DefaultTargets = map[string][]string{
	"llama":   {"q_proj", "v_proj"},
	"mistral": {"q_proj", "v_proj"},
	"mixtral": {"q_proj", "v_proj"},
	"qwen2":   {"q_proj", "v_proj"},
	"qwen3":   {"q_proj", "v_proj"},
	"gemma":   {"q_proj", "v_proj"},
	"gpt2":    {"c_attn"},
}

// KeyPrefix is the prefix of every tensor key in a PEFT adapter file of a
// causal LM ("base_model.model." + module name).
const KeyPrefix = "base_model.model."
