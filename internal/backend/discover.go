package backend

import (
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// Discover looks for a PJRT plugin, without downloading anything. It
// returns the plugin (a name known to go-xla, or a path), the environment
// variables the plugin needs, and a sentence saying what was found.
func Discover() (plugin string, env map[string]string, why string) {
	if plugins := xlaPlugins(); len(plugins) > 0 {
		// Prefer an accelerator over XLA's CPU plugin.
		names := make([]string, 0, len(plugins))
		for n := range plugins {
			names = append(names, n)
		}
		sort.Slice(names, func(i, j int) bool {
			return pluginRank(names[i]) < pluginRank(names[j]) || pluginRank(names[i]) == pluginRank(names[j]) && names[i] < names[j]
		})
		best := names[0]
		if !strings.HasPrefix(best, "cpu") {
			return plugins[best], nil, "found PJRT plugin " + best + " at " + plugins[best]
		}
		if jax, env := findJaxCUDAPlugin(); jax != "" {
			return jax, env, "found jax's CUDA plugin at " + jax
		}
		return plugins[best], nil, "found PJRT plugin " + best + " at " + plugins[best]
	}
	if jax, env := findJaxCUDAPlugin(); jax != "" {
		return jax, env, "found jax's CUDA plugin at " + jax
	}
	return "", nil, "no PJRT plugin found (PJRT_PLUGIN_LIBRARY_PATH, go-xla's folders, Python environments)"
}

func pluginRank(name string) int {
	switch {
	case strings.HasPrefix(name, "cuda"), strings.HasPrefix(name, "rocm"), strings.HasPrefix(name, "tpu"):
		return 0
	case strings.HasPrefix(name, "cpu"):
		return 2
	}
	return 1
}

func isCUDAPlugin(p string) bool { return strings.Contains(filepath.Base(p), "cuda") }

// findJaxCUDAPlugin looks for jax's CUDA PJRT plugin in the site-packages
// folders of Python environments and returns it with the environment it
// needs: XLA_FLAGS pointing at the CUDA data folder of the nvidia wheels and
// LD_LIBRARY_PATH holding their lib folders (the recipe in shared/README.md).
func findJaxCUDAPlugin() (string, map[string]string) {
	for _, sp := range sitePackages() {
		matches, _ := filepath.Glob(filepath.Join(sp, "jax_plugins", "xla_cuda*", "xla_cuda_plugin.so"))
		if len(matches) == 0 {
			continue
		}
		sort.Sort(sort.Reverse(sort.StringSlice(matches))) // newest CUDA first (cuda13 > cuda12)
		plugin := matches[0]
		env := map[string]string{"GOPJRT_CUDA_CHECKS": "0"}
		cuda := "cu13"
		if strings.Contains(plugin, "cuda12") {
			cuda = "cuda_nvcc"
		}
		if dir := filepath.Join(sp, "nvidia", cuda); isDir(dir) {
			env["XLA_FLAGS"] = "--xla_gpu_cuda_data_dir=" + dir
		}
		var libs []string
		filepath.WalkDir(filepath.Join(sp, "nvidia"), func(path string, d os.DirEntry, err error) error {
			if err != nil {
				return nil
			}
			if d.IsDir() && d.Name() == "lib" {
				libs = append(libs, path)
				return filepath.SkipDir
			}
			if d.IsDir() && strings.Count(strings.TrimPrefix(path, sp), string(filepath.Separator)) > 4 {
				return filepath.SkipDir
			}
			return nil
		})
		if len(libs) > 0 {
			sort.Strings(libs)
			env["LD_LIBRARY_PATH"] = strings.Join(libs, ":")
		}
		return plugin, env
	}
	return "", nil
}

// sitePackages lists candidate Python site-packages folders: the active
// virtual or conda environment, the user's, the system's and pyenv's, then
// whatever python3 itself reports.
func sitePackages() []string {
	var globs []string
	for _, prefix := range []string{os.Getenv("VIRTUAL_ENV"), os.Getenv("CONDA_PREFIX")} {
		if prefix != "" {
			globs = append(globs, filepath.Join(prefix, "lib", "python3*", "site-packages"))
		}
	}
	if home, err := os.UserHomeDir(); err == nil {
		globs = append(globs,
			filepath.Join(home, ".local", "lib", "python3*", "site-packages"),
			filepath.Join(home, ".pyenv", "versions", "*", "lib", "python3*", "site-packages"),
			filepath.Join(home, "miniconda3", "lib", "python3*", "site-packages"),
			filepath.Join(home, "anaconda3", "lib", "python3*", "site-packages"))
	}
	globs = append(globs,
		"/usr/local/lib/python3*/site-packages", "/usr/local/lib/python3*/dist-packages",
		"/usr/lib/python3*/site-packages", "/usr/lib/python3/dist-packages",
		"/opt/conda/lib/python3*/site-packages")
	seen := map[string]bool{}
	var out []string
	add := func(dir string) {
		if dir != "" && !seen[dir] && isDir(dir) {
			seen[dir] = true
			out = append(out, dir)
		}
	}
	for _, g := range globs {
		matches, _ := filepath.Glob(g)
		for _, m := range matches {
			add(m)
		}
	}
	for _, d := range pythonSitePackages() {
		add(d)
	}
	return out
}

// pythonSitePackages asks python3 for its site-packages folders (bounded
// to two seconds; none if python3 is missing).
func pythonSitePackages() []string {
	py, err := exec.LookPath("python3")
	if err != nil {
		return nil
	}
	cmd := exec.Command(py, "-c", "import site,sys;print('\\n'.join(site.getsitepackages()+[site.getusersitepackages()]))")
	done := make(chan struct{})
	var out []byte
	go func() {
		out, _ = cmd.Output()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(2 * time.Second):
		if cmd.Process != nil {
			cmd.Process.Kill()
		}
		<-done
	}
	return strings.Fields(string(out))
}

func isDir(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.IsDir()
}
