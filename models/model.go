package models

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync/atomic"

	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/shapes"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"

	"github.com/lethe-ml/lethe/models/safetensors"
)

// Model is a causal language model: its configuration and its weights in a
// GoMLX store, each variable named after its Hugging Face tensor.
type Model struct {
	Config *Config
	// Store holds the weights (and, in training, optimizer state).
	Store *model.Store
	// DType is the compute dtype: Float32, or BFloat16 (norms, attention
	// probabilities and the loss stay in float32).
	DType dtypes.DType
	// Dir is the checkpoint folder the model came from ("" for New).
	Dir string

	params map[string]*model.Variable
	// order is the tensors' order in weightSpecs (the state_dict order).
	order []string
	// transposed holds the torch Linear weights, stored [in, out].
	transposed map[string]bool
	// version counts WeightsChanged calls; compiled generators and scorers
	// rebuild when it moves.
	version atomic.Uint64
}

// WeightsChanged tells the model's Generators and Scorers that its weights
// were changed (by training, merging an adapter, ...): backends that embed
// weights in compiled graphs then recompile.
func (m *Model) WeightsChanged() { m.version.Add(1) }

// LoadOptions configures Load and New.
type LoadOptions struct {
	// DType is the compute dtype: dtypes.Float32 (default) or
	// dtypes.BFloat16.
	DType dtypes.DType
	// WeightDType is the dtype of the stored weights; by default DType.
	// Training in bf16 keeps float32 master weights: DType BFloat16,
	// WeightDType Float32.
	WeightDType dtypes.DType
}

func (o *LoadOptions) fill() error {
	if o.DType == dtypes.InvalidDType {
		o.DType = dtypes.Float32
	}
	if o.WeightDType == dtypes.InvalidDType {
		o.WeightDType = o.DType
	}
	for _, dt := range []dtypes.DType{o.DType, o.WeightDType} {
		if dt != dtypes.Float32 && dt != dtypes.BFloat16 && dt != dtypes.Float16 {
			return fmt.Errorf("dtype %s is not supported (want float32, bfloat16 or float16)", dt)
		}
	}
	return nil
}

// Load reads a checkpoint folder: config.json and model.safetensors (or
// shards through model.safetensors.index.json). Every tensor the
// architecture needs must be there with the right shape, and no unknown
// tensor may be: both are errors naming the tensor.
func Load(dir string, opts LoadOptions) (*Model, error) {
	if err := opts.fill(); err != nil {
		return nil, fmt.Errorf("load %s: %w", dir, err)
	}
	cfg, err := LoadConfig(filepath.Join(dir, "config.json"))
	if err != nil {
		return nil, err
	}
	ckpt, err := safetensors.OpenDir(dir)
	if err != nil {
		return nil, fmt.Errorf("load %s: %w", dir, err)
	}
	defer ckpt.Close()
	m := newEmpty(cfg, opts)
	m.Dir = dir
	specs := weightSpecs(cfg)
	want := make(map[string]weightSpec, len(specs))
	for _, s := range specs {
		want[s.name] = s
	}
	found := map[string]string{} // canonical name -> checkpoint key
	var unexpected []string
	for _, key := range ckpt.Names() {
		if ignoredKeys.MatchString(key) {
			continue
		}
		name := canonicalName(cfg, key)
		if _, ok := want[name]; !ok {
			if name == "lm_head.weight" && cfg.TieWordEmbeddings {
				continue // some tied checkpoints save the head too
			}
			unexpected = append(unexpected, key)
			continue
		}
		found[name] = key
	}
	if len(unexpected) > 0 {
		sort.Strings(unexpected)
		return nil, fmt.Errorf("load %s: %d tensors that a %s model does not have, e.g. %q (is model_type right?)", dir, len(unexpected), cfg.ModelType, unexpected[0])
	}
	for _, s := range specs {
		key, ok := found[s.name]
		if !ok {
			return nil, fmt.Errorf("load %s: tensor %q is missing", dir, s.name)
		}
		info, _ := ckpt.Info(key)
		if !slices.Equal(info.Shape, s.shape) {
			return nil, fmt.Errorf("load %s: tensor %q has shape %v, the config implies %v", dir, key, info.Shape, s.shape)
		}
		t, err := tensorFromCheckpoint(ckpt, key, info, opts.WeightDType)
		if err != nil {
			return nil, fmt.Errorf("load %s: %w", dir, err)
		}
		if s.init == "linear" {
			t = transposeTensor(t)
			m.transposed[s.name] = true
		}
		if err := m.setParam(s.name, t); err != nil {
			return nil, fmt.Errorf("load %s: %w", dir, err)
		}
	}
	return m, nil
}

