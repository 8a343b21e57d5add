package backend

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/gomlx/core/graph"
)

func TestResolve(t *testing.T) {
	t.Setenv(EnvVar, "")
	if got := Resolve("", "  "); got != "auto" {
		t.Errorf("default: %q", got)
	}
	if got := Resolve("", "go"); got != "go" {
		t.Errorf("config value: %q", got)
	}
	if got := Resolve("xla:cuda", "go"); got != "xla:cuda" {
		t.Errorf("flag first: %q", got)
	}
	t.Setenv(EnvVar, "go:ops_sequential")
	if got := Resolve(""); got != "go:ops_sequential" {
		t.Errorf("env: %q", got)
	}
}

func TestGoBackendComputes(t *testing.T) {
	b, info, err := New("go:ops_sequential")
	if err != nil {
		t.Fatal(err)
	}
	if info.Name != "go" || info.Spec != "go:ops_sequential" || info.Description == "" {
		t.Errorf("info %+v", info)
	}
	got := graph.MustExecOnce(b, func(x *graph.Node) *graph.Node {
		return graph.ReduceAllSum(graph.Mul(x, x))
	}, []float32{1, 2, 3})
	if v := got.Value().(float32); v != 14 {
		t.Errorf("sum of squares = %v, want 14", v)
	}
	if got.DType() != dtypes.Float32 {
		t.Errorf("dtype %s", got.DType())
	}
}

func TestBadSpecs(t *testing.T) {
	for _, spec := range []string{"tpu", "auto:x", "go:no_such_option"} {
		if _, _, err := New(spec); err == nil || !strings.Contains(err.Error(), spec) {
			t.Errorf("%q: error %v, want one naming the spec", spec, err)
		}
	}
}

// TestAutoWithoutPlugins checks that auto falls back to the Go backend and
// says why when no plugin can be found.
func TestAutoWithoutPlugins(t *testing.T) {
	empty := t.TempDir()
	t.Setenv("PJRT_PLUGIN_LIBRARY_PATH", empty)
	t.Setenv("HOME", empty)
	t.Setenv("VIRTUAL_ENV", "")
	t.Setenv("CONDA_PREFIX", "")
	t.Setenv("PATH", empty) // no python3 to ask
	if p, _, _ := Discover(); p != "" && !strings.HasPrefix(p, "/usr") {
		t.Skipf("a system-wide plugin exists at %s", p)
	}
	b, info, err := New("auto")
	if err != nil {
		t.Fatal(err)
	}
	_ = b
	if info.Name != "go" || !strings.Contains(info.Why, "no PJRT plugin") {
		t.Errorf("info %+v", info)
	}
}

// TestFindJaxCUDAPlugin builds a fake Python environment holding jax's CUDA
// plugin and the nvidia wheels, and checks what discovery derives from it.
func TestFindJaxCUDAPlugin(t *testing.T) {
	venv := t.TempDir()
	sp := filepath.Join(venv, "lib", "python3.12", "site-packages")
	for _, d := range []string{"jax_plugins/xla_cuda13", "nvidia/cu13/lib", "nvidia/cudnn/lib", "nvidia/nccl/lib"} {
		if err := os.MkdirAll(filepath.Join(sp, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	plugin := filepath.Join(sp, "jax_plugins", "xla_cuda13", "xla_cuda_plugin.so")
	if err := os.WriteFile(plugin, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("VIRTUAL_ENV", venv)
	t.Setenv("HOME", t.TempDir())
	t.Setenv("PATH", t.TempDir())
	got, env := findJaxCUDAPlugin()
	if got != plugin {
		t.Fatalf("plugin %q, want %q", got, plugin)
	}
	if want := "--xla_gpu_cuda_data_dir=" + filepath.Join(sp, "nvidia", "cu13"); env["XLA_FLAGS"] != want {
		t.Errorf("XLA_FLAGS %q, want %q", env["XLA_FLAGS"], want)
	}
	libs := strings.Split(env["LD_LIBRARY_PATH"], ":")
	if len(libs) != 3 || env["GOPJRT_CUDA_CHECKS"] != "0" {
		t.Errorf("env %v", env)
	}
}
