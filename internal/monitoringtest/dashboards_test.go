package monitoringtest

import (
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/llmo/llmo/internal/testenv"
)

// grafanaDashboard is the part of a Grafana dashboard JSON the tests check.
type grafanaDashboard struct {
	UID           string  `json:"uid"`
	Title         string  `json:"title"`
	SchemaVersion int     `json:"schemaVersion"`
	Panels        []panel `json:"panels"`
	Templating    struct {
		List []struct {
			Name       string      `json:"name"`
			Type       string      `json:"type"`
			Datasource *datasource `json:"datasource"`
			Definition string      `json:"definition"`
		} `json:"list"`
	} `json:"templating"`
}

type panel struct {
	ID         int         `json:"id"`
	Type       string      `json:"type"`
	Title      string      `json:"title"`
	Datasource *datasource `json:"datasource"`
	GridPos    *gridPos    `json:"gridPos"`
	Targets    []struct {
		Datasource *datasource `json:"datasource"`
		Expr       string      `json:"expr"`
		RefID      string      `json:"refId"`
	} `json:"targets"`
	Panels []panel `json:"panels"` // collapsed rows
}

type gridPos struct {
	H int `json:"h"`
	W int `json:"w"`
	X int `json:"x"`
	Y int `json:"y"`
}

type datasource struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

// provisionedDatasource is the uid of the datasource Grafana provisioning
// creates.
func provisionedDatasource(t *testing.T) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(monDir(), "grafana", "provisioning", "datasources", "prometheus.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var p struct {
		Datasources []struct {
			UID  string `yaml:"uid"`
			Type string `yaml:"type"`
		} `yaml:"datasources"`
	}
	if err := yaml.Unmarshal(data, &p); err != nil {
		t.Fatal(err)
	}
	if len(p.Datasources) != 1 || p.Datasources[0].UID == "" || p.Datasources[0].Type != "prometheus" {
		t.Fatalf("want one prometheus datasource with a fixed uid, got %+v", p.Datasources)
	}
	return p.Datasources[0].UID
}

// dashExpr is one PromQL expression found in a dashboard.
type dashExpr struct {
	where string // dashboard / panel title / refId
	expr  string
}

// loadDashboards reads every dashboard, checks its structure and returns
// its expressions.
func loadDashboards(t *testing.T) []dashExpr {
	t.Helper()
	dsUID := provisionedDatasource(t)
	files, _ := filepath.Glob(filepath.Join(monDir(), "grafana", "dashboards", "*.json"))
	if len(files) == 0 {
		t.Fatal("no dashboards")
	}
	var exprs []dashExpr
	uids := map[string]bool{}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var d grafanaDashboard
		if err := json.Unmarshal(data, &d); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		name := filepath.Base(f)
		if d.SchemaVersion < 36 {
			t.Errorf("%s: schemaVersion %d; want >= 36 (Grafana 9+)", name, d.SchemaVersion)
		}
		if d.UID == "" || d.Title == "" || uids[d.UID] {
			t.Errorf("%s: uid %q / title %q missing or duplicated", name, d.UID, d.Title)
		}
		uids[d.UID] = true
		checkDS := func(where string, ds *datasource) {
			if ds == nil || ds.UID != dsUID || ds.Type != "prometheus" {
				t.Errorf("%s: %s: datasource %+v, want prometheus uid %q", name, where, ds, dsUID)
			}
		}
		var hasModelVar bool
		for _, v := range d.Templating.List {
			if v.Type == "query" {
				checkDS("variable "+v.Name, v.Datasource)
				exprs = append(exprs, dashExpr{name + " / variable " + v.Name, labelValuesSelector(v.Definition)})
			}
			hasModelVar = hasModelVar || v.Name == "model_name"
		}
		if !hasModelVar {
			t.Errorf("%s: no $model_name variable (vLLM's dashboards filter on it)", name)
		}
		ids := map[int]string{}
		var walk func(ps []panel)
		walk = func(ps []panel) {
			for _, p := range ps {
				if p.ID <= 0 {
					t.Errorf("%s: panel %q has no id", name, p.Title)
				} else if prev, dup := ids[p.ID]; dup {
					t.Errorf("%s: panels %q and %q share id %d", name, prev, p.Title, p.ID)
				}
				ids[p.ID] = p.Title
				if p.GridPos == nil || p.GridPos.W <= 0 || p.GridPos.H <= 0 || p.GridPos.X+p.GridPos.W > 24 {
					t.Errorf("%s: panel %q has a bad gridPos %+v", name, p.Title, p.GridPos)
				}
				if p.Type == "row" {
					walk(p.Panels)
					continue
				}
				checkDS("panel "+p.Title, p.Datasource)
				if len(p.Targets) == 0 {
					t.Errorf("%s: panel %q has no queries", name, p.Title)
				}
				refs := map[string]bool{}
				for _, tg := range p.Targets {
					checkDS("panel "+p.Title+" query "+tg.RefID, tg.Datasource)
					if tg.Expr == "" || refs[tg.RefID] {
						t.Errorf("%s: panel %q: empty expression or duplicate refId %q", name, p.Title, tg.RefID)
					}
					refs[tg.RefID] = true
					exprs = append(exprs, dashExpr{fmt.Sprintf("%s / %s / %s", name, p.Title, tg.RefID), tg.Expr})
				}
			}
		}
		walk(d.Panels)
		if len(ids) < 10 {
			t.Errorf("%s: only %d panels", name, len(ids))
		}
	}
	return exprs
}

