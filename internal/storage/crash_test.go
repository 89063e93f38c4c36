package storage

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/llmo/llmo/internal/testenv"
)

// TestMain doubles as the storage server for the crash test: with
// LLMO_STORAGE_CHILD set, the test binary serves the registry on the given
// root and port until killed.
func TestMain(m *testing.M) {
	if os.Getenv("LLMO_STORAGE_CHILD") == "1" {
		os.Exit(runChild())
	}
	os.Exit(m.Run())
}

func runChild() int {
	var t testing.T
	cfg := testConfig(&t)
	cfg.Root = os.Getenv("LLMO_STORAGE_ROOT")
	cfg.Port, _ = strconv.Atoi(os.Getenv("LLMO_STORAGE_PORT"))
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	s, err := New(ctx, cfg, quietLog())
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if err := s.Server().ListenAndServe(ctx, cfg.Port); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

func startChild(t *testing.T, root string, port int) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "LLMO_STORAGE_CHILD=1", "LLMO_STORAGE_ROOT="+root, "LLMO_STORAGE_PORT="+strconv.Itoa(port))
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	waitTCP(t, fmt.Sprintf("127.0.0.1:%d", port), &out)
	return cmd
}

// TestKillMidUpload kills the storage process (SIGKILL) while a blob is
// streaming in, restarts it on the same root and checks that nothing of
// the upload is visible, and that the session can be resumed to a correct
// blob from the offset the registry reports.
func TestKillMidUpload(t *testing.T) {
	root := t.TempDir()
	port := testenv.FreePort(t)
	child := startChild(t, root, port)
	outer := t
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	const repo = "crash/model"
	blob := bytes.Repeat([]byte("0123456789abcdef"), 1<<16) // 1 MiB
	d := sha(blob)

	for _, mode := range []string{"monolithic", "chunked"} {
		t.Run(mode, func(t *testing.T) {
			var loc string
			var url string
			if mode == "monolithic" {
				url = base + "/v2/" + repo + "/blobs/uploads/?digest=" + d
			} else {
				r := do(t, "POST", base+"/v2/"+repo+"/blobs/uploads/", nil)
				if r.code != 202 {
					t.Fatalf("POST = %v", r)
				}
				loc = abs(base, r.header.Get("Location"))
				// One committed chunk before the crash.
				r = do(t, "PATCH", loc, blob[:1000], "Content-Range", "0-999", "Content-Type", "application/octet-stream")
				if r.code != 202 {
					t.Fatalf("PATCH = %v", r)
				}
				url = loc
			}
			pr, pw := io.Pipe()
			method := "POST"
			if mode == "chunked" {
				method = "PATCH"
			}
			req, _ := http.NewRequest(method, url, pr)
			req.Header.Set("Content-Type", "application/octet-stream")
			errc := make(chan error, 1)
			go func() {
				res, err := http.DefaultClient.Do(req)
				if err == nil {
					res.Body.Close()
					err = fmt.Errorf("request finished with %d", res.StatusCode)
				}
				errc <- err
			}()
			start := 0
			if mode == "chunked" {
				start = 1000
			}
			half := start + (len(blob)-start)/2
			if _, err := pw.Write(blob[start:half]); err != nil {
				t.Fatal(err)
			}
			waitStaged(t, root, int64(half-start))
			_ = child.Process.Kill()
			_ = child.Wait()
			pw.CloseWithError(io.ErrClosedPipe)
			<-errc

			child = startChild(outer, root, port) // outlives this subtest
			for _, dd := range []string{d, sha(blob[:half]), sha(blob[start:half])} {
				if r := do(t, "HEAD", base+"/v2/"+repo+"/blobs/"+dd, nil); r.code != 404 {
					t.Fatalf("after the crash HEAD %s = %v", dd, r)
				}
			}
			if files := blobFiles(t, root); len(files) != 0 {
				t.Fatalf("blobs visible after the crash: %v", files)
			}
			if mode == "monolithic" {
				return
			}
			// Resume: the registry still reports the 1000 committed bytes.
			r := do(t, "GET", loc, nil)
			if r.code != 204 || r.header.Get("Range") != "0-999" {
				t.Fatalf("status after restart = %v Range %q", r, r.header.Get("Range"))
			}
			r = do(t, "PATCH", loc, blob[1000:], "Content-Range", fmt.Sprintf("1000-%d", len(blob)-1), "Content-Type", "application/octet-stream")
			if r.code != 202 {
				t.Fatalf("resume PATCH = %v", r)
			}
			r = do(t, "PUT", withQuery(abs(base, r.header.Get("Location")), "digest="+d), nil)
			if r.code != 201 {
				t.Fatalf("PUT after resume = %v", r)
			}
			r = do(t, "GET", base+"/v2/"+repo+"/blobs/"+d, nil)
			if r.code != 200 || !bytes.Equal(r.body, blob) {
				t.Fatalf("resumed blob = %d, %d bytes", r.code, len(r.body))
			}
		})
	}
}

// waitStaged waits until some upload's staging file holds n bytes.
func waitStaged(t *testing.T, root string, n int64) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		matches, _ := filepath.Glob(filepath.Join(root, "_uploads", "*", "data"))
		for _, m := range matches {
			if st, err := os.Stat(m); err == nil && st.Size() >= n {
				return
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("the server never staged %d bytes", n)
}

func blobFiles(t *testing.T, root string) []string {
	var out []string
	_ = filepath.Walk(filepath.Join(root, "blobs"), func(p string, info os.FileInfo, err error) error {
		if err == nil && !info.IsDir() {
			out = append(out, strings.TrimPrefix(p, root))
		}
		return nil
	})
	return out
}
