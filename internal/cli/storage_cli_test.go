package cli_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/llmo/llmo/internal/artifact/modelfmt"
	"github.com/llmo/llmo/internal/testenv"
)

// TestStorageCLI drives the real binary: serve storage, push, models,
// pull, and a clean SIGTERM drain.
func TestStorageCLI(t *testing.T) {
	model := testenv.Model(t, "synth-15m-q8_0.gguf")
	bin := testenv.Llmo(t)
	port := testenv.FreePort(t)
	root, cache := t.TempDir(), t.TempDir()
	url := fmt.Sprintf("http://127.0.0.1:%d", port)

	srv := exec.Command(bin, "serve", "storage", "--port", fmt.Sprint(port), "--root", root, "--log-level", "warn")
	var srvOut bytes.Buffer
	srv.Stdout, srv.Stderr = &srvOut, &srvOut
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Process.Kill(); _ = srv.Wait() })
	waitReady(t, url+"/ready", &srvOut)

	llmo := func(args ...string) (string, string, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, bin, args...)
		cmd.Env = append(os.Environ(), "LLMO_STORAGE="+url, "LLMO_MODEL_CACHE="+cache)
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		err := cmd.Run()
		return strings.TrimSpace(out.String()), errb.String(), err
	}

	out, stderr, err := llmo("push", model, "synth:q8")
	if err != nil || !strings.HasPrefix(out, "pushed synth:q8 sha256:") {
		t.Fatalf("push: %v %q %s", err, out, stderr)
	}
	out, _, err = llmo("models")
	if err != nil || !strings.Contains(out, "synth:q8") || !strings.Contains(out, "Q8_0") || !strings.HasPrefix(out, "NAME") {
		t.Fatalf("models: %v\n%s", err, out)
	}
	out, _, err = llmo("models", "--json", "--storage", url)
	var list modelfmt.ModelList
	if err != nil || json.Unmarshal([]byte(out), &list) != nil || len(list.Models) != 1 || list.Models[0].Config.Architecture == "" {
		t.Fatalf("models --json: %v %s", err, out)
	}
	out, stderr, err = llmo("pull", "--progress", "synth:q8")
	if err != nil {
		t.Fatalf("pull: %v %s", err, stderr)
	}
	digest, path, _ := strings.Cut(out, " ")
	if digest != list.Models[0].BlobDigest || !strings.HasPrefix(path, cache) {
		t.Fatalf("pull printed %q, want digest %s in %s", out, list.Models[0].BlobDigest, cache)
	}
	if !strings.Contains(stderr, "pull ") {
		t.Errorf("--progress drew no bar: %q", stderr)
	}
	// Bad input: a clear message and a non-zero exit, never a crash.
	for _, args := range [][]string{{"pull", "Bad:Name"}, {"push", "/no/such.gguf", "x:1"}, {"pull", "synth:nope"}, {"push", model}} {
		if _, stderr, err := llmo(args...); err == nil || strings.Contains(stderr, "panic") || len(stderr) == 0 {
			t.Errorf("%v: err=%v stderr=%q", args, err, stderr)
		}
	}
	// SIGTERM drains and exits 0.
	_ = srv.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- srv.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("storage exited with %v\n%s", err, srvOut.String())
		}
	case <-time.After(20 * time.Second):
		t.Fatal("storage did not stop on SIGTERM")
	}
}

func waitReady(t *testing.T, url string, out *bytes.Buffer) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if res, err := http.Get(url); err == nil {
			res.Body.Close()
			if res.StatusCode == 200 {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s never became ready:\n%s", url, out.String())
}

// TestServeModelFromStorage is the end-to-end path of issue 7: push the
// model, start `serve model --model NAME:TAG` against the storage service,
// get a completion; then corrupt the stored blob and check that a model
// service with an empty cache refuses to start.
func TestServeModelFromStorage(t *testing.T) {
	model := testenv.Model(t, "synth-15m-q8_0.gguf")
	bin := testenv.Llmo(t)
	sport := testenv.FreePort(t)
	root := t.TempDir()
	surl := fmt.Sprintf("http://127.0.0.1:%d", sport)
	srv := exec.Command(bin, "serve", "storage", "--port", fmt.Sprint(sport), "--root", root, "--log-level", "warn")
	var srvOut bytes.Buffer
	srv.Stdout, srv.Stderr = &srvOut, &srvOut
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Process.Kill(); _ = srv.Wait() })
	waitReady(t, surl+"/ready", &srvOut)
	if out, err := exec.Command(bin, "push", "--storage", surl, model, "synth:q8").CombinedOutput(); err != nil {
		t.Fatalf("push: %v %s", err, out)
	}

	startModel := func(cache string) (*exec.Cmd, string, *bytes.Buffer) {
		port := testenv.FreePort(t)
		cmd := exec.Command(bin, "serve", "model", "--model", "synth:q8", "--port", fmt.Sprint(port))
		cmd.Env = append(os.Environ(), "LLMO_STORAGE="+surl, "LLMO_MODEL_CACHE="+cache)
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
		return cmd, fmt.Sprintf("http://127.0.0.1:%d", port), &out
	}

	_, murl, mout := startModel(t.TempDir())
	waitReady(t, murl+"/ready", mout)
	body := `{"model":"synth:q8","prompt":"Once upon a time","max_tokens":8,"temperature":0}`
	res, err := http.Post(murl+"/v1/completions", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	var comp struct {
		Choices []struct{ Text string }
		Usage   struct {
			CompletionTokens int `json:"completion_tokens"`
		}
	}
	err = json.NewDecoder(res.Body).Decode(&comp)
	res.Body.Close()
	if err != nil || res.StatusCode != 200 || len(comp.Choices) != 1 || comp.Usage.CompletionTokens == 0 {
		t.Fatalf("completion: %d %v %+v\n%s", res.StatusCode, err, comp, mout.String())
	}

	// Flip one byte of the stored GGUF blob: a fresh replica must refuse it.
	var list modelfmt.ModelList
	lr, err := http.Get(surl + "/llmo/v1/models")
	if err != nil {
		t.Fatal(err)
	}
	_ = json.NewDecoder(lr.Body).Decode(&list)
	lr.Body.Close()
	hx := strings.TrimPrefix(list.Models[0].BlobDigest, "sha256:")
	blob := root + "/blobs/sha256/" + hx[:2] + "/" + hx
	f, err := os.OpenFile(blob, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	b := []byte{0}
	_, _ = f.ReadAt(b, 5000)
	b[0] ^= 0x55
	_, _ = f.WriteAt(b, 5000)
	f.Close()

	cmd, _, out := startModel(t.TempDir())
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err == nil {
			t.Fatalf("model service started from a corrupted blob:\n%s", out.String())
		}
		if !strings.Contains(out.String(), "verification") {
			t.Errorf("exit without a verification message:\n%s", out.String())
		}
	case <-time.After(90 * time.Second):
		t.Fatalf("model service neither refused nor exited:\n%s", out.String())
	}
}