var labelValuesRe = regexp.MustCompile(`^label_values\((.+),\s*\w+\)$`)

// labelValuesSelector turns a Grafana label_values(selector, label) query
// into its selector, which is PromQL.
func labelValuesSelector(def string) string {
	if m := labelValuesRe.FindStringSubmatch(strings.TrimSpace(def)); m != nil {
		return m[1]
	}
	return def
}

// TestDashboardSyntax runs every dashboard expression through promtool's
// PromQL parser (as recording rules of a scratch rule file).
func TestDashboardSyntax(t *testing.T) {
	promtool := testenv.Binary(t, "promtool")
	exprs := loadDashboards(t)
	type rec struct {
		Record string `yaml:"record"`
		Expr   string `yaml:"expr"`
	}
	var rules []rec
	for i, e := range exprs {
		rules = append(rules, rec{fmt.Sprintf("dashboard:expr_%d", i), expandVars(e.expr)})
	}
	out, err := yaml.Marshal(map[string]any{"groups": []any{map[string]any{"name": "dashboards", "rules": rules}}})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "dashboards.yml")
	if err := os.WriteFile(path, out, 0o644); err != nil {
		t.Fatal(err)
	}
	if b, err := exec.Command(promtool, "check", "rules", path).CombinedOutput(); err != nil {
		t.Fatalf("dashboard PromQL does not parse:\n%s", b)
	}
}

// faultOnly are metrics that only get a series once something fails
// (label values appear with the first error). A running stack without
// faults cannot show them, so the test finds their name in the source of
// the package that exports them instead.
var faultOnly = map[string]string{
	"llmo_storage_errors_total":  "internal/storage",
	"llmo_cache_errors_total":    "internal/cache",
	"llmo_gateway_retries_total": "internal/gateway",
}

// synthetic are series Prometheus makes itself.
var synthetic = map[string]bool{"up": true, "scrape_duration_seconds": true, "scrape_samples_scraped": true}

// histogramFamily strips the suffixes of histogram and summary series.
func histogramFamily(name string) string {
	for _, suf := range []string{"_bucket", "_sum", "_count"} {
		if f, ok := strings.CutSuffix(name, suf); ok {
			return f
		}
	}
	return name
}

// exportedInSource reports whether a Go file (not a test) under dir names
// the metric in a string literal.
func exportedInSource(t *testing.T, dir, metric string) bool {
	found := false
	root := filepath.Join(testenv.RepoRoot(), dir)
	_ = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") || found {
			return nil
		}
		data, err := os.ReadFile(path)
		if err == nil && strings.Contains(string(data), `"`+metric+`"`) {
			found = true
		}
		return nil
	})
	return found
}

// TestDashboardAndRuleMetricsExported starts a real stack, sends traffic,
// scrapes every service and checks that each metric named by a dashboard
// panel, a recording rule or an alert is exported by a service (or, for
// recording-rule series, defined by a recording rule whose own inputs are
// exported).
func TestDashboardAndRuleMetricsExported(t *testing.T) {
	exprs := loadDashboards(t)
	records, alerts := loadRules(t)
	for name, r := range records {
		exprs = append(exprs, dashExpr{"recording rule " + name, r.Expr})
	}
	for name, a := range alerts {
		exprs = append(exprs, dashExpr{"alert " + name, a.Expr})
	}

	s := startStack(t, 1)
	s.traffic(t)
	exported := map[string]string{} // metric -> service
	for svc, port := range map[string]int{"gateway": s.API, "model": s.Models[0], "cache": s.Cache, "storage": s.Storage} {
		for n := range scrapeNames(t, s.url(port)) {
			exported[n] = svc
		}
	}
	// The contract's TTFT SLO needs a 1s bucket on the gateway histogram.
	if !strings.Contains(scrapeRaw(t, s.url(s.API)), `llmo_gateway_ttft_seconds_bucket{model="stories260K",le="1"}`) {
		t.Error(`llmo_gateway_ttft_seconds has no le="1" bucket; the TTFT SLO rules need it`)
	}

	used := map[string][]string{}
	for _, e := range exprs {
		names, err := metricNames(e.expr)
		if err != nil {
			t.Errorf("%s: %v", e.where, err)
			continue
		}
		if len(names) == 0 {
			t.Errorf("%s: expression %q names no metric", e.where, e.expr)
		}
		for _, n := range names {
			used[n] = append(used[n], e.where)
		}
	}
	var missing []string
	for n, where := range used {
		switch {
		case records[n].Record != "", synthetic[n], exported[n] != "", exported[histogramFamily(n)] != "":
			continue
		case faultOnly[histogramFamily(n)] != "":
			if !exportedInSource(t, faultOnly[histogramFamily(n)], histogramFamily(n)) {
				t.Errorf("%s (used by %s) is not defined in %s", n, where[0], faultOnly[histogramFamily(n)])
			}
			continue
		}
		missing = append(missing, fmt.Sprintf("%s (used by %s)", n, strings.Join(where, "; ")))
	}
	sort.Strings(missing)
	for _, m := range missing {
		t.Errorf("no running service exports %s", m)
	}
	t.Logf("%d metric names checked across %d expressions", len(used), len(exprs))
}
