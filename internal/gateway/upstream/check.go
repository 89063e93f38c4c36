package upstream

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"strings"
	"time"

	"math"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/llmo/llmo/api"
)

// watch runs r's active checks until ctx ends: /ready (falling back to
// /v1/models for servers without it), /v1/models to learn what r serves, and
// /metrics for the engine's queue and KV-cache gauges.
func (g *Registry) watch(ctx context.Context, r *Replica) {
	t := time.NewTicker(g.opts.HealthInterval)
	defer t.Stop()
	for {
		g.check(ctx, r)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

type readiness int

const (
	notReady readiness = iota
	ready
	draining
)

func (g *Registry) check(ctx context.Context, r *Replica) {
	st, why := g.probeReady(ctx, r)
	if ctx.Err() != nil {
		return
	}
	modelsChanged := false
	if st == ready {
		r.mu.Lock()
		stale := r.modelsAt.IsZero() || time.Since(r.modelsAt) >= g.opts.ModelsInterval
		r.mu.Unlock()
		if stale {
			if ms, err := g.fetchModels(ctx, r); err == nil {
				r.mu.Lock()
				before := r.modelIDsLocked()
				r.models, r.modelsAt = ms, time.Now()
				modelsChanged = !slices.Equal(before, r.modelIDsLocked())
				r.mu.Unlock()
			} else if ctx.Err() == nil {
				st, why = notReady, "GET /v1/models: "+err.Error()
			}
		}
		if st == ready {
			g.scrape(ctx, r)
		}
	}
	if ctx.Err() != nil {
		return
	}
	r.mu.Lock()
	prev := r.state
	now := time.Now()
	switch st {
	case ready:
		if r.state == Ejected && now.Before(r.ejectedUntil) {
			break
		}
		if r.state != Healthy {
			r.consecFails = 0
		}
		r.state = Healthy
	case draining:
		r.state = Draining
	default:
		if r.state != Ejected || !now.Before(r.ejectedUntil) {
			r.state = Unhealthy
		}
		r.lastErr = why
	}
	r.refreshAvail()
	cur := r.state
	r.mu.Unlock()
	if prev != cur {
		lvl := g.opts.Log.Info
		if cur != Healthy {
			lvl = g.opts.Log.Warn
		}
		lvl("replica state", "replica", r.URL, "from", prev.String(), "to", cur.String(), "reason", why)
	}
	if modelsChanged {
		g.rebuild()
	}
}

func (g *Registry) get(ctx context.Context, r *Replica, path, accept string) (*http.Response, error) {
	ctx, cancel := context.WithTimeout(ctx, g.opts.CheckTimeout)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, r.URL+path, nil)
	if err != nil {
		cancel()
		return nil, err
	}
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	resp, err := g.opts.Client.Do(req)
	if err != nil {
		cancel()
		return nil, err
	}
	resp.Body = &cancelBody{ReadCloser: resp.Body, cancel: cancel}
	return resp, nil
}

type cancelBody struct {
	io.ReadCloser
	cancel func()
}

func (b *cancelBody) Close() error { err := b.ReadCloser.Close(); b.cancel(); return err }

func (g *Registry) probeReady(ctx context.Context, r *Replica) (readiness, string) {
	resp, err := g.get(ctx, r, "/ready", "")
	if err != nil {
		return notReady, err.Error()
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusOK:
		return ready, ""
	case resp.StatusCode == http.StatusNotFound:
		// Not an llmo service (vLLM, llama.cpp, Ollama): /v1/models answering is
		// readiness enough; check() fetches it next.
		r.mu.Lock()
		r.modelsAt = time.Time{}
		r.mu.Unlock()
		return ready, ""
	case strings.Contains(string(body), "draining"):
		return draining, "draining"
	}
	return notReady, "GET /ready: " + resp.Status
}

func (g *Registry) fetchModels(ctx context.Context, r *Replica) ([]api.Model, error) {
	resp, err := g.get(ctx, r, "/v1/models", "application/json")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, &statusError{resp.Status}
	}
	var list api.ModelList
	if err := json.NewDecoder(io.LimitReader(resp.Body, 4<<20)).Decode(&list); err != nil {
		return nil, err
	}
	out := list.Data[:0]
	for _, m := range list.Data {
		if m.ID != "" {
			out = append(out, m)
		}
	}
	return out, nil
}

type statusError struct{ status string }

func (e *statusError) Error() string { return e.status }

// scrape reads the vLLM gauges from r's /metrics (summed over label sets).
// A replica without them keeps zeros and is balanced on this gateway's own
// outstanding counts alone.
func (g *Registry) scrape(ctx context.Context, r *Replica) {
	resp, err := g.get(ctx, r, "/metrics", "text/plain;version=0.0.4")
	if err != nil {
		return
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return
	}
	p := expfmt.NewTextParser(model.LegacyValidation)
	fams, err := p.TextToMetricFamilies(io.LimitReader(resp.Body, 8<<20))
	if err != nil && len(fams) == 0 {
		return
	}
	if v, ok := gaugeSum(fams, "vllm:num_requests_waiting"); ok {
		r.waiting.Store(int64(v))
	}
	if v, ok := gaugeSum(fams, "vllm:num_requests_running"); ok {
		r.running.Store(int64(v))
	}
	if v, ok := gaugeSum(fams, "vllm:kv_cache_usage_perc"); ok {
		r.kvBits.Store(math.Float64bits(v))
	}
}

func gaugeSum(fams map[string]*dto.MetricFamily, name string) (float64, bool) {
	f := fams[name]
	if f == nil || len(f.Metric) == 0 {
		return 0, false
	}
	var sum float64
	for _, m := range f.Metric {
		switch {
		case m.Gauge != nil:
			sum += m.Gauge.GetValue()
		case m.Untyped != nil:
			sum += m.Untyped.GetValue()
		case m.Counter != nil:
			sum += m.Counter.GetValue()
		}
	}
	if math.IsNaN(sum) || math.IsInf(sum, 0) {
		return 0, false
	}
	return sum, true
}
