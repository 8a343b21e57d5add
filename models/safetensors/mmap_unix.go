//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package safetensors

import (
	"errors"
	"fmt"
	"os"
	"syscall"
)

// mmapSource is a read-only shared mapping of a whole file.
type mmapSource struct {
	data []byte
}

// openSource maps path read-only. The descriptor is closed right away: the
// mapping keeps the file's pages reachable until munmap, even if the path is
// replaced (Write renames over it) or removed.
func openSource(path string) (source, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("%w: not a regular file (%v)", ErrFormat, st.Mode().Type())
	}
	size := st.Size()
	if size == 0 {
		// mmap rejects empty mappings; an empty file is a format error that
		// newFile reports.
		return bytesSource(nil), nil
	}
	if int64(int(size)) != size {
		return nil, fmt.Errorf("file of %d bytes is too large to map on this platform", size)
	}
	data, err := syscall.Mmap(int(f.Fd()), 0, int(size), syscall.PROT_READ, syscall.MAP_SHARED)
	if err != nil {
		return nil, fmt.Errorf("mmap: %w", err)
	}
	return &mmapSource{data: data}, nil
}

func (m *mmapSource) size() int64 { return int64(len(m.data)) }

func (m *mmapSource) view(off, n int64) ([]byte, error) {
	return m.data[off : off+n : off+n], nil
}

func (m *mmapSource) close() error {
	if m.data == nil {
		return nil
	}
	err := syscall.Munmap(m.data)
	m.data = nil
	return err
}

// syncDir makes a rename in dir durable. File systems that cannot sync a
// directory (EINVAL, ENOTSUP) are not an error.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !errors.Is(err, syscall.EINVAL) && !errors.Is(err, errors.ErrUnsupported) {
		return err
	}
	return nil
}
