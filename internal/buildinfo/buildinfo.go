// Package buildinfo reports the llmo version, set at link time with
// -ldflags "-X github.com/llmo/llmo/internal/buildinfo.Version=v1.2.3".
package buildinfo

import "runtime/debug"

// Version is the release version; "dev" for local builds.
var Version = "dev"

// Commit is the VCS revision the binary was built from, when known.
func Commit() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return ""
	}
	var rev, dirty string
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			if s.Value == "true" {
				dirty = "-dirty"
			}
		}
	}
	if len(rev) > 12 {
		rev = rev[:12]
	}
	if rev == "" {
		return ""
	}
	return rev + dirty
}
