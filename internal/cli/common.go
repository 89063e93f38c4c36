package cli

import (
	"os"
	"runtime"
	"time"

	"github.com/llmo/llmo/internal/service"
)

func numCPU() int { return runtime.NumCPU() }

// defaultCommon is the service.Common used by commands that are not services
// themselves (up, status), for their own logging.
func defaultCommon() service.Common {
	return service.Common{Host: "127.0.0.1", LogFormat: "text", LogLevel: "info", DrainTimeout: 30 * time.Second, MaxBodyBytes: 8 << 20}
}

func fileExists(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.Mode().IsRegular()
}
