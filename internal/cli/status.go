package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/llmo/llmo/internal/config"
)

type statusConfig struct {
	Gateway string        `flag:"gateway" env:"LLMO_GATEWAY" default:"http://127.0.0.1:8000" help:"gateway base URL"`
	JSON    bool          `flag:"json" help:"print the gateway's /api/health document as JSON"`
	APIKey  string        `flag:"api-key" env:"LLMO_API_KEY" help:"API key sent as a Bearer token, for gateways that require one on /api/health"`
	Timeout time.Duration `flag:"timeout" env:"LLMO_STATUS_TIMEOUT" default:"5s" help:"how long to wait for the gateway"`
}

// Validate checks the gateway URL and timeout.
func (c *statusConfig) Validate() error {
	u, err := url.Parse(c.Gateway)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("--gateway %q: want an http(s) URL such as http://127.0.0.1:8000", c.Gateway)
	}
	if c.Timeout <= 0 {
		return fmt.Errorf("--timeout must be positive")
	}
	return nil
}

func init() {
	config.Register(statusConfig{})
	Register("status", runStatus)
}

// statusDoc is GET /api/health (CONTRACTS.md). Unknown fields are kept by
// --json, which prints the document as received.
type statusDoc struct {
	Status  string       `json:"status"`
	Version string       `json:"version"`
	Uptime  float64      `json:"uptime_s"`
	Pools   []statusPool `json:"pools"`
	Cache   *statusDep   `json:"cache"`
	Storage *statusDep   `json:"storage"`
}

type statusPool struct {
	Model    string          `json:"model"`
	Healthy  int             `json:"healthy"`
	Replicas []statusReplica `json:"replicas"`
}

type statusReplica struct {
	URL         string   `json:"url"`
	State       string   `json:"state"`
	Breaker     string   `json:"breaker"`
	Outstanding *int     `json:"outstanding"`
	Waiting     *int     `json:"waiting"`
	Running     *int     `json:"running"`
	KVUsage     *float64 `json:"kv_usage"`
	Source      string   `json:"source"`
	LastError   string   `json:"last_error"`
}

type statusDep struct {
	URL   string `json:"url"`
	State string `json:"state"`
}

// errGatewayDown is returned when the gateway answers but reports that no
// model can be served, so scripts can tell from the exit code.
var errGatewayDown = errors.New("the gateway reports status down: no model has a healthy replica")

// runStatus is `llmo status`: the stack's topology and health as the
// gateway sees it. It exits 1 when the gateway cannot be reached or
// reports "down".
func runStatus(ctx context.Context, env *Env, args []string) error {
	var cfg statusConfig
	rest, err := LoadConfig(env, "status", "llmo status [--gateway URL] [--json]", &cfg, args)
	if err != nil {
		return err
	}
	if len(rest) != 0 {
		return UsageError{fmt.Errorf("status takes no arguments, got %q", rest)}
	}
	raw, doc, err := fetchHealth(ctx, cfg)
	if err != nil {
		return err
	}
	if cfg.JSON {
		var buf bytes.Buffer
		if err := json.Indent(&buf, raw, "", "  "); err != nil {
			return fmt.Errorf("gateway at %s sent invalid JSON: %w", cfg.Gateway, err)
		}
		buf.WriteByte('\n')
		if _, err := env.Stdout.Write(buf.Bytes()); err != nil {
			return err
		}
	} else if err := printStatus(env.Stdout, cfg.Gateway, doc); err != nil {
		return err
	}
	if doc.Status == "down" {
		return errGatewayDown
	}
	return nil
}

func fetchHealth(ctx context.Context, cfg statusConfig) ([]byte, *statusDoc, error) {
	ctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	base := strings.TrimSuffix(cfg.Gateway, "/")
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/api/health", nil)
	if err != nil {
		return nil, nil, err
	}
	req.Header.Set("Accept", "application/json")
	if cfg.APIKey != "" {
		req.Header.Set("Authorization", "Bearer "+cfg.APIKey)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, nil, fmt.Errorf("gateway at %s is unreachable: %v\n(is it running? point --gateway or LLMO_GATEWAY at it)", cfg.Gateway, unwrapURLError(err))
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if err != nil {
		return nil, nil, fmt.Errorf("gateway at %s: reading /api/health: %w", cfg.Gateway, err)
	}
	switch {
	case resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden:
		return nil, nil, fmt.Errorf("gateway at %s refused /api/health (%d): pass an API key with --api-key or LLMO_API_KEY", cfg.Gateway, resp.StatusCode)
	case resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusServiceUnavailable:
		// 503 carries the document with status "down"; anything else is not
		// an llmo gateway answering.
		return nil, nil, fmt.Errorf("gateway at %s answered /api/health with %s", cfg.Gateway, resp.Status)
	}
	var doc statusDoc
	if err := json.Unmarshal(raw, &doc); err != nil || doc.Status == "" {
		return nil, nil, fmt.Errorf("gateway at %s sent something that is not an llmo health document (is this the gateway's API port?)", cfg.Gateway)
	}
	return raw, &doc, nil
}

// unwrapURLError drops the "Get URL:" prefix the URL is already in.
func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

func printStatus(w io.Writer, gateway string, d *statusDoc) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "gateway\t%s\t%s\tversion %s, up %s\n", orDash(gateway), orDash(d.Status), orDash(d.Version), (time.Duration(d.Uptime) * time.Second).String())
	for _, dep := range []struct {
		name string
		d    *statusDep
	}{{"cache", d.Cache}, {"storage", d.Storage}} {
		if dep.d == nil {
			continue
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t\n", dep.name, orDash(dep.d.URL), orDash(dep.d.State))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w)
	if len(d.Pools) == 0 {
		_, err := fmt.Fprintln(w, "no replica pools")
		return err
	}
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "MODEL\tHEALTHY\tREPLICA\tSTATE\tBREAKER\tOUTSTANDING\tRUNNING\tWAITING\tKV\tSOURCE")
	for _, p := range d.Pools {
		model := p.Model
		if model == "" {
			model = "(unknown)"
		}
		model = orDash(model)
		healthy := fmt.Sprintf("%d/%d", p.Healthy, len(p.Replicas))
		if len(p.Replicas) == 0 {
			fmt.Fprintf(tw, "%s\t%s\t-\t\t\t\t\t\t\t\n", model, healthy)
		}
		for i, r := range p.Replicas {
			m, h := model, healthy
			if i > 0 {
				m, h = "", ""
			}
			kv := "-"
			if r.KVUsage != nil {
				kv = fmt.Sprintf("%.0f%%", *r.KVUsage*100)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", m, h, orDash(r.URL), orDash(r.State), orDash(r.Breaker),
				intOrDash(r.Outstanding), intOrDash(r.Running), intOrDash(r.Waiting), kv, orDash(r.Source))
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	// Why replicas are out of the pool, below the table so it stays narrow.
	for _, p := range d.Pools {
		for _, r := range p.Replicas {
			if r.State != "healthy" && r.LastError != "" {
				fmt.Fprintf(w, "  %s: %s\n", orDash(r.URL), orDash(r.LastError))
			}
		}
	}
	return nil
}

// orDash is s made safe for a terminal table (a gateway, or something
// pretending to be one, could send escape sequences or newlines), or "-".
func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) {
			return '?'
		}
		return r
	}, s)
}

func intOrDash(p *int) string {
	if p == nil {
		return "-"
	}
	return fmt.Sprint(*p)
}
