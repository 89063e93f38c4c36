package monitoringtest

import (
	"encoding/json"
	"fmt"
	"os/exec"
	"strings"
	"testing"

	"github.com/llmo/llmo/internal/testenv"
)

// TestStatusCommand runs `llmo status` against a running gateway: the table
// lists every replica as healthy, --json is the gateway's health document,
// and a stopped gateway gives exit status 1 with a clear message.
func TestStatusCommand(t *testing.T) {
	s := startStack(t, 2)
	bin := testenv.Llmo(t)
	run := func(args ...string) (string, string, int) {
		cmd := exec.Command(bin, append([]string{"status"}, args...)...)
		cmd.Env = childEnv()
		cmd.Dir = t.TempDir()
		var out, errb strings.Builder
		cmd.Stdout, cmd.Stderr = &out, &errb
		err := cmd.Run()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return out.String(), errb.String(), code
	}

	out, errOut, code := run("--gateway", s.url(s.API))
	if code != 0 {
		t.Fatalf("status exited %d: %s", code, errOut)
	}
	for _, want := range []string{"gateway", "ok", s.Model, "2/2", "closed", "static"} {
		if !strings.Contains(out, want) {
			t.Errorf("status output lacks %q:\n%s", want, out)
		}
	}
	for _, port := range s.Models {
		line := ""
		for _, l := range strings.Split(out, "\n") {
			if strings.Contains(l, fmt.Sprintf("http://127.0.0.1:%d", port)) {
				line = l
			}
		}
		if !strings.Contains(line, "healthy") {
			t.Errorf("replica on port %d not listed as healthy:\n%s", port, out)
		}
	}
	t.Logf("llmo status:\n%s", out)

	out, _, code = run("--json", "--gateway", s.url(s.API))
	var doc healthDoc
	if err := json.Unmarshal([]byte(out), &doc); err != nil || code != 0 {
		t.Fatalf("status --json (exit %d) is not the health document: %v\n%s", code, err, out)
	}
	if len(doc.Pools) != 1 || doc.Pools[0].Healthy != 2 || doc.Status != "ok" {
		t.Errorf("status --json: %+v", doc)
	}

	s.kill(t, "gateway")
	_, errOut, code = run("--gateway", s.url(s.API))
	if code != 1 || !strings.Contains(errOut, "unreachable") {
		t.Errorf("status against a stopped gateway: exit %d, stderr %q; want 1 and \"unreachable\"", code, errOut)
	}
}
