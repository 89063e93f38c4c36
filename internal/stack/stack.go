// Package stack is the `llmo up` process supervisor: it starts the storage,
// cache, model-replica and gateway services as child processes on loopback,
// in health-gated order, prefixes their logs, restarts a crashed replica with
// backoff, and stops everything cleanly when its context ends.
package stack

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"
)

// Proc describes one child process.
type Proc struct {
	Name     string   // log prefix, e.g. "model-1"
	Args     []string // arguments after the executable
	Env      []string // extra KEY=VALUE entries
	ReadyURL string   // polled until it answers 200 before the next tier starts
	Restart  bool     // restart with backoff when it exits unexpectedly
}

// Supervisor runs Procs.
type Supervisor struct {
	Exe          string        // the llmo binary
	Out          io.Writer     // where prefixed logs go
	Log          *slog.Logger  // the supervisor's own messages
	ReadyTimeout time.Duration // per tier
	StopTimeout  time.Duration // SIGTERM to SIGKILL

	mu      sync.Mutex
	outMu   sync.Mutex
	running []*child
	wg      sync.WaitGroup
}

type child struct {
	p      Proc
	mu     sync.Mutex
	cmd    *exec.Cmd
	done   chan struct{} // closed when the current process exits
	exited error
}

// StartTier starts every Proc of one tier and waits until all are ready (or
// ctx ends, or one of them exits). Tiers are started in order by the caller.
func (s *Supervisor) StartTier(ctx context.Context, procs ...Proc) error {
	for _, p := range procs {
		c := &child{p: p}
		if err := s.spawn(c); err != nil {
			return err
		}
		s.mu.Lock()
		s.running = append(s.running, c)
		s.mu.Unlock()
		s.wg.Add(1)
		go s.watch(ctx, c)
	}
	timeout := s.ReadyTimeout
	if timeout == 0 {
		timeout = 2 * time.Minute
	}
	tctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for _, p := range procs {
		if p.ReadyURL == "" {
			continue
		}
		if err := waitReady(tctx, p.ReadyURL); err != nil {
			return fmt.Errorf("%s did not become ready at %s: %w", p.Name, p.ReadyURL, err)
		}
		s.Log.Info("ready", "service", p.Name)
	}
	return nil
}

func (s *Supervisor) spawn(c *child) error {
	cmd := exec.Command(s.Exe, c.p.Args...)
	cmd.Env = append(os.Environ(), c.p.Env...)
	// Own process group, so a Ctrl-C in the terminal reaches only the
	// supervisor, which then stops children in order.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting %s: %w", c.p.Name, err)
	}
	done := make(chan struct{})
	c.mu.Lock()
	c.cmd, c.done = cmd, done
	c.mu.Unlock()
	go func() {
		s.copyPrefixed(c.p.Name, stdout)
		c.exited = cmd.Wait()
		close(done)
	}()
	return nil
}

func (s *Supervisor) copyPrefixed(name string, r io.Reader) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		s.outMu.Lock()
		fmt.Fprintf(s.Out, "%-9s | %s\n", name, sc.Bytes())
		s.outMu.Unlock()
	}
}

// watch restarts c with exponential backoff while ctx is alive.
func (s *Supervisor) watch(ctx context.Context, c *child) {
	defer s.wg.Done()
	backoff := 500 * time.Millisecond
	for {
		c.mu.Lock()
		done := c.done
		c.mu.Unlock()
		started := time.Now()
		select {
		case <-ctx.Done():
			return
		case <-done:
		}
		if ctx.Err() != nil {
			return
		}
		s.Log.Warn("process exited", "service", c.p.Name, "err", errString(c.exited))
		if !c.p.Restart {
			return
		}
		if time.Since(started) > time.Minute {
			backoff = 500 * time.Millisecond // it ran fine for a while
		}
		s.Log.Info("restarting", "service", c.p.Name, "in", backoff)
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 30*time.Second)
		if err := s.spawn(c); err != nil {
			s.Log.Error("restart failed", "service", c.p.Name, "err", err)
		}
	}
}

func errString(err error) string {
	if err == nil {
		return "exit status 0"
	}
	return err.Error()
}

// Stop sends SIGTERM to every child in reverse start order (the gateway
// first, so it stops taking traffic before the replicas drain), waits up to
// StopTimeout for each, then SIGKILLs what is left.
func (s *Supervisor) Stop() {
	s.mu.Lock()
	kids := append([]*child{}, s.running...)
	s.mu.Unlock()
	timeout := s.StopTimeout
	if timeout == 0 {
		timeout = 30 * time.Second
	}
	for i := len(kids) - 1; i >= 0; i-- {
		c := kids[i]
		c.mu.Lock()
		cmd, done := c.cmd, c.done
		c.mu.Unlock()
		if cmd == nil || cmd.Process == nil {
			continue
		}
		select {
		case <-done:
			continue
		default:
		}
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(timeout):
			s.Log.Warn("did not stop in time; killing", "service", c.p.Name)
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-done
		}
	}
	s.wg.Wait()
}

// Pids returns the current process id of each child by name (for tests).
func (s *Supervisor) Pids() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]int{}
	for _, c := range s.running {
		c.mu.Lock()
		if c.cmd != nil && c.cmd.Process != nil {
			out[c.p.Name] = c.cmd.Process.Pid
		}
		c.mu.Unlock()
	}
	return out
}

func waitReady(ctx context.Context, url string) error {
	cl := &http.Client{Timeout: 2 * time.Second}
	var last error = errors.New("no answer yet")
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		resp, err := cl.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			last = fmt.Errorf("status %d", resp.StatusCode)
		} else {
			last = err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (last: %v)", ctx.Err(), last)
		case <-time.After(150 * time.Millisecond):
		}
	}
}
