package monitoringtest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/llmo/llmo/internal/testenv"
)

// promConfig writes a Prometheus config for s into dir: the repo's rules
// with every group evaluated each second and every alert's for: shortened,
// and 1s scrapes of the stack under the job names the rules expect.
func promConfig(t *testing.T, s *stack, dir string, alertFor string) string {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(monDir(), "rules", "*.yml"))
	var ruleFiles []string
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var doc map[string]any
		if err := yaml.Unmarshal(data, &doc); err != nil {
			t.Fatal(err)
		}
		for _, g := range doc["groups"].([]any) {
			gm := g.(map[string]any)
			gm["interval"] = "1s"
			for _, r := range gm["rules"].([]any) {
				rm := r.(map[string]any)
				if _, ok := rm["alert"]; ok {
					rm["for"] = alertFor
				}
			}
		}
		out, err := yaml.Marshal(doc)
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(dir, filepath.Base(f))
		if err := os.WriteFile(path, out, 0o644); err != nil {
			t.Fatal(err)
		}
		ruleFiles = append(ruleFiles, path)
	}
	target := func(port int) []any { return []any{fmt.Sprintf("127.0.0.1:%d", port)} }
	var models []any
	for _, p := range s.Models {
		models = append(models, fmt.Sprintf("127.0.0.1:%d", p))
	}
	job := func(name string, targets []any) map[string]any {
		return map[string]any{"job_name": name, "static_configs": []any{map[string]any{"targets": targets}}}
	}
	cfg := map[string]any{
		"global":     map[string]any{"scrape_interval": "1s", "scrape_timeout": "900ms", "evaluation_interval": "1s"},
		"rule_files": ruleFiles,
		"scrape_configs": []any{
			job("llmo-gateway", target(s.API)), job("llmo-model", models),
			job("llmo-cache", target(s.Cache)), job("llmo-storage", target(s.Storage)),
		},
	}
	out, err := yaml.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(path, out, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// promAPI is a client of Prometheus's HTTP API.
type promAPI struct{ base string }

func (p promAPI) get(t *testing.T, path string, q url.Values, out any) error {
	t.Helper()
	u := p.base + path
	if q != nil {
		u += "?" + q.Encode()
	}
	resp, err := http.Get(u)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	var env struct {
		Status string          `json:"status"`
		Error  string          `json:"error"`
		Data   json.RawMessage `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&env); err != nil {
		return fmt.Errorf("%s: %v", path, err)
	}
	if env.Status != "success" {
		return fmt.Errorf("%s: %s", path, env.Error)
	}
	return json.Unmarshal(env.Data, out)
}

type promSample struct {
	Metric map[string]string `json:"metric"`
}

func (p promAPI) query(t *testing.T, expr string) ([]promSample, error) {
	var data struct {
		ResultType string       `json:"resultType"`
		Result     []promSample `json:"result"`
	}
	err := p.get(t, "/api/v1/query", url.Values{"query": {expr}}, &data)
	if err == nil && data.ResultType != "vector" {
		// Scalars cannot be told apart from "no data"; dashboards use vectors.
		return nil, fmt.Errorf("result type %s", data.ResultType)
	}
	return data.Result, err
}

type promAlert struct {
	Labels map[string]string `json:"labels"`
	State  string            `json:"state"`
}

func (p promAPI) alerts(t *testing.T) []promAlert {
	var data struct {
		Alerts []promAlert `json:"alerts"`
	}
	if err := p.get(t, "/api/v1/alerts", nil, &data); err != nil {
		t.Fatalf("alerts: %v", err)
	}
	return data.Alerts
}

// TestPrometheusE2E runs Debian's Prometheus against a running llmo stack:
// every target is up, the recording rules produce series, every dashboard
// query runs, and killing a replica raises LlmoModelReplicaDown, first
// pending, then firing.
func TestPrometheusE2E(t *testing.T) {
	promBin := testenv.Binary(t, "prometheus")
	s := startStack(t, 2)
	dir := t.TempDir()
	cfg := promConfig(t, s, dir, "3s")
	port := testenv.FreePort(t)
	cmd := exec.Command(promBin, "--config.file="+cfg, "--storage.tsdb.path="+filepath.Join(dir, "data"),
		fmt.Sprintf("--web.listen-address=127.0.0.1:%d", port), "--log.level=warn")
	out := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-done
		if t.Failed() {
			t.Logf("---- prometheus log ----\n%s", out.String())
		}
	})
	prom := promAPI{fmt.Sprintf("http://127.0.0.1:%d", port)}
	s.eventually(t, 30*time.Second, "prometheus ready", func() bool {
		resp, err := http.Get(prom.base + "/-/ready")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})

	// Every llmo target up.
	type target struct {
		Labels map[string]string `json:"labels"`
		Health string            `json:"health"`
		Error  string            `json:"lastError"`
	}
	var targets struct {
		Active []target `json:"activeTargets"`
	}
	s.eventually(t, 20*time.Second, "every target up", func() bool {
		if err := prom.get(t, "/api/v1/targets", nil, &targets); err != nil {
			return false
		}
		up := 0
		for _, tg := range targets.Active {
			if tg.Health == "up" {
				up++
			}
		}
		return up == 5 && len(targets.Active) == 5
	})
	jobs := map[string]int{}
	for _, tg := range targets.Active {
		jobs[tg.Labels["job"]]++
	}
	if jobs["llmo-model"] != 2 || jobs["llmo-gateway"] != 1 || jobs["llmo-cache"] != 1 || jobs["llmo-storage"] != 1 {
		t.Fatalf("targets by job %v", jobs)
	}

	// Traffic over a few scrapes, so that rates have two samples.
	for range 3 {
		s.traffic(t)
		time.Sleep(1200 * time.Millisecond)
	}
	for _, rec := range []string{
		`model:llmo_gateway_requests:rate5m{model="stories260K"}`,
		`model:llmo_gateway_request_error_ratio:rate5m{model="stories260K"}`,
		`model:llmo_gateway_ttft_seconds:p95{model="stories260K"}`,
		`model:llmo_gateway_replicas_healthy:sum{model="stories260K"} == 2`,
		`model_name:vllm_request_success:rate5m{model_name="stories260K"} > 0`,
		`model_name:vllm_time_to_first_token_seconds:p99{model_name="stories260K"}`,
		`model_name:vllm_inter_token_latency_seconds:p50{model_name="stories260K"}`,
		`model_name:vllm_generation_tokens:rate5m{model_name="stories260K"} > 0`,
		`model_name:vllm_num_requests_waiting:sum{model_name="stories260K"}`,
		`model_name:vllm_kv_cache_usage_perc:max{model_name="stories260K"}`,
		`model:llmo_gateway_ttft_slo_errors:ratio_rate5m{model="stories260K"}`,
	} {
		s.eventually(t, 20*time.Second, "recording rule series "+rec, func() bool {
			res, err := prom.query(t, rec)
			return err == nil && len(res) > 0
		})
	}

	// Every dashboard query runs against real data without error.
	empty := 0
	exprs := loadDashboards(t)
	for _, e := range exprs {
		res, err := prom.query(t, expandVars(e.expr))
		if err != nil {
			t.Errorf("%s: %v", e.where, err)
		} else if len(res) == 0 {
			empty++
			t.Logf("no data yet: %s", e.where)
		}
	}
	if empty > len(exprs)/3 {
		t.Errorf("%d of %d dashboard queries return no data on a stack with traffic", empty, len(exprs))
	}

	// No replica-down alert while all are up.
	for _, a := range prom.alerts(t) {
		if a.Labels["alertname"] == "LlmoModelReplicaDown" || a.Labels["alertname"] == "LlmoServiceDown" {
			t.Fatalf("%s %s before anything was killed", a.Labels["alertname"], a.State)
		}
	}

	// Kill replica 2: pending first, then firing.
	victim := fmt.Sprintf("127.0.0.1:%d", s.Models[1])
	s.kill(t, "model2")
	state := func() string {
		for _, a := range prom.alerts(t) {
			if a.Labels["alertname"] == "LlmoModelReplicaDown" && a.Labels["instance"] == victim {
				return a.State
			}
		}
		return ""
	}
	var seen []string
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		st := state()
		if st != "" && (len(seen) == 0 || seen[len(seen)-1] != st) {
			seen = append(seen, st)
		}
		if st == "firing" {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if strings.Join(seen, ",") != "pending,firing" {
		t.Fatalf("LlmoModelReplicaDown for %s went through states %v, want [pending firing]", victim, seen)
	}
	// The gateway sees it too: the replica leaves the pool.
	s.eventually(t, 30*time.Second, "LlmoReplicaUnhealthy firing", func() bool {
		for _, a := range prom.alerts(t) {
			if a.Labels["alertname"] == "LlmoReplicaUnhealthy" && a.State == "firing" && strings.Contains(a.Labels["replica"], victim) {
				return true
			}
		}
		return false
	})
	// The surviving replica raises nothing.
	for _, a := range prom.alerts(t) {
		if a.Labels["alertname"] == "LlmoModelReplicaDown" && a.Labels["instance"] != victim {
			t.Errorf("LlmoModelReplicaDown for the healthy replica %s", a.Labels["instance"])
		}
		if a.Labels["alertname"] == "LlmoNoHealthyReplica" {
			t.Errorf("LlmoNoHealthyReplica although one replica is healthy")
		}
	}
}
