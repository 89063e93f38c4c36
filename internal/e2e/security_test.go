package e2e

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/llmo/llmo/internal/testenv"
)

const (
	userKey  = "sk-alice-SECRET-c0ffee1234"
	adminKey = "sk-admin-SECRET-beef5678"
	wrongKey = "sk-wrong-SECRET-dead9999"
)

// Promise: with auth configured, every API route (gateway /v1, /api,
// /admin, and the same routes through the dashboard port) refuses a request
// without a valid key (401), /admin refuses a non-admin key (403), and no
// key, good or bad, ever appears in any service's output, even at debug
// level. Only /health, /ready and /metrics stay open (probes); the
// /api/health topology, which names internal replica URLs, needs a key.
func TestAuthEveryRoute(t *testing.T) {
	s := StartStack(t, StackOptions{Replicas: 1, Dashboard: true,
		GatewayEnv: []string{"LLMO_AUTH=on", "LLMO_API_KEYS=alice:" + userKey, "LLMO_ADMIN_KEY=" + adminKey, "LOG_LEVEL=debug"}})
	// A second replica registers itself with the admin key (heartbeats).
	port := testenv.FreePort(t)
	s.Start(&Proc{Name: "model-registered", Port: port, Env: []string{"LLMO_ADMIN_KEY=" + adminKey, "LOG_LEVEL=debug"},
		Args: []string{"serve", "model", "--port", itoa(port), "--threads", "1", "--model", testenv.Model(t, "stories260K.gguf"),
			"--gateway", s.Gateway.URL, "--heartbeat-ttl", "3s"}})
	s.WaitHealthy(t, 2, 20*time.Second)

	m := s.Model
	routes := []struct {
		method, path, body string
		admin              bool
	}{
		{"POST", "/v1/chat/completions", `{"model":"` + m + `","messages":[{"role":"user","content":"hi"}],"max_tokens":2}`, false},
		{"POST", "/v1/completions", `{"model":"` + m + `","prompt":"hi","max_tokens":2}`, false},
		{"POST", "/v1/embeddings", `{"model":"` + m + `","input":"hi"}`, false},
		{"GET", "/v1/models", ``, false},
		{"POST", "/api/generate", `{"model":"` + m + `","prompt":"hi","stream":false,"options":{"num_predict":2}}`, false},
		{"POST", "/api/chat", `{"model":"` + m + `","messages":[{"role":"user","content":"hi"}],"stream":false}`, false},
		{"POST", "/api/embed", `{"model":"` + m + `","input":"hi"}`, false},
		{"POST", "/api/embeddings", `{"model":"` + m + `","prompt":"hi"}`, false},
		{"GET", "/api/tags", ``, false},
		{"POST", "/api/show", `{"model":"` + m + `"}`, false},
		{"GET", "/api/ps", ``, false},
		{"GET", "/api/health", ``, false},
		{"GET", "/admin/stats", ``, true},
		{"POST", "/admin/replicas", `{"url":"http://127.0.0.1:1","ttl_s":1}`, true},
		{"DELETE", "/admin/replicas", `{"url":"http://127.0.0.1:1"}`, true},
	}
	bases := map[string]string{"api": s.Gateway.URL, "dashboard": "http://127.0.0.1:" + itoa(s.DashPort)}
	c := &http.Client{Timeout: 30 * time.Second}
	do := func(base, method, path, body string, hdr ...string) (int, string) {
		req, _ := http.NewRequest(method, base+path, strings.NewReader(body))
		if body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		for i := 0; i+1 < len(hdr); i += 2 {
			req.Header.Set(hdr[i], hdr[i+1])
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatalf("%s %s%s: %v", method, base, path, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return resp.StatusCode, string(b)
	}
	checked := 0
	for name, base := range bases {
		for _, r := range routes {
			for _, cred := range []struct {
				label string
				hdr   []string
				want  func(code int) bool
			}{
				{"no key", nil, func(c int) bool { return c == 401 }},
				{"wrong bearer", []string{"Authorization", "Bearer " + wrongKey}, func(c int) bool { return c == 401 }},
				{"wrong x-api-key", []string{"x-api-key", wrongKey}, func(c int) bool { return c == 401 }},
				{"basic scheme", []string{"Authorization", "Basic " + userKey}, func(c int) bool { return c == 401 }},
				{"user key", []string{"Authorization", "Bearer " + userKey}, func(c int) bool {
					if r.admin {
						return c == 403
					}
					return c != 401 && c != 403 && c < 500
				}},
				{"admin key", []string{"Authorization", "Bearer " + adminKey}, func(c int) bool { return c != 401 && c != 403 && c < 500 }},
			} {
				code, body := do(base, r.method, r.path, r.body, cred.hdr...)
				checked++
				if !cred.want(code) {
					t.Errorf("%s %s %s with %s: got %d: %.200s", name, r.method, r.path, cred.label, code, body)
				}
			}
		}
		// Probes stay open.
		for _, p := range []string{"/health", "/ready"} {
			if code, _ := do(base, "GET", p, ""); code != 200 {
				t.Errorf("%s GET %s without a key: %d, want 200 (probe)", name, p, code)
			}
		}
	}
	t.Logf("auth: %d route x credential checks on the API and dashboard ports", checked)

	// Keys never appear in any output.
	time.Sleep(300 * time.Millisecond) // let the last log lines land
	for _, p := range append([]*Proc{s.Gateway}, s.Replicas...) {
		assertNoSecrets(t, p.Name, p.Output(), userKey, adminKey, wrongKey)
	}
	for _, p := range s.procs {
		assertNoSecrets(t, p.Name, p.Output(), userKey, adminKey, wrongKey)
	}
	if !strings.Contains(s.Gateway.Output(), "level=DEBUG") {
		t.Logf("note: the gateway printed no DEBUG lines")
	}
}

func assertNoSecrets(t *testing.T, name, out string, secrets ...string) {
	t.Helper()
	for _, k := range secrets {
		// Also a recognisable part of it, in case something truncates.
		for _, frag := range []string{k, k[len(k)-10:]} {
			if strings.Contains(out, frag) {
				i := strings.Index(out, frag)
				lo, hi := max(0, i-200), min(len(out), i+100)
				t.Errorf("%s's output contains a secret (%q...): %s", name, frag[:4], out[lo:hi])
			}
		}
	}
}

// selfSigned writes a certificate and key for 127.0.0.1 and localhost.
func selfSigned(t *testing.T, dir string) (certFile, keyFile string, pool *x509.CertPool) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "llmo e2e"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, BasicConstraintsValid: true, IsCA: true,
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, DNSNames: []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600); err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return certFile, keyFile, pool
}

