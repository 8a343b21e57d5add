package memstat

import (
	"runtime"
	"testing"
)

// TestPeakCoversAllocation: after touching 64 MiB the peak resident size
// is at least that, and never below the current size.
func TestPeakCoversAllocation(t *testing.T) {
	buf := make([]byte, 64<<20)
	for i := range buf {
		buf[i] = byte(i)
	}
	cur := CurrentRSS()
	peak := PeakRSS()
	runtime.KeepAlive(buf)
	if peak < 64<<20 {
		t.Errorf("peak RSS %d bytes after touching 64 MiB", peak)
	}
	if cur > 0 && peak < cur {
		t.Errorf("peak %d below current %d", peak, cur)
	}
}
