package telemetry_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/hex"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/trace/noop"
	collectortrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"

	"github.com/llmo/llmo/internal/service"
	"github.com/llmo/llmo/internal/telemetry"
)

// otlpReceiver is a real OTLP/HTTP endpoint: it decodes the protobuf export
// requests the SDK sends and keeps the spans.
type otlpReceiver struct {
	mu    sync.Mutex
	spans []recvSpan
	*httptest.Server
}

type recvSpan struct {
	service string
	*tracepb.Span
}

func newOTLPReceiver(t *testing.T) *otlpReceiver {
	rc := &otlpReceiver{}
	rc.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1/traces" || r.Header.Get("Content-Type") != "application/x-protobuf" {
			http.Error(w, "want POST /v1/traces application/x-protobuf", http.StatusBadRequest)
			return
		}
		var body io.Reader = r.Body
		if r.Header.Get("Content-Encoding") == "gzip" {
			zr, err := gzip.NewReader(r.Body)
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			body = zr
		}
		data, err := io.ReadAll(body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		var req collectortrace.ExportTraceServiceRequest
		if err := proto.Unmarshal(data, &req); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		rc.mu.Lock()
		for _, rs := range req.ResourceSpans {
			svc := ""
			for _, a := range rs.GetResource().GetAttributes() {
				if a.Key == "service.name" {
					svc = a.GetValue().GetStringValue()
				}
			}
			for _, ss := range rs.ScopeSpans {
				for _, sp := range ss.Spans {
					rc.spans = append(rc.spans, recvSpan{svc, sp})
				}
			}
		}
		rc.mu.Unlock()
		out, _ := proto.Marshal(&collectortrace.ExportTraceServiceResponse{})
		w.Header().Set("Content-Type", "application/x-protobuf")
		_, _ = w.Write(out)
	}))
	t.Cleanup(rc.Close)
	return rc
}

func (rc *otlpReceiver) all() []recvSpan {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]recvSpan(nil), rc.spans...)
}

func testCommon(endpoint string) service.Common {
	return service.Common{Host: "127.0.0.1", LogFormat: "text", LogLevel: "error", DrainTimeout: time.Second,
		MaxBodyBytes: 1 << 20, ReadHeaderTimeout: time.Second, IdleTimeout: time.Second, OTLPEndpoint: endpoint}
}

// TestTracingGatewayToModel runs two real services (a "gateway" calling a
// "model" through telemetry.Transport) and checks that the spans exported
// over OTLP form one trace: gateway server span -> client span -> model
// server span, and that the request id travelled too.
func TestTracingGatewayToModel(t *testing.T) {
	recv := newOTLPReceiver(t)
	ctx := context.Background()
	shutdown, err := telemetry.SetupTracing(ctx, recv.URL, "llmo-test")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { otel.SetTracerProvider(noop.NewTracerProvider()) })

	var gotTraceparent, gotRequestID string
	model := service.New("model", testCommon(recv.URL), nil, nil)
	model.Mux.HandleFunc("POST /v1/chat/completions", func(w http.ResponseWriter, r *http.Request) {
		gotTraceparent = r.Header.Get("Traceparent")
		gotRequestID = r.Header.Get("X-Request-Id")
		service.WriteJSON(w, http.StatusOK, map[string]string{"ok": "model"})
	})
	modelURL := serve(t, model)

	client := &http.Client{Transport: telemetry.Transport(nil)}
	gw := service.New("gateway", testCommon(recv.URL), nil, nil)
	gw.Mux.HandleFunc("POST /v1/chat/completions", func(w http.ResponseWriter, r *http.Request) {
		req, _ := http.NewRequestWithContext(r.Context(), http.MethodPost, modelURL+"/v1/chat/completions", strings.NewReader(`{}`))
		resp, err := client.Do(req)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		w.WriteHeader(resp.StatusCode)
		_, _ = io.Copy(w, resp.Body)
	})
	gwURL := serve(t, gw)

	req, _ := http.NewRequest(http.MethodPost, gwURL+"/v1/chat/completions", bytes.NewReader([]byte(`{}`)))
	req.Header.Set("X-Request-Id", "req-trace-1")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "model") {
		t.Fatalf("gateway answered %d %s", resp.StatusCode, body)
	}
	if err := shutdown(ctx); err != nil { // flushes the client spans
		t.Fatal(err)
	}
	stopServers(t) // drains both servers, which flushes their spans

	// With tracing on, the service's own metrics still carry the route
	// template (the tracing handler routes a copy of the request).
	mfs, err := gw.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	routed := false
	for _, mf := range mfs {
		if mf.GetName() != "llmo_http_requests_total" {
			continue
		}
		for _, m := range mf.Metric {
			for _, l := range m.Label {
				routed = routed || l.GetName() == "route" && l.GetValue() == "POST /v1/chat/completions"
			}
		}
	}
	if !routed {
		t.Error(`llmo_http_requests_total has no route="POST /v1/chat/completions" series with tracing on`)
	}

	if gotRequestID != "req-trace-1" {
		t.Errorf("model saw X-Request-Id %q, want the gateway's req-trace-1", gotRequestID)
	}
	if !strings.HasPrefix(gotTraceparent, "00-") {
		t.Fatalf("model saw traceparent %q, want a W3C traceparent", gotTraceparent)
	}

	spans := recv.all()
	var gwServer, client1, modelServer *tracepb.Span
	for _, s := range spans {
		switch {
		case s.Kind == tracepb.Span_SPAN_KIND_CLIENT:
			client1 = s.Span
		case s.Kind == tracepb.Span_SPAN_KIND_SERVER && len(s.ParentSpanId) == 0:
			gwServer = s.Span
		case s.Kind == tracepb.Span_SPAN_KIND_SERVER:
			modelServer = s.Span
		}
		// The client span is made by the provider of the server span it
		// runs under: the gateway's, not the process-wide one.
		want := map[tracepb.Span_SpanKind]string{tracepb.Span_SPAN_KIND_CLIENT: "llmo-gateway"}[s.Kind]
		if s.Kind == tracepb.Span_SPAN_KIND_SERVER {
			want = "llmo-model"
			if len(s.ParentSpanId) == 0 {
				want = "llmo-gateway"
			}
		}
		if s.service != want {
			t.Errorf("%s span %q has service.name %q, want %q", s.Kind, s.Name, s.service, want)
		}
	}
	if gwServer == nil || client1 == nil || modelServer == nil {
		t.Fatalf("want gateway server, client and model server spans; got %d spans: %v", len(spans), spanNames(spans))
	}
	tid := hex.EncodeToString(gwServer.TraceId)
	for _, s := range []*tracepb.Span{client1, modelServer} {
		if got := hex.EncodeToString(s.TraceId); got != tid {
			t.Errorf("span %q trace id %s, want the gateway's %s", s.Name, got, tid)
		}
	}
	if !bytes.Equal(client1.ParentSpanId, gwServer.SpanId) {
		t.Errorf("client span's parent is not the gateway server span")
	}
	if !bytes.Equal(modelServer.ParentSpanId, client1.SpanId) {
		t.Errorf("model server span's parent is not the gateway's client span")
	}
	if !strings.Contains(gotTraceparent, tid) {
		t.Errorf("traceparent %q does not carry trace id %s", gotTraceparent, tid)
	}
	if gwServer.Name != "POST /v1/chat/completions" {
		t.Errorf("server span named %q, want the route template", gwServer.Name)
	}
}

