package e2e

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/llmo/llmo/internal/gguf"
	"github.com/llmo/llmo/internal/testenv"
)

// Promise: a hostile GGUF file never crashes a service. The model service
// refuses it at start-up (non-zero exit with a message naming the problem,
// no panic); storage either refuses the push or stores it as opaque bytes,
// and keeps serving (its model listing, which reads GGUF metadata,
// included).

// ggufTensor is a tensor-info record with whatever values a test wants.
type ggufTensor struct {
	name   string
	dims   []uint64
	typ    uint32
	offset uint64
}

// rawGGUF encodes a GGUF v3 file by hand: nKV and nTensors are written as
// given (so they can lie), kvs are string-valued.
func rawGGUF(nTensors, nKV uint64, kvs [][2]string, tensors []ggufTensor, data []byte) []byte {
	var b bytes.Buffer
	w := func(v any) { _ = binary.Write(&b, binary.LittleEndian, v) }
	str := func(s string) { w(uint64(len(s))); b.WriteString(s) }
	b.WriteString("GGUF")
	w(uint32(3))
	w(nTensors)
	w(nKV)
	for _, kv := range kvs {
		str(kv[0])
		w(uint32(8)) // string
		str(kv[1])
	}
	for _, t := range tensors {
		str(t.name)
		w(uint32(len(t.dims)))
		for _, d := range t.dims {
			w(d)
		}
		w(t.typ)
		w(t.offset)
	}
	for b.Len()%32 != 0 {
		b.WriteByte(0)
	}
	b.Write(data)
	return b.Bytes()
}

type hostileFile struct {
	name string
	data []byte
}

func hostileGGUFs(t *testing.T) []hostileFile {
	arch := [][2]string{{"general.architecture", "llama"}}
	f32 := make([]byte, 64)
	var hs []hostileFile
	add := func(name string, data []byte) { hs = append(hs, hostileFile{name, data}) }
	add("empty", nil)
	add("magic-only", []byte("GGUF"))
	add("wrong-magic", append([]byte("GGML"), make([]byte, 60)...))
	add("version-1", append([]byte("GGUF\x01\x00\x00\x00"), make([]byte, 16)...))
	add("version-huge", append([]byte("GGUF\xff\xff\xff\x7f"), make([]byte, 16)...))
	add("tensor-count-huge", rawGGUF(math.MaxUint64, 1, arch, nil, nil))
	add("tensor-count-negative-int64", rawGGUF(1<<63, 1, arch, nil, nil))
	add("kv-count-huge", rawGGUF(0, 1<<62, arch, nil, nil))
	add("absurd-dims", rawGGUF(1, 1, arch, []ggufTensor{{"token_embd.weight", []uint64{1 << 40, 1 << 40}, 0, 0}}, f32))
	add("dims-overflow-product", rawGGUF(1, 1, arch, []ggufTensor{{"token_embd.weight", []uint64{math.MaxUint64, 2}, 0, 0}}, f32))
	add("ndims-huge", func() []byte {
		b := rawGGUF(1, 1, arch, []ggufTensor{{"token_embd.weight", []uint64{4}, 0, 0}}, f32)
		// Patch n_dims (right after the tensor name) to 1e9.
		i := bytes.Index(b, []byte("token_embd.weight")) + len("token_embd.weight")
		binary.LittleEndian.PutUint32(b[i:], 1_000_000_000)
		return b
	}())
	add("offset-past-end", rawGGUF(1, 1, arch, []ggufTensor{{"token_embd.weight", []uint64{16}, 0, 1 << 40}}, f32))
	add("offset-misaligned", rawGGUF(1, 1, arch, []ggufTensor{{"token_embd.weight", []uint64{4}, 0, 3}}, f32))
	add("unknown-type", rawGGUF(1, 1, arch, []ggufTensor{{"token_embd.weight", []uint64{4}, 9999, 0}}, f32))
	add("string-length-huge", func() []byte {
		b := rawGGUF(0, 1, arch, nil, nil)
		binary.LittleEndian.PutUint64(b[24:], math.MaxUint64-3) // the key's length
		return b
	}())
	add("array-count-huge", func() []byte {
		var b bytes.Buffer
		w := func(v any) { _ = binary.Write(&b, binary.LittleEndian, v) }
		b.WriteString("GGUF")
		w(uint32(3))
		w(uint64(0))
		w(uint64(1))
		w(uint64(len("tokenizer.ggml.tokens")))
		b.WriteString("tokenizer.ggml.tokens")
		w(uint32(9)) // array
		w(uint32(8)) // of strings
		w(uint64(1 << 60))
		return b.Bytes()
	}())
	add("unknown-arch", func() []byte {
		w := gguf.NewWriter()
		w.SetKV("general.architecture", "made-up-arch")
		if err := w.AddTensor("x.weight", gguf.TypeF32, []int{4}, make([]byte, 16)); err != nil {
			t.Fatal(err)
		}
		var b bytes.Buffer
		if _, err := w.WriteTo(&b); err != nil {
			t.Fatal(err)
		}
		return b.Bytes()
	}())
	add("llama-no-tensors", func() []byte {
		w := gguf.NewWriter()
		w.SetKV("general.architecture", "llama")
		w.SetKV("llama.embedding_length", uint32(1<<30))
		w.SetKV("llama.block_count", uint32(1<<30))
		w.SetKV("llama.context_length", uint32(1<<31-1))
		var b bytes.Buffer
		if _, err := w.WriteTo(&b); err != nil {
			t.Fatal(err)
		}
		return b.Bytes()
	}())
	if raw, err := os.ReadFile(testenv.Model(t, "stories260K.gguf")); err == nil {
		add("stories-truncated-half", raw[:len(raw)/2])
		add("stories-truncated-header", raw[:4096])
		flipped := bytes.Clone(raw)
		// Corrupt the first tensor-info dimensions region: every byte of
		// the 64 after the KV section's end is flipped.
		for i := len(flipped) / 3; i < len(flipped)/3+64; i++ {
			flipped[i] ^= 0xff
		}
		add("stories-bytes-flipped", flipped)
	}
	// Fuzzer-found inputs from internal/gguf's corpus.
	corpus, _ := filepath.Glob(filepath.Join(testenv.RepoRoot(), "internal", "gguf", "testdata", "fuzz", "FuzzParse", "*"))
	for i, p := range corpus {
		if i >= 6 {
			break
		}
		if data, ok := readFuzzBytes(p); ok {
			add("fuzz-"+filepath.Base(p), data)
		}
	}
	return hs
}

