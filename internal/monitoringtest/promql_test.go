package monitoringtest

import (
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
)

// grafanaVars are the Grafana template variables the dashboards use, with
// values that make the expression valid PromQL.
var grafanaVars = strings.NewReplacer(
	"$__rate_interval", "1m", "${__rate_interval}", "1m",
	"$__interval", "1m", "$__range", "1h",
	"${model_name}", ".*", "$model_name", ".*",
)

// expandVars turns a dashboard expression into plain PromQL.
func expandVars(expr string) string { return grafanaVars.Replace(expr) }

var (
	groupingClause = regexp.MustCompile(`\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)`)
	promKeywords   = map[string]bool{
		"and": true, "or": true, "unless": true, "bool": true, "offset": true, "by": true, "without": true,
		"on": true, "ignoring": true, "group_left": true, "group_right": true, "atan2": true,
		"inf": true, "nan": true, "Inf": true, "NaN": true,
	}
)

// metricNames lists the metric names a PromQL expression selects. It is a
// small lexer, not a parser: strings, label matchers, range selectors and
// grouping clauses are dropped, numbers and durations are skipped, and an
// identifier followed by "(" is a function or aggregation. Syntax is checked
// separately by promtool and by a real Prometheus.
func metricNames(expr string) ([]string, error) {
	s := expandVars(expr)
	var b strings.Builder
	// Drop string literals and {...} / [...] blocks.
	depthBrace, depthBracket := 0, 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"' || c == '\'' || c == '`':
			j := i + 1
			for ; j < len(s) && s[j] != c; j++ {
				if s[j] == '\\' && c != '`' {
					j++
				}
			}
			if j >= len(s) {
				return nil, fmt.Errorf("unterminated string in %q", expr)
			}
			i = j
			b.WriteByte(' ')
		case c == '{':
			depthBrace++
		case c == '}':
			depthBrace--
			b.WriteByte(' ')
		case c == '[':
			depthBracket++
		case c == ']':
			depthBracket--
			b.WriteByte(' ')
		case depthBrace > 0 || depthBracket > 0:
		default:
			b.WriteByte(c)
		}
		if depthBrace < 0 || depthBracket < 0 {
			return nil, fmt.Errorf("unbalanced brackets in %q", expr)
		}
	}
	if depthBrace != 0 || depthBracket != 0 {
		return nil, fmt.Errorf("unbalanced brackets in %q", expr)
	}
	s = groupingClause.ReplaceAllString(b.String(), " ")

	isStart := func(c byte) bool { return c == '_' || c == ':' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }
	isPart := func(c byte) bool { return isStart(c) || c >= '0' && c <= '9' }
	seen := map[string]bool{}
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c >= '0' && c <= '9' || c == '.':
			// A number or duration (5m, 1e3, 0.95): skip it whole.
			for i < len(s) && (isPart(s[i]) || s[i] == '.') {
				i++
			}
		case isStart(c):
			j := i
			for j < len(s) && isPart(s[j]) {
				j++
			}
			word := s[i:j]
			k := j
			for k < len(s) && (s[k] == ' ' || s[k] == '\t' || s[k] == '\n') {
				k++
			}
			if !(k < len(s) && s[k] == '(') && !promKeywords[word] {
				seen[word] = true
			}
			i = j
		default:
			i++
		}
	}
	names := make([]string, 0, len(seen))
	for n := range seen {
		names = append(names, n)
	}
	sort.Strings(names)
	return names, nil
}

func TestMetricNames(t *testing.T) {
	tests := []struct {
		expr string
		want []string
	}{
		{`up{job="llmo-model"} == 0`, []string{"up"}},
		{`sum by (model) (rate(llmo_gateway_requests_total{code=~"5.."}[5m]))`, []string{"llmo_gateway_requests_total"}},
		{`histogram_quantile(0.99, sum by(le) (rate(vllm:e2e_request_latency_seconds_bucket{model_name="$model_name"}[$__rate_interval])))`,
			[]string{"vllm:e2e_request_latency_seconds_bucket"}},
		{`a:b:rate5m < 0.5 * c:d:rate1h and e_total offset 1h > 0.2`, []string{"a:b:rate5m", "c:d:rate1h", "e_total"}},
		{`sum(x) by (le) / ignoring(code) group_left(instance) y`, []string{"x", "y"}},
		{`label_replace(m{a="b"}, "model", "$1", "model_name", "(.*)")`, []string{"m"}},
		{`1 - (sum(rate(t_bucket{le="1"}[1d])) / sum(rate(t_count[1d])))`, []string{"t_bucket", "t_count"}},
		{`increase(v[10m]) > 1e3`, []string{"v"}},
		{`max by (replica) (llmo_gateway_breaker_state) == 2`, []string{"llmo_gateway_breaker_state"}},
		{`sum without (instance) (w) or vector(0)`, []string{"w"}},
		{`"only a string"`, []string{}},
	}
	for _, tt := range tests {
		got, err := metricNames(tt.expr)
		if err != nil {
			t.Errorf("metricNames(%q): %v", tt.expr, err)
			continue
		}
		if !slices.Equal(got, tt.want) {
			t.Errorf("metricNames(%q) = %q, want %q", tt.expr, got, tt.want)
		}
	}
	for _, bad := range []string{`x{a="b"`, `rate(x[5m)`, `x{a="b}`} {
		if _, err := metricNames(bad); err == nil {
			t.Errorf("metricNames(%q): no error for malformed input", bad)
		}
	}
}
