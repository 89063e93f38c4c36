package gateway

import (
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

	collectortrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"

	"github.com/llmo/llmo/internal/gateway/gwtest"
)

// otlpSink is a real OTLP/HTTP traces endpoint that keeps the spans it gets.
type otlpSink struct {
	mu    sync.Mutex
	spans []*tracepb.Span
}

func (s *otlpSink) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	data, err := io.ReadAll(r.Body)
	var req collectortrace.ExportTraceServiceRequest
	if err == nil {
		err = proto.Unmarshal(data, &req)
	}
	if err != nil {
		http.Error(w, "bad export", http.StatusBadRequest)
		return
	}
	s.mu.Lock()
	for _, rs := range req.ResourceSpans {
		for _, ss := range rs.ScopeSpans {
			s.spans = append(s.spans, ss.Spans...)
		}
	}
	s.mu.Unlock()
	out, _ := proto.Marshal(&collectortrace.ExportTraceServiceResponse{})
	w.Header().Set("Content-Type", "application/x-protobuf")
	_, _ = w.Write(out)
}

func (s *otlpSink) span(traceID, spanID string) *tracepb.Span {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, sp := range s.spans {
		if hex.EncodeToString(sp.TraceId) == traceID && hex.EncodeToString(sp.SpanId) == spanID {
			return sp
		}
	}
	return nil
}

// With tracing configured, the upstream request's parent span is the
// gateway's exported server span (itself a child of the client's span), so
// gateway -> model spans link.
func TestTracingLinksUpstreamToGatewaySpan(t *testing.T) {
	sink := &otlpSink{}
	col := httptest.NewServer(sink)
	defer col.Close()
	fake := gwtest.New("a")
	up := httptest.NewServer(fake)
	defer up.Close()
	cfg := testConfig(up.URL)
	cfg.OTLPEndpoint = col.URL
	g, err := New(context.Background(), cfg, quiet())
	if err != nil {
		t.Fatal(err)
	}
	// Served for real, so that the drain at the end flushes the spans and
	// stops the span processor.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- g.Serve(ctx, ln, nil) }()
	defer func() { stop(); <-served }()
	base := "http://" + ln.Addr().String()
	for !g.reg.HasModel("fake") || !g.reg.Pool("fake")[0].Available() {
		runtimeGosched()
	}

	const traceID, clientSpan = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
	req, _ := http.NewRequest(http.MethodPost, base+"/v1/chat/completions",
		strings.NewReader(`{"model":"fake","messages":[{"role":"user","content":"hi"}]}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Traceparent", "00-"+traceID+"-"+clientSpan+"-01")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d", resp.StatusCode)
	}
	tp := fake.LastHeader().Get("Traceparent")
	if len(tp) != 55 || tp[3:35] != traceID {
		t.Fatalf("upstream traceparent %q does not continue trace %s", tp, traceID)
	}
	parent := tp[36:52]
	if parent == clientSpan {
		t.Fatalf("upstream parent is the client's span, not the gateway's")
	}
	deadline := time.Now().Add(10 * time.Second) // the batcher exports every 2 s
	var sp *tracepb.Span
	for sp == nil && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
		sp = sink.span(traceID, parent)
	}
	if sp == nil {
		t.Fatalf("no exported gateway span %s in trace %s: the model span's parent would be missing", parent, traceID)
	}
	if got := hex.EncodeToString(sp.ParentSpanId); got != clientSpan {
		t.Errorf("gateway span's parent = %s, want the client's span %s", got, clientSpan)
	}
	if sp.Kind != tracepb.Span_SPAN_KIND_SERVER || !strings.Contains(sp.Name, "/v1/chat/completions") {
		t.Errorf("parent span = %s (%v), want the gateway's server span for the route", sp.Name, sp.Kind)
	}
}
