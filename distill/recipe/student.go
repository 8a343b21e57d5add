package recipe

import (
	"encoding/json"
	"fmt"
	"os"

	"github.com/lethe-ml/lethe/models"
)

// StudentShape is the shape of a student made from a teacher's
// configuration; zero fields keep the teacher's value.
type StudentShape struct {
	Layers, Hidden, Intermediate, Heads, KVHeads int
}

// InitStudent writes a new student checkpoint to outDir: the teacher's
// config.json with the given shape (the same family, vocabulary and
// tokenizer, so that it can be distilled into), weights initialised at
// random from seed as transformers does (normal, std 0.02), and the
// teacher's tokenizer and generation files.
func InitStudent(teacherDir, outDir string, shape StudentShape, seed uint64) (*models.Config, error) {
	path := teacherDir + "/config.json"
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("init student: %w", err)
	}
	var cfg map[string]any
	if err := json.Unmarshal(raw, &cfg); err != nil {
		return nil, fmt.Errorf("init student: %s: %w", path, err)
	}
	set := func(v int, keys ...string) {
		if v == 0 {
			return
		}
		for _, k := range keys {
			if _, ok := cfg[k]; ok {
				cfg[k] = v
			}
		}
	}
	set(shape.Layers, "num_hidden_layers", "n_layer")
	set(shape.Hidden, "hidden_size", "n_embd")
	set(shape.Intermediate, "intermediate_size", "n_inner")
	set(shape.Heads, "num_attention_heads", "n_head")
	set(shape.KVHeads, "num_key_value_heads")
	if _, ok := cfg["head_dim"]; ok && (shape.Hidden > 0 || shape.Heads > 0) {
		h, _ := cfg["hidden_size"].(float64)
		n, _ := cfg["num_attention_heads"].(float64)
		if shape.Hidden > 0 {
			h = float64(shape.Hidden)
		}
		if shape.Heads > 0 {
			n = float64(shape.Heads)
		}
		if n > 0 {
			cfg["head_dim"] = int(h / n)
		}
	}
	if _, ok := cfg["layer_types"]; ok && shape.Layers > 0 {
		if lt, ok := cfg["layer_types"].([]any); ok && len(lt) >= shape.Layers {
			cfg["layer_types"] = lt[:shape.Layers]
		}
	}
	out, err := json.MarshalIndent(cfg, "", "  ")
	if err != nil {
		return nil, err
	}
	mc, err := models.ParseConfig(out)
	if err != nil {
		return nil, fmt.Errorf("init student: the student's shape: %w", err)
	}
	m, err := models.New(mc, models.LoadOptions{}, seed)
	if err != nil {
		return nil, fmt.Errorf("init student: %w", err)
	}
	if err := m.Export(outDir, models.ExportOptions{}); err != nil {
		return nil, fmt.Errorf("init student: %w", err)
	}
	if err := models.CopyTokenizerFiles(outDir, teacherDir, ""); err != nil {
		return nil, fmt.Errorf("init student: %w", err)
	}
	return mc, nil
}
