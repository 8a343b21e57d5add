//go:build !unix

package backend

// ReexecWithPluginEnv does nothing on this platform.
func ReexecWithPluginEnv(spec string) {}
