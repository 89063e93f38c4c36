package monitoringtest

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/llmo/llmo/internal/testenv"
)

func monDir() string { return filepath.Join(testenv.RepoRoot(), "deploy", "monitoring") }

type ruleFile struct {
	Groups []struct {
		Name     string `yaml:"name"`
		Interval string `yaml:"interval"`
		Rules    []rule `yaml:"rules"`
	} `yaml:"groups"`
}

type rule struct {
	Record      string            `yaml:"record"`
	Alert       string            `yaml:"alert"`
	Expr        string            `yaml:"expr"`
	For         string            `yaml:"for"`
	Labels      map[string]string `yaml:"labels"`
	Annotations map[string]string `yaml:"annotations"`
}

// loadRules reads every rules/*.yml file.
func loadRules(t *testing.T) (records map[string]rule, alerts map[string]rule) {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(monDir(), "rules", "*.yml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no rule files: %v", err)
	}
	records, alerts = map[string]rule{}, map[string]rule{}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var rf ruleFile
		if err := yaml.Unmarshal(data, &rf); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		for _, g := range rf.Groups {
			for _, r := range g.Rules {
				switch {
				case r.Record != "":
					if _, dup := records[r.Record]; dup {
						t.Errorf("recording rule %s defined twice", r.Record)
					}
					records[r.Record] = r
				case r.Alert != "":
					if _, dup := alerts[r.Alert]; dup {
						t.Errorf("alert %s defined twice", r.Alert)
					}
					alerts[r.Alert] = r
				}
			}
		}
	}
	return records, alerts
}

// TestAlertsDocumentedAndTested checks that every alert has a severity, a
// summary and a runbook, is described in docs/monitoring.md, and has
// promtool unit tests in which it both fires and stays quiet.
func TestAlertsDocumentedAndTested(t *testing.T) {
	_, alerts := loadRules(t)
	doc, err := os.ReadFile(filepath.Join(testenv.RepoRoot(), "docs", "monitoring.md"))
	if err != nil {
		t.Fatal(err)
	}
	type unitTests struct {
		Tests []struct {
			AlertRuleTest []struct {
				Alertname string           `yaml:"alertname"`
				ExpAlerts []map[string]any `yaml:"exp_alerts"`
			} `yaml:"alert_rule_test"`
		} `yaml:"tests"`
	}
	fires, quiet := map[string]int{}, map[string]int{}
	files, _ := filepath.Glob(filepath.Join(monDir(), "tests", "*.yml"))
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var ut unitTests
		if err := yaml.Unmarshal(data, &ut); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		for _, tc := range ut.Tests {
			for _, a := range tc.AlertRuleTest {
				if len(a.ExpAlerts) > 0 {
					fires[a.Alertname]++
				} else {
					quiet[a.Alertname]++
				}
			}
		}
	}
	for name, a := range alerts {
		sev := a.Labels["severity"]
		if sev != "critical" && sev != "warning" {
			t.Errorf("%s: severity %q, want critical or warning (alertmanager.yml routes on it)", name, sev)
		}
		for _, k := range []string{"summary", "description", "runbook", "runbook_url"} {
			if strings.TrimSpace(a.Annotations[k]) == "" {
				t.Errorf("%s: no %s annotation", name, k)
			}
		}
		anchor := strings.ToLower(name)
		if !strings.HasSuffix(a.Annotations["runbook_url"], "docs/monitoring.md#"+anchor) {
			t.Errorf("%s: runbook_url %q does not point at docs/monitoring.md#%s", name, a.Annotations["runbook_url"], anchor)
		}
		if !strings.Contains(string(doc), "### "+name) {
			t.Errorf("%s: no \"### %s\" runbook section in docs/monitoring.md", name, name)
		}
		if fires[name] == 0 {
			t.Errorf("%s: no promtool test in which it fires", name)
		}
		if quiet[name] == 0 {
			t.Errorf("%s: no promtool test in which it stays quiet", name)
		}
	}
	for name := range fires {
		if _, ok := alerts[name]; !ok {
			t.Errorf("tests expect alert %s, which no rule defines", name)
		}
	}
}

// TestKubernetesConfig checks prometheus-k8s.yml. Debian's Prometheus is
// built without Kubernetes service discovery, so promtool checks a copy in
// which each kubernetes_sd_configs block becomes a static target; the
// relabelling, alerting and rule files are checked as they are.
func TestKubernetesConfig(t *testing.T) {
	promtool := testenv.Binary(t, "promtool")
	data, err := os.ReadFile(filepath.Join(monDir(), "prometheus-k8s.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var cfg map[string]any
	if err := yaml.Unmarshal(data, &cfg); err != nil {
		t.Fatal(err)
	}
	// Files that exist only inside a pod stand in as an empty temp file.
	podFile := filepath.Join(t.TempDir(), "pod-file")
	if err := os.WriteFile(podFile, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	replaced := 0
	var walk func(v any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			if sd, ok := v["kubernetes_sd_configs"]; ok {
				roles, _ := sd.([]any)
				for _, r := range roles {
					role, _ := r.(map[string]any)["role"].(string)
					if role != "pod" && role != "node" && role != "service" && role != "endpoints" {
						t.Errorf("kubernetes_sd_configs role %q", role)
					}
				}
				delete(v, "kubernetes_sd_configs")
				v["static_configs"] = []any{map[string]any{"targets": []any{"127.0.0.1:9"}}}
				replaced++
			}
			for _, k := range []string{"credentials_file", "ca_file", "bearer_token_file"} {
				if _, ok := v[k]; ok {
					v[k] = podFile
				}
			}
			for _, x := range v {
				walk(x)
			}
		case []any:
			for _, x := range v {
				walk(x)
			}
		}
	}
	walk(cfg)
	if replaced < 3 {
		t.Fatalf("found %d kubernetes_sd_configs blocks, want the llmo, node and cadvisor jobs and Alertmanager", replaced)
	}
	// The llmo job must map pods to the same job names as Compose, or the
	// alert rules would not match.
	if !strings.Contains(string(data), "replacement: llmo-$1") || !strings.Contains(string(data), "app_kubernetes_io_component") {
		t.Error("prometheus-k8s.yml does not derive job=llmo-<component> from the pod's component label")
	}
	out, err := yaml.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.Symlink(filepath.Join(monDir(), "rules"), filepath.Join(dir, "rules")); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "prometheus-k8s.yml")
	if err := os.WriteFile(path, out, 0o644); err != nil {
		t.Fatal(err)
	}
	if b, err := exec.Command(promtool, "check", "config", path).CombinedOutput(); err != nil {
		t.Fatalf("promtool check config (k8s, SD as static):\n%s", b)
	}
}
