// Package cachetest starts real backing services for cache tests: a
// redis-server on a free loopback port, and the cache service itself.
package cachetest

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/llmo/llmo/internal/testenv"
)

// Redis starts `redis-server --port N --save "" --appendonly no` on a free
// loopback port, waits until it answers PING, stops it when the test ends,
// and returns its URL (redis://127.0.0.1:N/0). Without redis-server the test
// is skipped locally and fails under CI.
func Redis(t testing.TB) string { return StartRedis(t).URL }

// RedisServer is a redis-server child process that tests may kill and
// restart on the same port.
type RedisServer struct {
	URL  string
	t    testing.TB
	bin  string
	port int
	dir  string
	cmd  *exec.Cmd
}

// StartRedis starts a redis-server as Redis does and returns it.
func StartRedis(t testing.TB) *RedisServer {
	t.Helper()
	r := &RedisServer{t: t, bin: testenv.Binary(t, "redis-server"), port: testenv.FreePort(t), dir: t.TempDir()}
	r.URL = fmt.Sprintf("redis://127.0.0.1:%d/0", r.port)
	r.Start()
	t.Cleanup(r.Kill)
	return r
}

// Start (re)starts the server and waits for PING.
func (r *RedisServer) Start() {
	r.t.Helper()
	cmd := exec.Command(r.bin, "--port", strconv.Itoa(r.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no")
	cmd.Dir = r.dir
	if err := cmd.Start(); err != nil {
		r.t.Fatalf("starting redis-server: %v", err)
	}
	r.cmd = cmd
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(r.port))
	deadline := time.Now().Add(10 * time.Second)
	for ping(addr) != nil {
		if time.Now().After(deadline) {
			r.t.Fatalf("redis-server on %s did not answer PING", addr)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Kill stops the server with SIGKILL (no-op when it is not running).
func (r *RedisServer) Kill() {
	if r.cmd == nil {
		return
	}
	_ = r.cmd.Process.Kill()
	_ = r.cmd.Wait()
	r.cmd = nil
}

func ping(addr string) error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(time.Second))
	if _, err := c.Write([]byte("PING\r\n")); err != nil {
		return err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return err
	}
	if !strings.HasPrefix(line, "+PONG") {
		return fmt.Errorf("unexpected reply %q", line)
	}
	return nil
}