// readFuzzBytes decodes a one-value "go test fuzz v1" file holding []byte.
func readFuzzBytes(path string) ([]byte, bool) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, false
	}
	lines := strings.SplitN(string(b), "\n", 3)
	if len(lines) < 2 || lines[0] != "go test fuzz v1" {
		return nil, false
	}
	lit, ok := strings.CutPrefix(strings.TrimSpace(lines[1]), "[]byte(")
	if !ok {
		return nil, false
	}
	s, err := strconv.Unquote(strings.TrimSuffix(lit, ")"))
	if err != nil {
		return nil, false
	}
	return []byte(s), true
}

func TestHostileGGUF(t *testing.T) {
	h := NewHarness(t)
	st := h.StartStorage(nil, nil)
	files := hostileGGUFs(t)
	dir := t.TempDir()
	var refusedLoad, pushedOK, pushRefused int
	for i, f := range files {
		t.Run(f.name, func(t *testing.T) {
			path := filepath.Join(dir, f.name+".gguf")
			if err := os.WriteFile(path, f.data, 0o644); err != nil {
				t.Fatal(err)
			}
			// Through the model service: it must exit non-zero, quickly,
			// with a message and without a panic.
			port := testenv.FreePort(t)
			p := h.Spawn(&Proc{Name: "model-" + f.name, Port: port, Args: []string{"serve", "model", "--port", itoa(port), "--threads", "1", "--model", path}})
			if err := p.WaitReady(30 * time.Second); err == nil {
				// It loaded: the file is well-formed with garbage weights. Then
				// it must answer requests without a 5xx and stay up.
				code, _, body, err := post(t.Context(), newClient(30*time.Second), p.URL+"/v1/completions", completionBody(modelID(path), 8, false))
				if err != nil || code >= 500 || !p.Running() {
					t.Fatalf("model with garbage weights: %d %v %.200s\n%s", code, err, body, tail(p.Output(), 20))
				}
				t.Logf("loaded (well-formed, garbage weights) and answered %d", code)
				p.Kill()
				return
			}
			if !p.Wait(5 * time.Second) {
				t.Fatalf("model service neither ready nor exited 30s after start\n%s", tail(p.Output(), 10))
			}
			out := p.Output()
			if p.ExitErr() == nil {
				t.Errorf("model service exited 0 with a hostile file\n%s", tail(out, 10))
			}
			if strings.Contains(out, "panic:") || strings.Contains(out, "[running]") || strings.Contains(out, "fatal error:") {
				t.Fatalf("model service crashed instead of refusing the file:\n%s", tail(out, 30))
			}
			msg := strings.TrimSpace(tail(out, 1))
			if !strings.Contains(strings.ToLower(out), "gguf") && !strings.Contains(strings.ToLower(out), "model") {
				t.Errorf("refusal does not say what is wrong: %q", msg)
			}
			refusedLoad++
			// Straight through the OCI API, past the CLI's own checks: each
			// step is a 2xx or a 4xx, never a 5xx.
			rawCode, err := rawPushModel(st.URL, fmt.Sprintf("raw-hostile-%d", i), "v1", f.data)
			if err != nil {
				t.Fatalf("raw OCI push: %v", err)
			} else if rawCode >= 500 {
				t.Fatalf("raw OCI push of a hostile GGUF answered %d", rawCode)
			}
			// Through storage: refused, or stored as opaque bytes.
			push := exec.Command(h.Bin, "push", "--storage", st.URL, path, fmt.Sprintf("hostile-%d:v1", i))
			push.Dir, push.Env = h.Dir, scrubbedEnv()
			pout, perr := push.CombinedOutput()
			if strings.Contains(string(pout), "panic:") {
				t.Fatalf("llmo push crashed:\n%s", pout)
			}
			if perr != nil {
				pushRefused++
			} else {
				pushedOK++
			}
			t.Logf("load refused: %.200s | llmo push: err=%v | raw OCI push: %d", msg, perr, rawCode)
		})
	}
	// Storage keeps serving, its listing included (it reads GGUF metadata).
	resp, err := st.client.Get(st.URL + "/llmo/v1/models")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("storage model listing after hostile pushes: %d", resp.StatusCode)
	}
	if !st.Running() {
		t.Fatalf("storage exited: %v", st.ExitErr())
	}
	if out := st.Output(); strings.Contains(out, "panic") {
		t.Fatalf("storage logged a panic:\n%s", tail(out, 40))
	}
	t.Logf("hostile GGUF: %d files; model service refused %d at load; storage accepted %d as bytes and refused %d",
		len(files), refusedLoad, pushedOK, pushRefused)
}

