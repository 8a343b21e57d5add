//go:build noxla || !cgo

package backend

import "github.com/gomlx/compute"

func xlaPlugins() map[string]string { return nil }

func newXLA(plugin string, env map[string]string) (compute.Backend, Info, error) {
	return nil, Info{Name: "xla", Plugin: plugin}, ErrNoXLA
}

// SetupXLA is unavailable without XLA support.
func SetupXLA(plugin, installPath string) error { return ErrNoXLA }
