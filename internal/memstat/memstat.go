// Package memstat reports the process's memory use for benchmarks and run
// summaries.
package memstat

import (
	"bufio"
	"os"
	"runtime"
	"strconv"
	"strings"
)

// PeakRSS returns the peak resident set size of the process in bytes (the
// kernel's VmHWM, which counts memory the Go runtime does not manage, such
// as an XLA plugin's). Where /proc is not available it falls back to the
// memory the Go runtime obtained from the system.
func PeakRSS() int64 {
	if v, ok := procStatus("VmHWM:"); ok {
		return v
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return int64(ms.Sys)
}

// CurrentRSS returns the resident set size now, in bytes (0 if unknown).
func CurrentRSS() int64 {
	v, _ := procStatus("VmRSS:")
	return v
}

// procStatus reads a "kB" field of /proc/self/status.
func procStatus(field string) (int64, bool) {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0, false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		rest, ok := strings.CutPrefix(sc.Text(), field)
		if !ok {
			continue
		}
		kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
		if err != nil {
			return 0, false
		}
		return kb << 10, true
	}
	return 0, false
}