var (
	servers []func()
)

// serve runs srv on a loopback port until stopServers, and returns its URL.
func serve(t *testing.T, srv *service.Server) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	stop := func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	}
	servers = append(servers, stop)
	t.Cleanup(func() { stopServers(t) })
	return "http://" + ln.Addr().String()
}

func stopServers(t *testing.T) {
	for _, stop := range servers {
		stop()
	}
	servers = nil
}

func spanNames(spans []recvSpan) []string {
	var out []string
	for _, s := range spans {
		out = append(out, s.Kind.String()+" "+s.Name)
	}
	return out
}

func TestSetupTracing(t *testing.T) {
	tests := []struct {
		name     string
		endpoint string
		wantErr  bool
	}{
		{"off when empty", "", false},
		{"base URL", "http://127.0.0.1:4318", false},
		{"full traces URL", "https://collector.example:4318/v1/traces", false},
		{"not a URL", "::nope", true},
		{"wrong scheme", "grpc://127.0.0.1:4317", true},
		{"no host", "http://", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := otel.GetTracerProvider()
			shutdown, err := telemetry.SetupTracing(context.Background(), tt.endpoint, "x")
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tt.wantErr)
			}
			if shutdown == nil {
				t.Fatal("shutdown must never be nil")
			}
			if tt.endpoint == "" || tt.wantErr {
				if otel.GetTracerProvider() != before {
					t.Error("tracer provider changed although tracing is off")
				}
			}
			ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
			defer cancel()
			_ = shutdown(ctx)
			if otel.GetTracerProvider() != before {
				otel.SetTracerProvider(noop.NewTracerProvider())
			}
		})
	}
}

// TestTransportWithoutTracing checks that the transport forwards requests and
// the request id even when tracing is off (the default).
func TestTransportWithoutTracing(t *testing.T) {
	var got http.Header
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { got = r.Header.Clone() }))
	defer srv.Close()
	ctx := telemetry.WithRequestID(context.Background(), "abc-123")
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL, nil)
	resp, err := (&http.Client{Transport: telemetry.Transport(nil)}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if got.Get("X-Request-Id") != "abc-123" {
		t.Errorf("X-Request-Id = %q, want abc-123", got.Get("X-Request-Id"))
	}
	if req.Header.Get("X-Request-Id") != "" {
		t.Error("Transport modified the caller's request")
	}
}

// BenchmarkServiceHandler measures what tracing adds to a request through
// the service middleware: off (the default) and on (spans batched for an
// OTLP receiver).
func BenchmarkServiceHandler(b *testing.B) {
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
	}))
	defer recv.Close()
	for _, bc := range []struct{ name, endpoint string }{{"off", ""}, {"on", recv.URL}} {
		b.Run(bc.name, func(b *testing.B) {
			srv := service.New("bench", testCommon(bc.endpoint), nil, nil)
			srv.Mux.HandleFunc("GET /v1/models", func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "{}") })
			h := srv.Handler()
			req := httptest.NewRequest(http.MethodGet, "/v1/models", nil)
			req.Header.Set("Traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
			b.ReportAllocs()
			for b.Loop() {
				h.ServeHTTP(httptest.NewRecorder(), req)
			}
		})
	}
}
