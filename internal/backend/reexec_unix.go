//go:build unix

package backend

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
)

// reexecGuard marks a process that lethe already re-executed.
const reexecGuard = "LETHE_BACKEND_REEXEC"

// ReexecWithPluginEnv makes sure the dynamic loader will find the CUDA
// libraries of a plugin that spec would pick (jax's CUDA plugin): the loader
// reads LD_LIBRARY_PATH only when a process starts, so when the variable
// lacks the plugin's folders the program is executed again with them. It
// returns only when nothing needed to change or the re-execution failed.
// Only programs (lethe's CLI) should call it, before doing any work.
func ReexecWithPluginEnv(spec string) {
	name, config, _ := strings.Cut(spec, ":")
	if name != "auto" && name != "" && !(name == "xla" && (config == "" || strings.HasPrefix(config, "cuda"))) {
		return
	}
	if os.Getenv(reexecGuard) != "" {
		return
	}
	plugin, env, _ := Discover()
	libs := env["LD_LIBRARY_PATH"]
	if plugin == "" || libs == "" {
		return
	}
	current := filepath.SplitList(os.Getenv("LD_LIBRARY_PATH"))
	var missing []string
	for _, dir := range filepath.SplitList(libs) {
		if !slices.Contains(current, dir) {
			missing = append(missing, dir)
		}
	}
	if len(missing) == 0 {
		return
	}
	self, err := os.Executable()
	if err != nil {
		return
	}
	newEnv := os.Environ()
	ld := strings.Join(append(missing, current...), string(filepath.ListSeparator))
	newEnv = append(newEnv, "LD_LIBRARY_PATH="+strings.Trim(ld, ":"), reexecGuard+"=1")
	for k, v := range env {
		if k != "LD_LIBRARY_PATH" && os.Getenv(k) == "" {
			newEnv = append(newEnv, k+"="+v)
		}
	}
	_ = syscall.Exec(self, os.Args, newEnv)
}
