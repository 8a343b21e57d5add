package finetune

import (
	"path/filepath"

	"github.com/gomlx/gomlx/ml/model"

	"github.com/lethe-ml/lethe/models"
)

// tuner is what is trained: the whole model, or adapters on a frozen one.
type tuner interface {
	// Hooks are the model hooks of training (train) or evaluation graphs.
	Hooks(train bool) models.Hooks
	// Params and Vars are train.TrainerOptions' Params and Vars.
	Params() []string
	Vars() map[string]*model.Variable
	// Trainable counts the trained scalars.
	Trainable() int64
	// Warnings are notices about the adapter's configuration (unknown keys
	// of a loaded adapter_config.json, settings PEFT would change).
	Warnings() []string
	// Save writes the result into the run folder and records where in res.
	Save(dir string, out OutputConfig, res *Result) error
}

// fullTuner trains every weight of the model.
type fullTuner struct{ m *models.Model }

func (t fullTuner) Hooks(bool) models.Hooks          { return models.Hooks{} }
func (t fullTuner) Params() []string                 { return t.m.ParamNames() }
func (t fullTuner) Vars() map[string]*model.Variable { return nil }
func (t fullTuner) Warnings() []string               { return nil }

func (t fullTuner) Trainable() int64 {
	var n int64
	for _, name := range t.m.ParamNames() {
		v, _ := t.m.Param(name)
		n += int64(v.Shape().Size())
	}
	return n
}

func (t fullTuner) Save(dir string, out OutputConfig, res *Result) error {
	if out.SaveModel != nil && !*out.SaveModel {
		return nil
	}
	res.Model = filepath.Join(dir, ModelDir)
	return t.m.Export(res.Model, models.ExportOptions{})
}
