//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly)

package safetensors

import (
	"fmt"
	"os"
)

// openSource opens path for reads with ReadAt: this platform has no
// syscall.Mmap, so Bytes returns copies instead of views.
func openSource(path string) (source, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	if !st.Mode().IsRegular() {
		f.Close()
		return nil, fmt.Errorf("%w: not a regular file (%v)", ErrFormat, st.Mode().Type())
	}
	return &readAtSource{f: f, n: st.Size()}, nil
}

// syncDir is a no-op where directories cannot be synced portably (Windows).
func syncDir(string) error { return nil }
