package monitoringtest

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/llmo/llmo/internal/dashboard"
	"github.com/llmo/llmo/internal/testenv"
)

// browser starts headless Debian Chromium and returns a chromedp context
// whose browser lives until the test ends. Limit steps with step().
func browser(t *testing.T) context.Context {
	t.Helper()
	exe := testenv.Binary(t, "chromium")
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(exe),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1440, 1300),
	}
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelC := chromedp.NewContext(actx, chromedp.WithLogf(t.Logf))
	t.Cleanup(func() { cancelC(); cancelA() })
	// The first run starts the browser; it must not carry a timeout, which
	// would end the browser with it.
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	return ctx
}

// step is ctx limited to d, for one group of browser actions.
func step(t *testing.T, ctx context.Context, d time.Duration) context.Context {
	c, cancel := context.WithTimeout(ctx, d)
	t.Cleanup(cancel)
	return c
}

// text is the visible text of the first element matching the CSS selector.
func text(t *testing.T, ctx context.Context, sel string) string {
	t.Helper()
	s, err := chromedp.Run(step(t, ctx, 10*time.Second), chromedp.Text(chromedp.CSS(sel)))
	if err != nil {
		t.Fatalf("text of %s: %v", sel, err)
	}
	return s
}

// waitJS polls a JavaScript condition until it holds.
func waitJS(t *testing.T, ctx context.Context, what, cond string) {
	t.Helper()
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](cond, chromedp.WithPollingTimeout(30*time.Second))); err != nil {
		t.Fatalf("waiting for %s (%s): %v", what, cond, err)
	}
}

// apiProxy forwards to the gateway's API port, streaming (no buffering).
func apiProxy(t *testing.T, base string) http.Handler {
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	p := httputil.NewSingleHostReverseProxy(u)
	p.FlushInterval = -1
	return p
}

// dashboardURL is the gateway's own dashboard port when the gateway serves
// this package's UI there, or else the UI served in-process in front of the
// gateway's API (the same handler, reached over one more hop).
func dashboardURL(t *testing.T, s *stack) string {
	t.Helper()
	resp, err := http.Get(s.url(s.Dashboard) + "/")
	if err == nil {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK && strings.Contains(string(b), `name="llmo-dashboard"`) {
			return s.url(s.Dashboard) + "/"
		}
	}
	t.Logf("the gateway does not serve the dashboard on --dashboard-port yet; serving internal/dashboard in-process in front of its API")
	srv := httptest.NewServer(dashboard.Handler(apiProxy(t, s.url(s.API))))
	t.Cleanup(srv.Close)
	return srv.URL + "/"
}

// TestDashboardBrowser opens the gateway's dashboard in headless Chromium,
// sees the replicas listed as healthy, sends a playground message and sees
// the streamed reply, and saves a screenshot to test-artifacts/.
func TestDashboardBrowser(t *testing.T) {
	s := startStack(t, 2)
	s.traffic(t) // so the charts have something to draw
	page := dashboardURL(t, s)
	ctx := browser(t)

	err := chromedp.Do(step(t, ctx, 30*time.Second),
		chromedp.Navigate(page),
		chromedp.WaitVisible(chromedp.CSS(`tr.replica[data-state="healthy"]`)),
	)
	if err != nil {
		t.Fatalf("dashboard topology: %v", err)
	}
	waitJS(t, ctx, "both replicas healthy", `document.querySelectorAll('tr.replica[data-state="healthy"]').length === 2`)
	waitJS(t, ctx, "charts drawn", `Number(document.getElementById('charts-section').dataset.points || 0) > 0`)
	// The gateway reports "degraded" until its first cache and storage
	// checks have run; the badge follows.
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](`document.getElementById('status').dataset.status === 'ok'`, chromedp.WithPollingTimeout(20*time.Second))); err != nil {
		h, _ := s.health()
		t.Errorf("status badge never showed ok (gateway health %+v): %v", h, err)
	}
	statusText, pools := text(t, ctx, "#status"), text(t, ctx, "#pools")
	// Auth is off: no key field.
	if hidden, err := chromedp.Run(step(t, ctx, 5*time.Second), chromedp.Evaluate[bool](`getComputedStyle(document.getElementById('auth')).display === 'none'`)); err != nil || !hidden {
		t.Errorf("the API key field shows although auth is off (err %v)", err)
	}
	if statusText != "ok" {
		t.Errorf("status badge text %q, want ok", statusText)
	}
	for _, port := range s.Models {
		if want := fmt.Sprintf("http://127.0.0.1:%d", port); !strings.Contains(pools, want) {
			t.Errorf("topology does not list replica %s:\n%s", want, pools)
		}
	}
	if !strings.Contains(pools, s.Model) || !strings.Contains(pools, "2/2 healthy") || !strings.Contains(pools, "closed") {
		t.Errorf("topology lacks the model, its health count or breaker state:\n%s", pools)
	}

	// <option>s have no box, so "visible" never holds for them.
	waitJS(t, ctx, "a model to chat with", `document.querySelectorAll('#chat-model option').length > 0`)
	err = chromedp.Do(step(t, ctx, 60*time.Second),
		chromedp.SetValue(chromedp.CSS(`#chat-input`), "Once upon a time there was a little"),
		chromedp.SetValue(chromedp.CSS(`#chat-max`), "24"),
		chromedp.Click(chromedp.CSS(`#chat-send`)),
		chromedp.WaitVisible(chromedp.CSS(`#chat-state[data-state="done"]`)),
	)
	if err != nil {
		log, _ := chromedp.Run(step(t, ctx, 5*time.Second), chromedp.Text(chromedp.CSS(`#chat-log`)))
		t.Fatalf("playground: %v\nchat log: %s", err, log)
	}
	reply, state := text(t, ctx, ".msg.assistant .text"), text(t, ctx, "#chat-state")
	if strings.TrimSpace(reply) == "" {
		t.Errorf("no streamed reply in the playground")
	}
	// "first token" is measured by the SSE reader when the first delta arrives.
	if !strings.Contains(state, "done (") || !strings.Contains(state, "first token") {
		t.Errorf("chat state %q, want a finished stream with its first-token time", state)
	}
	t.Logf("playground reply: %q (%s)", reply, state)

	// A screenshot for people, saved as a CI artifact.
	_ = chromedp.Do(ctx, chromedp.Sleep(300*time.Millisecond))
	png, err := chromedp.Run(step(t, ctx, 20*time.Second), chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	dir := filepath.Join(testenv.RepoRoot(), "test-artifacts")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "dashboard.png"), png, 0o644); err != nil {
		t.Fatal(err)
	}
	if len(png) < 10_000 {
		t.Errorf("screenshot is only %d bytes", len(png))
	}
}