// Promise: TLS works end to end: the client talks HTTPS to the gateway,
// the gateway talks HTTPS to the replica (trusting the test CA through
// SSL_CERT_FILE), plain HTTP to a TLS port is refused with 400, and a
// client that does not trust the certificate cannot connect.
func TestTLSEndToEnd(t *testing.T) {
	h := NewHarness(t)
	cert, key, pool := selfSigned(t, t.TempDir())
	tlsClient := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	tlsFlags := []string{"--tls-cert", cert, "--tls-key", key}
	rport := testenv.FreePort(t)
	rep := h.Start(&Proc{Name: "model-tls", Port: rport, URL: "https://127.0.0.1:" + itoa(rport), client: tlsClient,
		Args: append([]string{"serve", "model", "--port", itoa(rport), "--threads", "1", "--model", testenv.Model(t, "stories260K.gguf")}, tlsFlags...)})
	gport := testenv.FreePort(t)
	gw := h.Start(&Proc{Name: "gateway-tls", Port: gport, URL: "https://127.0.0.1:" + itoa(gport), client: tlsClient,
		Env: []string{"LLMO_AUTH=off", "SSL_CERT_FILE=" + cert},
		Args: append([]string{"serve", "gateway", "--port", itoa(gport), "--dashboard-port", "0", "--health-interval", "250ms",
			"--replica", rep.URL}, tlsFlags...)})
	model := modelID(testenv.Model(t, "stories260K.gguf"))
	var code int
	var body []byte
	var err error
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		code, _, body, err = post(context.Background(), tlsClient, gw.URL+"/v1/completions", completionBody(model, 4, false))
		if err == nil && code == 200 {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if err != nil || code != 200 {
		t.Fatalf("HTTPS client -> HTTPS gateway -> HTTPS replica: %d %v %s", code, err, body)
	}
	// Streaming over TLS.
	code, _, body, err = post(context.Background(), tlsClient, gw.URL+"/v1/completions", completionBody(model, 4, true))
	if err != nil || code != 200 || !bytes.Contains(body, []byte("data: [DONE]")) {
		t.Fatalf("streamed over TLS: %d %v %.300s", code, err, body)
	}
	// Plain HTTP to the TLS port.
	resp, err := http.Get("http://127.0.0.1:" + itoa(gport) + "/health")
	if err == nil {
		resp.Body.Close()
		if resp.StatusCode != 400 {
			t.Errorf("plain HTTP to the TLS port: %d, want 400", resp.StatusCode)
		}
	}
	// A client that does not trust the certificate.
	if _, err := (&http.Client{Timeout: 5 * time.Second}).Get(gw.URL + "/health"); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("untrusting client: err=%v, want a certificate error", err)
	}
	t.Logf("TLS: client -> gateway -> replica over HTTPS, streamed and not; plain HTTP refused; untrusted client refused")
}

