package telemetry

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
)

// SetupTracing exports spans over OTLP/HTTP to endpoint as serviceName and
// makes that the process-wide tracer provider, with the W3C trace-context
// propagator. Tracing is off by default: with an empty endpoint it installs
// nothing and returns a no-op shutdown, so services pay nothing when nobody
// collects traces.
//
// endpoint is a base URL such as http://otel-collector:4318 (the exporter
// appends /v1/traces, as OTEL_EXPORTER_OTLP_ENDPOINT does) or a full URL
// ending in /v1/traces. Call shutdown on exit to flush buffered spans.
func SetupTracing(ctx context.Context, endpoint, serviceName string) (shutdown func(context.Context) error, err error) {
	tp, err := NewTracerProvider(ctx, endpoint, serviceName)
	if err != nil || tp == nil {
		return func(context.Context) error { return nil }, err
	}
	otel.SetTracerProvider(tp)
	otel.SetTextMapPropagator(Propagator())
	globalOnce.Do(func() {}) // an explicit setup wins over SetGlobalOnce
	return tp.Shutdown, nil
}

// NewTracerProvider is SetupTracing without touching the process-wide
// provider, for processes that run several services (the monolith, the
// gateway's dashboard server) and keep their service names apart. It
// returns nil when endpoint is empty.
func NewTracerProvider(ctx context.Context, endpoint, serviceName string) (*sdktrace.TracerProvider, error) {
	if endpoint == "" {
		return nil, nil
	}
	u, err := url.Parse(endpoint)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("OTLP endpoint %q: want an http(s) URL such as http://localhost:4318", endpoint)
	}
	path := strings.TrimSuffix(u.Path, "/")
	if !strings.HasSuffix(path, "/v1/traces") {
		path += "/v1/traces"
	}
	opts := []otlptracehttp.Option{otlptracehttp.WithEndpoint(u.Host), otlptracehttp.WithURLPath(path)}
	if u.Scheme == "http" {
		opts = append(opts, otlptracehttp.WithInsecure())
	}
	exp, err := otlptracehttp.New(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("OTLP exporter: %w", err)
	}
	res := resource.NewWithAttributes(semconv.SchemaURL, semconv.ServiceName(serviceName))
	return sdktrace.NewTracerProvider(
		sdktrace.WithBatcher(exp, sdktrace.WithBatchTimeout(2*time.Second)),
		sdktrace.WithResource(res),
	), nil
}

var globalOnce sync.Once

// SetGlobalOnce makes tp the process-wide tracer provider (used by
// Transport for client spans) and installs the W3C propagator, the first
// time it is called; later calls do nothing. In a process with several
// services the first one set up names the client spans.
func SetGlobalOnce(tp trace.TracerProvider) {
	globalOnce.Do(func() {
		otel.SetTracerProvider(tp)
		otel.SetTextMapPropagator(Propagator())
	})
}

// Propagator is the W3C trace-context (traceparent/tracestate) plus baggage
// propagator llmo uses between its services.
func Propagator() propagation.TextMapPropagator {
	return propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{})
}

// Transport wraps base (http.DefaultTransport when nil) so that outgoing
// requests carry a client span, a traceparent header and the request id of
// their context as X-Request-Id, so one request can be followed through
// every service's logs. When tracing is not set up the global provider is a
// no-op and no span is recorded.
func Transport(base http.RoundTripper) http.RoundTripper {
	if base == nil {
		base = http.DefaultTransport
	}
	return otelhttp.NewTransport(requestIDTransport{base}, otelhttp.WithPropagators(Propagator()))
}

type requestIDTransport struct{ base http.RoundTripper }

func (t requestIDTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if id := RequestID(r.Context()); id != "" && r.Header.Get("X-Request-Id") == "" {
		r = r.Clone(r.Context()) // a RoundTripper must not modify the caller's request
		r.Header.Set("X-Request-Id", id)
	}
	return t.base.RoundTrip(r)
}

// TraceHandler wraps h in a server span from tp named after operation (the
// route template once the mux has set r.Pattern) that continues the
// caller's W3C trace context.
func TraceHandler(h http.Handler, operation string, tp trace.TracerProvider) http.Handler {
	return otelhttp.NewHandler(h, operation,
		otelhttp.WithTracerProvider(tp),
		otelhttp.WithPropagators(Propagator()),
		otelhttp.WithSpanNameFormatter(func(op string, r *http.Request) string {
			if r.Pattern != "" {
				return r.Pattern
			}
			return op + " " + r.Method
		}),
	)
}
