// Package storagetest starts the third-party servers the storage tests run
// against: versitygw (a real S3 server, posix mode) and Debian's
// docker-registry (CNCF Distribution, the reference registry).
package storagetest

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/llmo/llmo/internal/testenv"
)

// S3 describes a running S3 server.
type S3 struct {
	Endpoint, Bucket, Region, AccessKey, SecretKey string
	// Dir is versitygw's posix root: object KEY of Bucket is Dir/Bucket/KEY.
	Dir string
}

// Versity starts versitygw in posix mode on a temp dir until the test ends.
func Versity(t testing.TB) S3 {
	t.Helper()
	bin := testenv.Binary(t, "versitygw")
	dir := t.TempDir()
	port := testenv.FreePort(t)
	cmd := exec.Command(bin, "--access", "llmotest", "--secret", "llmotestsecret", "--port", fmt.Sprintf("127.0.0.1:%d", port), "posix", dir)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	WaitTCP(t, fmt.Sprintf("127.0.0.1:%d", port), &out)
	return S3{Endpoint: fmt.Sprintf("http://127.0.0.1:%d", port), Bucket: "llmo-test", Region: "us-east-1",
		AccessKey: "llmotest", SecretKey: "llmotestsecret", Dir: dir}
}

// DockerRegistry runs Debian's docker-registry with a temp config and
// returns its base URL.
func DockerRegistry(t testing.TB) string {
	t.Helper()
	bin := testenv.Binary(t, "docker-registry")
	dir := t.TempDir()
	port := testenv.FreePort(t)
	conf := fmt.Sprintf(`version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: %s
  delete:
    enabled: true
http:
  addr: 127.0.0.1:%d
`, filepath.Join(dir, "data"), port)
	cf := filepath.Join(dir, "config.yml")
	if err := os.WriteFile(cf, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "serve", cf)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	WaitTCP(t, addr, &out)
	return "http://" + addr
}

// WaitTCP waits until addr accepts connections, or fails with the
// server's output.
func WaitTCP(t testing.TB, addr string, out *bytes.Buffer) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			c.Close()
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s did not start listening:\n%s", addr, out.String())
}