// rawPushModel pushes data as an llmo model artifact (config, GGUF layer,
// manifest) with plain OCI distribution calls, and returns the status of
// the first step that was not a 2xx (or of the manifest PUT).
func rawPushModel(base, repo, tag string, data []byte) (int, error) {
	c := &http.Client{Timeout: 30 * time.Second}
	blob := func(b []byte) (string, int, error) {
		sum := sha256.Sum256(b)
		dg := "sha256:" + hex.EncodeToString(sum[:])
		resp, err := c.Post(base+"/v2/"+repo+"/blobs/uploads/", "application/octet-stream", nil)
		if err != nil {
			return dg, 0, err
		}
		resp.Body.Close()
		if resp.StatusCode != 202 {
			return dg, resp.StatusCode, nil
		}
		loc := resp.Header.Get("Location")
		if strings.HasPrefix(loc, "/") {
			loc = base + loc
		}
		sep := "?"
		if strings.Contains(loc, "?") {
			sep = "&"
		}
		req, _ := http.NewRequest(http.MethodPut, loc+sep+"digest="+dg, bytes.NewReader(b))
		req.Header.Set("Content-Type", "application/octet-stream")
		resp, err = c.Do(req)
		if err != nil {
			return dg, 0, err
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return dg, resp.StatusCode, nil
	}
	cfg := []byte(`{"architecture":"llama","format":"gguf"}`)
	cdg, code, err := blob(cfg)
	if err != nil || code >= 300 {
		return code, err
	}
	ldg, code, err := blob(data)
	if err != nil || code >= 300 {
		return code, err
	}
	man := fmt.Sprintf(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","artifactType":"application/vnd.llmo.model.v1",`+
		`"config":{"mediaType":"application/vnd.llmo.model.config.v1+json","digest":%q,"size":%d},`+
		`"layers":[{"mediaType":"application/vnd.llmo.model.gguf","digest":%q,"size":%d}]}`, cdg, len(cfg), ldg, len(data))
	req, _ := http.NewRequest(http.MethodPut, base+"/v2/"+repo+"/manifests/"+tag, strings.NewReader(man))
	req.Header.Set("Content-Type", "application/vnd.oci.image.manifest.v1+json")
	resp, err := c.Do(req)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}