// New returns a model with the given config and random weights (normal with
// std 0.02 for matrices, ones or zeros for norms and biases), seeded.
func New(cfg *Config, opts LoadOptions, seed uint64) (*Model, error) {
	if err := opts.fill(); err != nil {
		return nil, err
	}
	m := newEmpty(cfg, opts)
	rng := rand.New(rand.NewPCG(seed, 0x1e7e))
	for _, s := range weightSpecs(cfg) {
		n := 1
		for _, d := range s.shape {
			n *= d
		}
		shape := s.shape
		if s.init == "linear" {
			shape = []int{s.shape[1], s.shape[0]}
			m.transposed[s.name] = true
		}
		data := make([]float32, n)
		switch s.init {
		case "normal", "linear":
			for i := range data {
				data[i] = float32(0.02 * rng.NormFloat64())
			}
		case "ones":
			for i := range data {
				data[i] = 1
			}
		}
		t := tensors.FromFlatDataAndDimensions(data, shape...)
		if opts.WeightDType != dtypes.Float32 {
			t = convertTensor(t, opts.WeightDType)
		}
		if err := m.setParam(s.name, t); err != nil {
			return nil, err
		}
	}
	return m, nil
}

func newEmpty(cfg *Config, opts LoadOptions) *Model {
	return &Model{Config: cfg, Store: model.NewStore(), DType: opts.DType, params: map[string]*model.Variable{}, transposed: map[string]bool{}}
}

// setParam creates the variable for a Hugging Face tensor name.
func (m *Model) setParam(name string, t *tensors.Tensor) error {
	parts := strings.Split(name, ".")
	scope := m.Store.RootScope()
	for _, p := range parts[:len(parts)-1] {
		scope = scope.In("%s", p)
	}
	v, err := scope.CreateVariable(parts[len(parts)-1], t)
	if err != nil {
		return fmt.Errorf("tensor %q: %w", name, err)
	}
	m.params[name] = v
	m.order = append(m.order, name)
	return nil
}

// Param returns the variable holding a tensor, by Hugging Face name. The
// weights of torch Linear layers ([out, in] in checkpoints) are stored
// transposed, [in, out]: the layout the Go backend's matrix kernels run
// fastest (2-3x); Transposed says which, Export writes them back as
// [out, in]. GPT-2's Conv1D weights are [in, out] in checkpoints already.
func (m *Model) Param(name string) (*model.Variable, bool) {
	v, ok := m.params[name]
	return v, ok
}

// Transposed reports whether tensor name is a Linear weight stored [in, out].
func (m *Model) Transposed(name string) bool { return m.transposed[name] }

// ParamNames lists the tensors in state_dict order.
func (m *Model) ParamNames() []string { return slices.Clone(m.order) }

// weight returns a tensor's value in graph g in the compute dtype. It
// panics (inside graph building) when the tensor does not exist.
func (m *Model) weight(g *Graph, name string) *Node {
	v, ok := m.params[name]
	if !ok {
		panic(fmt.Errorf("model has no tensor %q", name))
	}
	n := v.NodeValue(g)
	if n.DType() != m.DType {
		n = ConvertDType(n, m.DType)
	}
	return n
}

// optWeight is weight for a tensor that may not exist (nil then).
func (m *Model) optWeight(g *Graph, name string) *Node {
	if _, ok := m.params[name]; !ok {
		return nil
	}
	return m.weight(g, name)
}

