package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

const healthOK = `{"status":"degraded","version":"v1.2.3","uptime_s":3725,
 "pools":[{"model":"stories260K","healthy":1,"replicas":[
   {"url":"http://10.0.0.1:8001","state":"healthy","breaker":"closed","outstanding":2,"waiting":1,"running":3,"kv_usage":0.25,"source":"static"},
   {"url":"http://10.0.0.2:8001","state":"ejected","breaker":"open","outstanding":0,"waiting":0,"running":0,"kv_usage":0,"source":"dns","last_error":"connection refused"}]}],
 "cache":{"url":"http://cache:8002","state":"ok"},"storage":{"url":"","state":"disabled"},"future_field":42}`

const healthDown = `{"status":"down","version":"v1","uptime_s":1,"pools":[{"model":"m","healthy":0,"replicas":[]}],
 "cache":{"url":"","state":"disabled"},"storage":{"url":"","state":"disabled"}}`

func runCLI(t *testing.T, args []string, envVars map[string]string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	env := &Env{Stdout: &out, Stderr: &errb, Lookup: func(k string) (string, bool) { v, ok := envVars[k]; return v, ok }}
	code = Main(context.Background(), args, env)
	return code, out.String(), errb.String()
}

func TestStatus(t *testing.T) {
	var gotAuth string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gotAuth = r.Header.Get("Authorization")
		switch r.URL.Path {
		case "/ok/api/health":
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprint(w, healthOK)
		case "/down/api/health":
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprint(w, healthDown)
		case "/auth/api/health":
			if r.Header.Get("Authorization") != "Bearer sk-good" {
				w.WriteHeader(http.StatusUnauthorized)
				fmt.Fprint(w, `{"error":{"message":"missing key"}}`)
				return
			}
			fmt.Fprint(w, healthOK)
		case "/html/api/health":
			fmt.Fprint(w, "<html>not a gateway</html>")
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()

	// A port nothing listens on.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := "http://" + ln.Addr().String()
	ln.Close()

	tests := []struct {
		name       string
		args       []string
		env        map[string]string
		wantCode   int
		wantOut    []string
		wantErr    []string
		wantJSON   bool
		wantBearer string
	}{
		{name: "table", args: []string{"--gateway", srv.URL + "/ok"}, wantCode: 0,
			wantOut: []string{"degraded", "version v1.2.3, up 1h2m5s", "cache", "http://cache:8002", "storage", "disabled",
				"MODEL", "stories260K", "1/2", "http://10.0.0.1:8001", "healthy", "closed", "25%", "static",
				"http://10.0.0.2:8001", "ejected", "open", "dns", "http://10.0.0.2:8001: connection refused"}},
		{name: "gateway from the environment", args: nil, env: map[string]string{"LLMO_GATEWAY": srv.URL + "/ok"}, wantCode: 0,
			wantOut: []string{"stories260K"}},
		{name: "json keeps every field", args: []string{"--gateway", srv.URL + "/ok", "--json"}, wantCode: 0, wantJSON: true,
			wantOut: []string{`"future_field": 42`, `"kv_usage": 0.25`}},
		{name: "down exits non-zero but prints", args: []string{"--gateway", srv.URL + "/down"}, wantCode: 1,
			wantOut: []string{"down", "0/0"}, wantErr: []string{"status down"}},
		{name: "unreachable", args: []string{"--gateway", dead}, wantCode: 1,
			wantErr: []string{"gateway at " + dead + " is unreachable", "LLMO_GATEWAY"}},
		{name: "auth required", args: []string{"--gateway", srv.URL + "/auth"}, wantCode: 1,
			wantErr: []string{"refused /api/health (401)", "--api-key"}},
		{name: "auth with key", args: []string{"--gateway", srv.URL + "/auth", "--api-key", "sk-good"}, wantCode: 0,
			wantOut: []string{"stories260K"}, wantBearer: "Bearer sk-good"},
		{name: "not a gateway", args: []string{"--gateway", srv.URL + "/html"}, wantCode: 1,
			wantErr: []string{"not an llmo health document"}},
		{name: "404", args: []string{"--gateway", srv.URL + "/nothing"}, wantCode: 1,
			wantErr: []string{"404"}},
		{name: "bad URL", args: []string{"--gateway", "localhost:8000"}, wantCode: 2,
			wantErr: []string{"want an http(s) URL"}},
		{name: "stray argument", args: []string{"--gateway", srv.URL + "/ok", "extra"}, wantCode: 2,
			wantErr: []string{"no arguments"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			gotAuth = ""
			code, out, errOut := runCLI(t, append([]string{"status"}, tt.args...), tt.env)
			if code != tt.wantCode {
				t.Errorf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", code, tt.wantCode, out, errOut)
			}
			for _, w := range tt.wantOut {
				if !strings.Contains(out, w) {
					t.Errorf("stdout lacks %q:\n%s", w, out)
				}
			}
			for _, w := range tt.wantErr {
				if !strings.Contains(errOut, w) {
					t.Errorf("stderr lacks %q:\n%s", w, errOut)
				}
			}
			if tt.wantJSON {
				var v map[string]any
				if err := json.Unmarshal([]byte(out), &v); err != nil {
					t.Errorf("--json output is not JSON: %v\n%s", err, out)
				}
			}
			if gotAuth != tt.wantBearer && tt.wantBearer != "" {
				t.Errorf("Authorization %q, want %q", gotAuth, tt.wantBearer)
			}
		})
	}
}

// FuzzStatusDocument feeds arbitrary gateway answers to the status printer:
// whatever a (possibly foreign or broken) server sends, llmo status must
// print or refuse it, never panic.
func FuzzStatusDocument(f *testing.F) {
	f.Add([]byte(healthOK))
	f.Add([]byte(healthDown))
	f.Add([]byte(`{"status":"ok","pools":[{"replicas":[{"kv_usage":-1e308,"outstanding":-5}]}]}`))
	f.Add([]byte(`{"status":"ok","uptime_s":1e300,"pools":null,"cache":null}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var doc statusDoc
		if json.Unmarshal(data, &doc) != nil {
			return
		}
		var out bytes.Buffer
		if err := printStatus(&out, "http://gw", &doc); err != nil {
			t.Fatal(err)
		}
		if strings.ContainsAny(out.String(), "\x1b\r\x7f") {
			t.Errorf("control characters from the gateway reached the terminal: %q", out.String())
		}
	})
}