// Promise: storage enforces its push token: pushes and deletes without it,
// or with a wrong one, are refused with 401; reads stay open; the right
// token pushes; the token never appears in the storage log.
func TestStoragePushToken(t *testing.T) {
	const token = "push-SECRET-token-4242"
	h := NewHarness(t)
	st := h.StartStorage([]string{"--log-level", "debug"}, []string{"STORAGE_PUSH_TOKEN=" + token})
	model := testenv.Model(t, "stories260K.gguf")
	push := func(env ...string) (string, error) {
		cmd := exec.Command(h.Bin, "push", "--storage", st.URL, model, "guarded:v1")
		cmd.Dir, cmd.Env = h.Dir, append(scrubbedEnv(), env...)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	if out, err := push(); err == nil {
		t.Fatalf("push without a token succeeded:\n%s", out)
	}
	if out, err := push("STORAGE_PUSH_TOKEN=wrong-token-123"); err == nil {
		t.Fatalf("push with a wrong token succeeded:\n%s", out)
	}
	if out, err := push("STORAGE_PUSH_TOKEN=" + token); err != nil {
		t.Fatalf("push with the token failed: %v\n%s", err, out)
	}
	c := &http.Client{Timeout: 10 * time.Second}
	status := func(method, path, auth string) int {
		req, _ := http.NewRequest(method, st.URL+path, nil)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	for _, tc := range []struct {
		method, path, auth string
		want               int
	}{
		{"POST", "/v2/guarded/blobs/uploads/", "", 401},
		{"POST", "/v2/guarded/blobs/uploads/", "Bearer wrong", 401},
		{"POST", "/v2/guarded/blobs/uploads/", "Basic " + token, 401},
		{"DELETE", "/v2/guarded/manifests/v1", "", 401},
		{"DELETE", "/v2/guarded/manifests/v1", "Bearer " + token[:len(token)-1], 401},
		{"GET", "/v2/guarded/manifests/v1", "", 200},
		{"GET", "/v2/guarded/tags/list", "", 200},
		{"GET", "/llmo/v1/models", "", 200},
		{"POST", "/v2/guarded/blobs/uploads/", "Bearer " + token, 202},
	} {
		if got := status(tc.method, tc.path, tc.auth); got != tc.want {
			t.Errorf("%s %s auth=%q: %d, want %d", tc.method, tc.path, tc.auth, got, tc.want)
		}
	}
	assertNoSecrets(t, "storage", st.Output(), token)
}