// tensorFromCheckpoint reads a checkpoint tensor into a GoMLX tensor of
// dtype dt (float16 checkpoints are converted on load).
func tensorFromCheckpoint(ckpt *safetensors.Checkpoint, key string, info safetensors.TensorInfo, dt dtypes.DType) (*tensors.Tensor, error) {
	src, ok := map[safetensors.DType]dtypes.DType{
		safetensors.F32: dtypes.Float32, safetensors.BF16: dtypes.BFloat16, safetensors.F16: dtypes.Float16,
	}[info.DType]
	if ok && src == dt {
		raw, err := ckpt.Bytes(key)
		if err != nil {
			return nil, err
		}
		t := tensors.FromShape(shapes.Make(dt, info.Shape...))
		if err := t.MutableBytes(func(data []byte) { copy(data, raw) }); err != nil {
			return nil, fmt.Errorf("tensor %q: %w", key, err)
		}
		return t, nil
	}
	vals, err := ckpt.Float32(key)
	if err != nil {
		return nil, err
	}
	t := tensors.FromFlatDataAndDimensions(vals, info.Shape...)
	if dt != dtypes.Float32 {
		t = convertTensor(t, dt)
	}
	return t, nil
}

// convertTensor converts a float32 tensor to bfloat16 or float16 (round to
// nearest even).
func convertTensor(t *tensors.Tensor, dt dtypes.DType) *tensors.Tensor {
	var vals []float32
	t.MustConstFlatData(func(flat any) { vals = flat.([]float32) })
	out := tensors.FromShape(shapes.Make(dt, t.Shape().Dimensions...))
	out.MutableBytes(func(data []byte) {
		for i, v := range vals {
			var bits uint16
			if dt == dtypes.BFloat16 {
				bits = safetensors.Float32ToBF16(v)
			} else {
				bits = safetensors.Float32ToF16(v)
			}
			binary.LittleEndian.PutUint16(data[2*i:], bits)
		}
	})
	return out
}

// transposeTensor transposes a rank-2 tensor of any dtype.
func transposeTensor(t *tensors.Tensor) *tensors.Tensor {
	dims := t.Shape().Dimensions
	rows, cols := dims[0], dims[1]
	size := t.DType().Size()
	out := tensors.FromShape(shapes.Make(t.DType(), cols, rows))
	err := t.ConstBytes(func(src []byte) {
		out.MutableBytes(func(dst []byte) {
			for r := 0; r < rows; r++ {
				for c := 0; c < cols; c++ {
					copy(dst[(c*rows+r)*size:(c*rows+r+1)*size], src[(r*cols+c)*size:(r*cols+c+1)*size])
				}
			}
		})
	})
	if err != nil {
		panic(fmt.Errorf("transpose %s: %w", t.Shape(), err)) // a local tensor: cannot fail
	}
	return out
}

// FrozenScope is the store scope under which Frozen keeps its copies;
// checkpoints leave variables under it out (a frozen copy is rebuilt from
// the checkpoint it was made from).
const FrozenScope = "frozen"

// Frozen returns a copy of m's current weights in m's own store, under
// FrozenScope/name, as a Model with m's configuration and dtype: the frozen
// reference model of unlearning and distillation objectives, which then
// runs in the same graphs as m. The copies are not among m's parameters
// and nothing trains them unless a trainer is given them.
func (m *Model) Frozen(name string) (*Model, error) { return m.FrozenIn(m.Store, name) }

// FrozenIn is Frozen into another store: the copy lives in dst under
// FrozenScope/name, so that a model of another configuration (the teacher
// of distillation) runs in the graphs of the model that owns dst.
func (m *Model) FrozenIn(dst *model.Store, name string) (*Model, error) {
	f := &Model{Config: m.Config, Store: dst, DType: m.DType, Dir: m.Dir, params: map[string]*model.Variable{},
		order: slices.Clone(m.order), transposed: m.transposed}
	for _, key := range m.order {
		v := m.params[key]
		val, err := v.Value()
		if err != nil {
			return nil, fmt.Errorf("frozen copy of %q: %w", key, err)
		}
		parts := strings.Split(key, ".")
		scope := dst.RootScope().In(FrozenScope).In("%s", name)
		for _, p := range parts[:len(parts)-1] {
			scope = scope.In("%s", p)
		}
		cp, err := val.Clone()
		if err != nil {
			return nil, fmt.Errorf("frozen copy of %q: %w", key, err)
		}
		c, err := scope.CreateVariable(parts[len(parts)-1], cp)
		if err != nil {
			return nil, fmt.Errorf("frozen copy of %q: %w", key, err)
		}
		f.params[key] = c
	}
	return f, nil
}
