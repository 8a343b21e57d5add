package models

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"testing"

	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"
)

// TestExportRoundTrip exports every fixture, checks the files against the
// ones transformers wrote (the weights byte for byte, the config field for
// field) and that the exported checkpoint gives identical logits.
func TestExportRoundTrip(t *testing.T) {
	b := testBackend(t)
	for _, arch := range fixtureArchs {
		t.Run(arch, func(t *testing.T) {
			src := filepath.Join("testdata", "hf", arch)
			m := loadFixture(t, arch)
			dir := t.TempDir()
			if err := m.Export(dir, ExportOptions{}); err != nil {
				t.Fatal(err)
			}
			orig, _ := os.ReadFile(filepath.Join(src, "model.safetensors"))
			got, _ := os.ReadFile(filepath.Join(dir, "model.safetensors"))
			if !bytes.Equal(orig, got) {
				t.Errorf("model.safetensors differs from transformers' (%d vs %d bytes)", len(got), len(orig))
			}
			var a, c map[string]any
			origCfg, _ := os.ReadFile(filepath.Join(src, "config.json"))
			gotCfg, _ := os.ReadFile(filepath.Join(dir, "config.json"))
			json.Unmarshal(origCfg, &a)
			json.Unmarshal(gotCfg, &c)
			if !reflect.DeepEqual(a, c) {
				t.Errorf("config.json differs:\n got %s\nwant %s", gotCfg, origCfg)
			}
			m2, err := Load(dir, LoadOptions{})
			if err != nil {
				t.Fatal(err)
			}
			exp := loadExpected(t, arch)
			ids, shape := exp.ints(t, "input_ids")
			logits := func(m *Model) []float32 {
				out, err := model.CallOnce(b, m.Store, func(_ *model.Scope, ids *Node) *Node {
					return m.Forward(Inputs{IDs: ids}, Options{}).Logits
				}, tensors.FromFlatDataAndDimensions(ids, shape...))
				if err != nil {
					t.Fatal(err)
				}
				return flat(t, out)
			}
			if !slices.Equal(logits(m), logits(m2)) {
				t.Error("the exported checkpoint gives different logits")
			}
		})
	}
}
