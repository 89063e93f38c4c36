// Package testenv helps tests find what they need on this machine: the shared
// models beside the checkout, third-party binaries, free ports and a freshly
// built llmo binary. A missing dependency skips the test locally but fails it
// under CI (CI=true), so CI can never pass by skipping.
package testenv

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"testing"
)

// CI reports whether the tests run under CI.
func CI() bool { v, _ := strconv.ParseBool(os.Getenv("CI")); return v }

// Missing skips the test, or fails it under CI.
func Missing(t testing.TB, format string, args ...any) {
	t.Helper()
	if CI() {
		t.Fatalf("required under CI: "+format, args...)
	}
	t.Skipf("skipping: "+format, args...)
}

// RepoRoot is the directory holding go.mod.
func RepoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

// SharedDir is ../shared beside the checkout (or $LLMO_SHARED).
func SharedDir(t testing.TB) string {
	t.Helper()
	dir := os.Getenv("LLMO_SHARED")
	if dir == "" {
		dir = filepath.Join(RepoRoot(), "..", "shared")
	}
	if _, err := os.Stat(filepath.Join(dir, "models")); err != nil {
		Missing(t, "shared models not found at %s", dir)
	}
	return dir
}

// Model is the path of a file in ../shared/models.
func Model(t testing.TB, name string) string {
	t.Helper()
	p := filepath.Join(SharedDir(t), "models", name)
	if _, err := os.Stat(p); err != nil {
		Missing(t, "model %s not found", p)
	}
	return p
}

// Binary is the path of an executable on PATH (or in the given extra
// directories, such as $HOME/go/bin), or skips/fails the test.
func Binary(t testing.TB, name string) string {
	t.Helper()
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	for _, dir := range goBinDirs() {
		p := filepath.Join(dir, name)
		if st, err := os.Stat(p); err == nil && !st.IsDir() {
			return p
		}
	}
	Missing(t, "%s is not installed (.ci/run installs it)", name)
	return ""
}

func goBinDirs() []string {
	var dirs []string
	if gb := os.Getenv("GOBIN"); gb != "" {
		dirs = append(dirs, gb)
	}
	if gp := os.Getenv("GOPATH"); gp != "" {
		dirs = append(dirs, filepath.Join(gp, "bin"))
	}
	if home, err := os.UserHomeDir(); err == nil {
		dirs = append(dirs, filepath.Join(home, "go", "bin"))
	}
	return dirs
}

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func FreePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

var (
	buildOnce sync.Once
	buildPath string
	buildErr  error
	buildOut  []byte
)

// Llmo builds cmd/llmo once per test binary and returns its path. The binary
// lives in a temporary directory removed when the process exits is not
// guaranteed, so it goes under os.TempDir()/llmo-test-bin-<pid>.
func Llmo(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "llmo-test-bin-")
		if err != nil {
			buildErr = err
			return
		}
		buildPath = filepath.Join(dir, "llmo")
		args := []string{"build", "-o", buildPath}
		if os.Getenv("LLMO_TEST_RACE") == "1" {
			args = append(args, "-race")
		}
		cmd := exec.Command("go", append(args, "./cmd/llmo")...)
		cmd.Dir = RepoRoot()
		buildOut, buildErr = cmd.CombinedOutput()
	})
	if buildErr != nil {
		t.Fatalf("building llmo: %v\n%s", buildErr, buildOut)
	}
	return buildPath
}
