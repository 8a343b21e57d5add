// Package buildinfo reports the version of the lethe binary and of the
// toolchain that built it.
package buildinfo

import (
	"fmt"
	"runtime"
	"runtime/debug"
)

// Version is lethe's release version. Release builds override it with
// -ldflags "-X github.com/lethe-ml/lethe/internal/buildinfo.Version=v0.1.0".
var Version = "v0.0.0-dev"

// Info describes a lethe build.
type Info struct {
	Version   string `json:"version"`
	GoVersion string `json:"go_version"`
	Platform  string `json:"platform"`
	Commit    string `json:"commit,omitempty"`
	Modified  bool   `json:"modified,omitempty"`
	// Experiments lists the GOEXPERIMENT settings baked into the binary
	// (lethe's numeric code is only fast with "simd").
	Experiments string `json:"goexperiment,omitempty"`
}

// Read returns the build information of the running binary.
func Read() Info {
	info := Info{
		Version:   Version,
		GoVersion: runtime.Version(),
		Platform:  runtime.GOOS + "/" + runtime.GOARCH,
	}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return info
	}
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			info.Commit = s.Value
		case "vcs.modified":
			info.Modified = s.Value == "true"
		case "GOEXPERIMENT":
			info.Experiments = s.Value
		}
	}
	return info
}

// String formats the information as one line.
func (i Info) String() string {
	s := fmt.Sprintf("lethe %s (%s, %s", i.Version, i.GoVersion, i.Platform)
	if i.Experiments != "" {
		s += ", GOEXPERIMENT=" + i.Experiments
	}
	if i.Commit != "" {
		c := i.Commit
		if len(c) > 12 {
			c = c[:12]
		}
		s += ", commit " + c
		if i.Modified {
			s += "+dirty"
		}
	}
	return s + ")"
}
