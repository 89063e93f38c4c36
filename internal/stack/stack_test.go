package stack

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/llmo/llmo/internal/testenv"
)

// TestMain lets the test binary act as a child service: with
// STACK_HELPER_PORT set it serves /ready on that port until SIGTERM.
func TestMain(m *testing.M) {
	if port := os.Getenv("STACK_HELPER_PORT"); port != "" {
		srv := &http.Server{Addr: "127.0.0.1:" + port, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprintln(w, "ok")
		})}
		go func() {
			ch := make(chan os.Signal, 1)
			signal.Notify(ch, syscall.SIGTERM)
			<-ch
			fmt.Println("helper: got SIGTERM, stopping")
			_ = srv.Shutdown(context.Background())
		}()
		fmt.Println("helper: listening on", port)
		_ = srv.ListenAndServe()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) { s.mu.Lock(); defer s.mu.Unlock(); return s.b.Write(p) }
func (s *syncBuf) String() string              { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

func TestSupervisorStartsRestartsAndStops(t *testing.T) {
	port := testenv.FreePort(t)
	out := &syncBuf{}
	sup := &Supervisor{Exe: os.Args[0], Out: out, Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
		ReadyTimeout: 20 * time.Second, StopTimeout: 5 * time.Second}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	err := sup.StartTier(ctx, Proc{Name: "svc", Args: []string{"-test.run=^$"}, Env: []string{fmt.Sprintf("STACK_HELPER_PORT=%d", port)},
		ReadyURL: fmt.Sprintf("http://127.0.0.1:%d/ready", port), Restart: true})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "svc       | helper: listening on") {
		t.Fatalf("log not prefixed:\n%s", out.String())
	}
	pid := sup.Pids()["svc"]
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(15 * time.Second)
	for sup.Pids()["svc"] == pid && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	newPid := sup.Pids()["svc"]
	if newPid == pid {
		t.Fatal("crashed process was not restarted")
	}
	if err := waitReady(ctx, fmt.Sprintf("http://127.0.0.1:%d/ready", port)); err != nil {
		t.Fatalf("restarted process not ready: %v", err)
	}
	cancel()
	sup.Stop()
	if !strings.Contains(out.String(), "got SIGTERM") {
		t.Fatalf("child was not stopped with SIGTERM:\n%s", out.String())
	}
	if err := syscall.Kill(newPid, 0); err == nil {
		t.Fatal("child still running after Stop")
	}
}

func TestStartTierFailsWhenNeverReady(t *testing.T) {
	sup := &Supervisor{Exe: "/bin/sleep", Out: io.Discard, Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
		ReadyTimeout: 500 * time.Millisecond, StopTimeout: time.Second}
	port := testenv.FreePort(t)
	err := sup.StartTier(context.Background(), Proc{Name: "sleeper", Args: []string{"30"}, ReadyURL: fmt.Sprintf("http://127.0.0.1:%d/ready", port)})
	if err == nil || !strings.Contains(err.Error(), "sleeper did not become ready") {
		t.Fatalf("err = %v", err)
	}
	sup.Stop()
}
