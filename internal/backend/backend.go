// Package backend chooses and creates the GoMLX compute backend lethe runs
// on: the pure-Go backend, or XLA through a PJRT plugin (CPU, CUDA, TPU).
//
// A backend is named by a spec:
//
//	auto                 XLA when a PJRT plugin is found, else the Go backend
//	go[:OPTIONS]         the pure-Go backend, e.g. go:ops_sequential, go:parallelism=-1
//	xla[:PLUGIN][,OPTS]  XLA with a plugin name ("cpu", "cuda") or the path of a .so
//
// The spec comes from a flag or config key, else the environment variable
// LETHE_BACKEND, else "auto". lethe never downloads a plugin on its own: auto
// looks in PJRT_PLUGIN_LIBRARY_PATH, go-xla's folders (/usr/local/lib/go-xla,
// ~/.local/lib/go-xla) and the library path, then in Python environments for
// jax's CUDA plugin (jax_plugins/xla_cuda*/xla_cuda_plugin.so), whose CUDA
// libraries it points XLA at. `lethe setup xla` installs plugins on request.
package backend

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/gomlx/compute"
	"github.com/gomlx/compute/gobackend"
)

// EnvVar is the environment variable that names the backend spec.
const EnvVar = "LETHE_BACKEND"

// Info describes the backend in use.
type Info struct {
	// Spec is the GoMLX configuration the backend was created with, e.g.
	// "go:ops_sequential" or "xla:/path/to/xla_cuda_plugin.so".
	Spec string
	// Name is "go" or "xla".
	Name string
	// Description is the backend's own description of itself and its
	// device.
	Description string
	// Plugin is the PJRT plugin found for XLA ("" for the Go backend).
	Plugin string
	// Env lists the environment variables lethe set for the plugin (and
	// that must be set before the process starts, for LD_LIBRARY_PATH).
	Env map[string]string
	// Why says how auto chose ("" when the spec was explicit).
	Why string
}

// String is one line for logs: "backend xla (plugin ...): description".
func (i Info) String() string {
	s := "backend " + i.Name
	if i.Plugin != "" {
		s += " (plugin " + i.Plugin + ")"
	}
	if i.Why != "" {
		s += " [" + i.Why + "]"
	}
	return s + ": " + i.Description
}

// Resolve returns the spec to use: the first non-empty of the given values
// (typically a flag, then a config key), then $LETHE_BACKEND, then "auto".
func Resolve(specs ...string) string {
	for _, s := range specs {
		if s = strings.TrimSpace(s); s != "" {
			return s
		}
	}
	if s := strings.TrimSpace(os.Getenv(EnvVar)); s != "" {
		return s
	}
	return "auto"
}

// New creates the backend named by spec (see the package documentation).
func New(spec string) (compute.Backend, Info, error) { return newBackend(spec, "") }

// TrainingGoOptions are the pure-Go backend's options NewTraining uses when
// the spec gives none: one op at a time, each using every core, which is
// the fastest schedule for training graphs.
const TrainingGoOptions = "parallelism=-1"

// NewTraining is New for training graphs: a bare "go", or "auto" without a
// PJRT plugin, gets TrainingGoOptions.
func NewTraining(spec string) (compute.Backend, Info, error) {
	return newBackend(spec, TrainingGoOptions)
}

func newBackend(spec, goDefault string) (compute.Backend, Info, error) {
	name, config, _ := strings.Cut(spec, ":")
	switch name {
	case "auto", "":
		if config != "" {
			return nil, Info{}, fmt.Errorf("backend %q: auto takes no options", spec)
		}
		plugin, env, why := Discover()
		if plugin == "" {
			b, info, err := newGo(goDefault)
			info.Why = "auto: " + why + ", using the pure-Go backend"
			return b, info, err
		}
		b, info, err := newXLA(plugin, env)
		if err != nil {
			return nil, info, fmt.Errorf("backend auto: %s, but it failed to load: %w", why, err)
		}
		info.Why = "auto: " + why
		return b, info, nil
	case "go":
		if config == "" {
			config = goDefault
		}
		return newGo(config)
	case "xla":
		plugin := config
		var env map[string]string
		if plugin == "" || strings.HasPrefix(plugin, "cuda") && !strings.Contains(strings.SplitN(plugin, ",", 2)[0], "/") {
			// A bare "xla" or "xla:cuda" also finds jax's CUDA plugin.
			if p, e, _ := Discover(); p != "" && (plugin == "" || isCUDAPlugin(p)) {
				opts := ""
				if _, o, ok := strings.Cut(plugin, ","); ok {
					opts = "," + o
				}
				plugin, env = p+opts, e
			}
		}
		return newXLA(plugin, env)
	}
	return nil, Info{}, fmt.Errorf("backend %q: unknown backend %q (want auto, go[:options] or xla[:plugin])", spec, name)
}

// newGo creates the pure-Go backend. The Go backend prints a line on stdout
// when given "parallelism"; lethe's stdout carries results, so the line is
// sent to stderr instead.
func newGo(config string) (compute.Backend, Info, error) {
	var b compute.Backend
	err := withStdoutToStderr(func() error {
		var err error
		b, err = gobackend.New(config)
		return err
	})
	spec := "go"
	if config != "" {
		spec += ":" + config
	}
	if err != nil {
		return nil, Info{Spec: spec, Name: "go"}, fmt.Errorf("backend %q: %w", spec, err)
	}
	return b, Info{Spec: spec, Name: "go", Description: b.Description()}, nil
}

// withStdoutToStderr runs f with os.Stdout pointing at os.Stderr.
func withStdoutToStderr(f func() error) error {
	saved := os.Stdout
	os.Stdout = os.Stderr
	defer func() { os.Stdout = saved }()
	return f()
}

// ErrNoXLA is returned when lethe was built without XLA (tag noxla or no
// cgo).
var ErrNoXLA = errors.New("this lethe binary was built without XLA support (build tag noxla or CGO_ENABLED=0); use --backend go")

// Log writes the backend line to w (lethe prints it on stderr).
func Log(w io.Writer, info Info) {
	fmt.Fprintf(w, "lethe: %s\n", info)
}
