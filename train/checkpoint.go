package train

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/shapes"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"

	"github.com/lethe-ml/lethe/models"
	"github.com/lethe-ml/lethe/models/safetensors"
)

// Checkpoint file names inside a checkpoint folder.
const (
	StateFile   = "state.safetensors"
	TrainerFile = "trainer_state.json"
)

// TrainerState is the host-side state a checkpoint carries besides the
// tensors: where training stands and what the recipe needs to continue
// exactly.
type TrainerState struct {
	// Step is the number of optimizer steps done.
	Step int `json:"step"`
	// Epoch and DataPosition locate the data iterator (DataPosition is a
	// data.Position, as JSON).
	Epoch        int             `json:"epoch"`
	DataPosition json.RawMessage `json:"data_position,omitempty"`
	// BestEval and BadEvals drive early stopping.
	BestEval float64 `json:"best_eval"`
	BadEvals int     `json:"bad_evals"`
	// Tokens counts the trained tokens; Seconds the training time so far.
	Tokens  int64   `json:"tokens"`
	Seconds float64 `json:"seconds"`
	// Extra holds recipe-specific state (e.g. progressive data dropout).
	Extra map[string]json.RawMessage `json:"extra,omitempty"`
}

// stateVars are the variables a checkpoint saves: the trained parameters
// and every variable of the store that is not a frozen model weight
// (optimizer state, adapters, dropout rates, the random generator).
func (t *Trainer) stateVars() map[string]*model.Variable {
	frozen := map[*model.Variable]bool{}
	for _, name := range t.model.ParamNames() {
		v, _ := t.model.Param(name)
		frozen[v] = true
	}
	for _, p := range t.opt.params {
		delete(frozen, p)
	}
	out := map[string]*model.Variable{}
	for v := range t.model.Store.IterVariables() {
		if strings.HasPrefix(v.Path(), "/"+models.FrozenScope+"/") {
			continue // frozen copies (Model.Frozen) are rebuilt, not saved
		}
		if !frozen[v] && v.HasValue() {
			out[v.Path()] = v
		}
	}
	return out
}

// SaveCheckpoint writes the trainer's tensors and state to dir, atomically:
// into a temporary folder renamed into place (an existing dir is
// replaced).
func (t *Trainer) SaveCheckpoint(dir string, st TrainerState) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	parent := filepath.Dir(filepath.Clean(dir))
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return fmt.Errorf("checkpoint: %w", err)
	}
	tmp, err := os.MkdirTemp(parent, "."+filepath.Base(dir)+".tmp*")
	if err != nil {
		return fmt.Errorf("checkpoint: %w", err)
	}
	defer os.RemoveAll(tmp)
	vars := t.stateVars()
	paths := make([]string, 0, len(vars))
	for p := range vars {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	var ts []safetensors.Tensor
	for _, p := range paths {
		val, err := vars[p].Value()
		if err != nil {
			return fmt.Errorf("checkpoint: variable %s: %w", p, err)
		}
		st, err := toSafetensor(p, val)
		if err != nil {
			return fmt.Errorf("checkpoint: %w", err)
		}
		ts = append(ts, st)
	}
	if err := safetensors.Write(filepath.Join(tmp, StateFile), ts, map[string]string{"format": "lethe"}); err != nil {
		return fmt.Errorf("checkpoint: %w", err)
	}
	js, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return fmt.Errorf("checkpoint: %w", err)
	}
	if err := os.WriteFile(filepath.Join(tmp, TrainerFile), append(js, '\n'), 0o644); err != nil {
		return fmt.Errorf("checkpoint: %w", err)
	}
	old := dir + ".old"
	os.RemoveAll(old)
	if _, err := os.Stat(dir); err == nil {
		if err := os.Rename(dir, old); err != nil {
			return fmt.Errorf("checkpoint: %w", err)
		}
	}
	if err := os.Rename(tmp, dir); err != nil {
		os.Rename(old, dir) // put the previous checkpoint back
		return fmt.Errorf("checkpoint: %w", err)
	}
	os.RemoveAll(old)
	return nil
}

// LoadCheckpoint restores the tensors saved by SaveCheckpoint into the
// trainer's variables and returns the trainer state. Every saved variable
// must exist with the same shape, and every variable the trainer would save
// must be in the checkpoint.
func (t *Trainer) LoadCheckpoint(dir string) (TrainerState, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	var st TrainerState
	js, err := os.ReadFile(filepath.Join(dir, TrainerFile))
	if err != nil {
		return st, fmt.Errorf("resume: %w", err)
	}
	if err := json.Unmarshal(js, &st); err != nil {
		return st, fmt.Errorf("resume %s: %w", filepath.Join(dir, TrainerFile), err)
	}
	f, err := safetensors.Open(filepath.Join(dir, StateFile))
	if err != nil {
		return st, fmt.Errorf("resume: %w", err)
	}
	defer f.Close()
	vars := t.stateVars()
	for _, name := range f.Names() {
		v, ok := vars[name]
		if !ok {
			return st, fmt.Errorf("resume %s: variable %s is not part of this training run (different recipe?)", dir, name)
		}
		val, err := fromSafetensor(f, name)
		if err != nil {
			return st, fmt.Errorf("resume %s: %w", dir, err)
		}
		if !val.Shape().Equal(v.Shape()) {
			return st, fmt.Errorf("resume %s: variable %s has shape %s, the run %s", dir, name, val.Shape(), v.Shape())
		}
		if err := v.SetValue(val); err != nil {
			return st, fmt.Errorf("resume %s: variable %s: %w", dir, name, err)
		}
		delete(vars, name)
	}
	for name := range vars {
		if strings.HasPrefix(name, "/grad_accum") {
			continue
		}
		return st, fmt.Errorf("resume %s: variable %s is missing from the checkpoint", dir, name)
	}
	t.model.WeightsChanged()
	return st, nil
}

var toSTDType = map[dtypes.DType]safetensors.DType{
	dtypes.Float32: safetensors.F32, dtypes.Float64: safetensors.F64, dtypes.BFloat16: safetensors.BF16,
	dtypes.Float16: safetensors.F16, dtypes.Int64: safetensors.I64, dtypes.Int32: safetensors.I32,
	dtypes.Uint64: safetensors.U64, dtypes.Uint8: safetensors.U8, dtypes.Bool: safetensors.BOOL,
}

func toSafetensor(name string, t *tensors.Tensor) (safetensors.Tensor, error) {
	dt, ok := toSTDType[t.DType()]
	if !ok {
		return safetensors.Tensor{}, fmt.Errorf("variable %s: dtype %s cannot be saved", name, t.DType())
	}
	var data []byte
	if err := t.ConstBytes(func(b []byte) { data = bytes.Clone(b) }); err != nil {
		return safetensors.Tensor{}, fmt.Errorf("variable %s: %w", name, err)
	}
	return safetensors.Tensor{Name: name, DType: dt, Shape: t.Shape().Dimensions, Data: data}, nil
}

func fromSafetensor(f *safetensors.File, name string) (*tensors.Tensor, error) {
	info, _ := f.Info(name)
	var dt dtypes.DType
	for k, v := range toSTDType {
		if v == info.DType {
			dt = k
		}
	}
	if dt == dtypes.InvalidDType {
		return nil, fmt.Errorf("variable %s: dtype %s is not supported", name, info.DType)
	}
	raw, err := f.Bytes(name)
	if err != nil {
		return nil, err
	}
	t := tensors.FromShape(shapes.Make(dt, info.Shape...))
	if err := t.MutableBytes(func(b []byte) { copy(b, raw) }); err != nil {
		return nil, err
	}
	return t, nil
}
