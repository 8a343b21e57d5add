//go:build !noxla && cgo

package backend

import (
	"fmt"
	"os"

	"github.com/gomlx/compute"
	"github.com/gomlx/go-xla/compute/xla"
	"github.com/gomlx/go-xla/installer"
	"github.com/gomlx/go-xla/pjrt"
)

func init() {
	// lethe never downloads plugins unless asked (lethe setup xla).
	xla.EnableAutoInstall(false)
}

// xlaPlugins lists the PJRT plugins go-xla can find (name -> path).
func xlaPlugins() map[string]string { return pjrt.AvailablePlugins() }

// newXLA creates the XLA backend with plugin (a name or a path, with
// options after commas), after setting env.
func newXLA(plugin string, env map[string]string) (compute.Backend, Info, error) {
	for k, v := range env {
		if k == "LD_LIBRARY_PATH" {
			// The dynamic loader reads it when the process starts: lethe's
			// CLI re-executes itself with it (see ReexecWithPluginEnv).
			continue
		}
		if os.Getenv(k) == "" {
			os.Setenv(k, v)
		}
	}
	spec := "xla"
	if plugin != "" {
		spec += ":" + plugin
	}
	info := Info{Spec: spec, Name: "xla", Plugin: plugin, Env: env}
	b, err := xla.New(plugin)
	if err != nil {
		return nil, info, fmt.Errorf("backend %q: %w", spec, err)
	}
	info.Description = b.Description()
	return b, info, nil
}

// SetupXLA downloads and installs PJRT plugins with go-xla's installer:
// the CPU plugin, plus CUDA or TPU ones when such hardware is detected, or
// only the named plugin. It is what `lethe setup xla` runs.
func SetupXLA(plugin, installPath string) error {
	if plugin == "" {
		return installer.AutoInstall(installPath, true, installer.Normal)
	}
	return installer.AutoInstallPlugin(plugin, installPath, true, installer.Normal)
}
