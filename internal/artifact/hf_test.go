package artifact_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/llmo/llmo/internal/artifact"
	"github.com/llmo/llmo/internal/testenv"
)

// hub is a fixture that behaves like huggingface.co for one LFS file: the
// resolve URL answers with a redirect to a "CDN" path carrying
// X-Linked-Etag and X-Linked-Size, as the hub does. It can cut the first
// download short and can serve corrupt bytes.
type hub struct {
	data       []byte
	cutFirst   bool
	corrupt    bool
	gets       atomic.Int32
	rangedGets atomic.Int32
	mu         sync.Mutex
	sawAuth    []string
}

func (h *hub) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	sum := sha256.Sum256(h.data)
	etag := `"` + hex.EncodeToString(sum[:]) + `"`
	switch {
	case r.URL.Path == "/org/repo/resolve/main/models/m.gguf":
		h.mu.Lock()
		h.sawAuth = append(h.sawAuth, r.Header.Get("Authorization"))
		h.mu.Unlock()
		w.Header().Set("X-Linked-Etag", etag)
		w.Header().Set("X-Linked-Size", strconv.Itoa(len(h.data)))
		w.Header().Set("ETag", `"0123456789012345678901234567890123456789"`) // git sha1, not content
		http.Redirect(w, r, "/cdn/blob", http.StatusFound)
	case r.URL.Path == "/cdn/blob":
		n := h.gets.Add(1)
		if r.Header.Get("Range") != "" {
			h.rangedGets.Add(1)
		}
		data := h.data
		if h.corrupt {
			data = append([]byte{}, data...)
			data[len(data)/3] ^= 1
		}
		if h.cutFirst && n == 1 {
			// Promise everything, send a third, hang up.
			w.Header().Set("Content-Length", strconv.Itoa(len(data)))
			w.WriteHeader(200)
			_, _ = w.Write(data[:len(data)/3])
			panic(http.ErrAbortHandler)
		}
		http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(data))
	default:
		http.NotFound(w, r)
	}
}

func TestHFImportResumesAndVerifies(t *testing.T) {
	model := testenv.Model(t, modelName)
	data, err := os.ReadFile(model)
	if err != nil {
		t.Fatal(err)
	}
	want := fileDigest(t, model)
	h := &hub{data: data, cutFirst: true}
	srv := httptest.NewServer(h)
	defer srv.Close()
	cache := t.TempDir()
	ctx := context.Background()
	o := artifact.ResolveOptions{HFBaseURL: srv.URL, CacheDir: cache, HFToken: "hf_secret"}
	p, d, err := artifact.Resolve(ctx, "hf://org/repo/models/m.gguf", o)
	if err != nil {
		t.Fatal(err)
	}
	if d != want || fileDigest(t, p) != want {
		t.Fatalf("digest %s, want %s", d, want)
	}
	if h.rangedGets.Load() != 1 || h.gets.Load() != 2 {
		t.Fatalf("gets=%d ranged=%d: the cut download was not resumed with Range", h.gets.Load(), h.rangedGets.Load())
	}
	if h.sawAuth[0] != "Bearer hf_secret" {
		t.Fatalf("token not sent to the hub: %q", h.sawAuth)
	}
	// Cached: no more downloads, even with the hub gone.
	srv.Close()
	if p2, d2, err := artifact.Resolve(ctx, "hf://org/repo/models/m.gguf", o); err != nil || p2 != p || d2 != want {
		t.Fatalf("cached resolve: %v", err)
	}
}

func TestHFCorruptDownloadIsRefused(t *testing.T) {
	h := &hub{data: []byte(strings.Repeat("GGUF data ", 10000)), corrupt: true}
	srv := httptest.NewServer(h)
	defer srv.Close()
	cache := t.TempDir()
	_, _, err := artifact.Resolve(context.Background(), "hf://org/repo/models/m.gguf",
		artifact.ResolveOptions{HFBaseURL: srv.URL, CacheDir: cache, Retries: 3})
	if err == nil || !strings.Contains(err.Error(), "verification") {
		t.Fatalf("corrupt download: %v", err)
	}
	if h.gets.Load() != 3 {
		t.Fatalf("attempts = %d, want 3 (refused, retried)", h.gets.Load())
	}
	entries, _ := os.ReadDir(cache + "/blobs/sha256")
	if len(entries) != 0 {
		t.Fatalf("corrupt content in the cache: %v", entries)
	}
}

func TestParseRef(t *testing.T) {
	cases := []struct {
		in, storage string
		kind        artifact.Kind
		canon       string
		bad         bool
	}{
		{"synth:q8", "http://127.0.0.1:8003", artifact.KindOCI, "http://127.0.0.1:8003/synth:q8", false},
		{"org/synth", "http://s:8003", artifact.KindOCI, "http://s:8003/org/synth:latest", false},
		{"oci://127.0.0.1:5000/a/b:v1", "", artifact.KindOCI, "http://127.0.0.1:5000/a/b:v1", false},
		{"oci://ghcr.io/a/b:v1", "", artifact.KindOCI, "https://ghcr.io/a/b:v1", false},
		{"oci+http://reg:5000/a@sha256:" + strings.Repeat("a", 64), "", artifact.KindOCI, "http://reg:5000/a@sha256:" + strings.Repeat("a", 64), false},
		{"hf://org/repo/dir/m.gguf", "", artifact.KindHF, "hf://org/repo/dir/m.gguf", false},
		{"/models/m.gguf", "", artifact.KindFile, "/models/m.gguf", false},
		{"m.gguf", "", artifact.KindFile, "m.gguf", false},
		{"synth:q8", "", 0, "", true},
		{"Synth:q8", "http://s", 0, "", true},
		{"../x:1", "http://s", artifact.KindFile, "../x:1", false},
		{"a/../b:1", "http://s", 0, "", true},
		{"hf://org/../x.gguf", "", 0, "", true},
		{"hf://org/repo", "", 0, "", true},
		{"oci://host", "", 0, "", true},
		{"a@sha256:zz", "http://s", 0, "", true},
		{"x:1", "ftp://s", 0, "", true},
	}
	for _, c := range cases {
		r, err := artifact.ParseRef(c.in, c.storage)
		if c.bad {
			if err == nil {
				t.Errorf("ParseRef(%q) = %+v, want error", c.in, r)
			}
			continue
		}
		if err != nil || r.Kind != c.kind || r.String() != c.canon {
			t.Errorf("ParseRef(%q) = %v %q, %v; want %v %q", c.in, r.Kind, r.String(), err, c.kind, c.canon)
		}
	}
}