// TestDashboardBrowserAuth runs the gateway with auth on: the page cannot
// read the topology without a key (/api/health names internal replica
// URLs), so it brings up the key field; with the key it shows the replicas
// and the chat streams. The charts still ask for the admin key.
func TestDashboardBrowserAuth(t *testing.T) {
	s := startStackEnv(t, 1, []string{"LLMO_AUTH=on", "LLMO_API_KEYS=dash:sk-dash-test", "LLMO_ADMIN_KEY=sk-admin-test"})
	page := dashboardURL(t, s)
	ctx := browser(t)

	err := chromedp.Do(step(t, ctx, 30*time.Second),
		chromedp.Navigate(page),
		chromedp.WaitVisible(chromedp.CSS(`#auth`)),
	)
	if err != nil {
		t.Fatalf("no key prompt for the topology with auth on: %v", err)
	}
	if msg := text(t, ctx, "#auth-msg"); !strings.Contains(msg, "API key") {
		t.Errorf("key prompt says %q, want it to ask for an API key", msg)
	}
	if replicas, err := chromedp.Run(step(t, ctx, 5*time.Second), chromedp.Evaluate[int](`document.querySelectorAll('tr.replica').length`)); err != nil || replicas != 0 {
		t.Errorf("replicas shown without a key: %d (%v)", replicas, err)
	}
	err = chromedp.Do(step(t, ctx, 30*time.Second),
		chromedp.SendKeys(chromedp.CSS(`#apikey`), "sk-dash-test"),
		chromedp.Click(chromedp.CSS(`#auth button`)),
		chromedp.WaitVisible(chromedp.CSS(`tr.replica[data-state="healthy"]`)),
	)
	if err != nil {
		t.Fatalf("topology with the key: %v", err)
	}
	waitJS(t, ctx, "a model to chat with", `document.querySelectorAll('#chat-model option').length > 0`)
	err = chromedp.Do(step(t, ctx, 60*time.Second),
		chromedp.SetValue(chromedp.CSS(`#chat-max`), "8"),
		chromedp.Click(chromedp.CSS(`#chat-send`)),
		chromedp.WaitVisible(chromedp.CSS(`#chat-state[data-state="done"]`)),
	)
	if err != nil {
		log, _ := chromedp.Run(step(t, ctx, 5*time.Second), chromedp.Text(chromedp.CSS(`#chat-log`)))
		t.Fatalf("chat with the key: %v\nchat log: %s", err, log)
	}
	if reply := text(t, ctx, ".msg.assistant .text"); strings.TrimSpace(reply) == "" {
		t.Error("no reply after entering the key")
	}
	if msg := text(t, ctx, "#stats-msg"); !strings.Contains(msg, "admin key") {
		t.Errorf("charts message %q, want it to ask for the admin key", msg)
	}
}
