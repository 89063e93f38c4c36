package cache_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/llmo/llmo/internal/cache"
)

func do(t *testing.T, method, url string, body []byte, hdr ...string) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest(method, url, bytes.NewReader(body))
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func TestAPIStatuses(t *testing.T) {
	hs := serve(t, mem(t, 1<<20))
	u := hs.URL
	big := bytes.Repeat([]byte("x"), 64<<10+1)
	cases := []struct {
		name, method, path string
		body               []byte
		hdr                []string
		want               int
		wantBody           string
	}{
		{"put", "PUT", "/v1/cache/ns/k1", []byte("v1"), nil, 204, ""},
		{"get", "GET", "/v1/cache/ns/k1", nil, nil, 200, "v1"},
		{"miss", "GET", "/v1/cache/ns/nope", nil, nil, 404, "no such key"},
		{"bad key charset", "PUT", "/v1/cache/ns/a%20b", []byte("v"), nil, 400, "key"},
		{"bad ns charset", "GET", "/v1/cache/n%2Ax/k", nil, nil, 400, "namespace"},
		{"key too long", "PUT", "/v1/cache/ns/" + strings.Repeat("k", 251), []byte("v"), nil, 400, "1 to 250"},
		{"value too large", "PUT", "/v1/cache/ns/big", big, nil, 413, "limit"},
		{"ttl query", "PUT", "/v1/cache/ns/t1?ttl=90s", []byte("v"), nil, 204, ""},
		{"ttl header seconds", "PUT", "/v1/cache/ns/t2", []byte("v"), []string{"X-Cache-TTL", "60"}, 204, ""},
		{"bad ttl", "PUT", "/v1/cache/ns/t3?ttl=soon", []byte("v"), nil, 400, "ttl"},
		{"negative ttl", "PUT", "/v1/cache/ns/t3?ttl=-5s", []byte("v"), nil, 400, "ttl"},
		{"semantic bad json", "PUT", "/v1/semantic/ns", []byte("{"), nil, 400, "malformed"},
		{"semantic nan-free vector", "PUT", "/v1/semantic/ns", []byte(`{"bucket":"b","id":"i","vector":[]}`), nil, 400, "vector"},
		{"semantic add", "PUT", "/v1/semantic/ns", []byte(`{"bucket":"b","id":"i","text":"t","vector":[1,0]}`), nil, 204, ""},
		{"semantic search", "POST", "/v1/semantic/ns/search", []byte(`{"bucket":"b","vector":[1,0.01],"min_score":0.9}`), nil, 200, `"id":"i"`},
		{"semantic bad score", "POST", "/v1/semantic/ns/search", []byte(`{"bucket":"b","vector":[1],"min_score":7}`), nil, 400, "min_score"},
		{"delete", "DELETE", "/v1/cache/ns/k1", nil, nil, 204, ""},
		{"gone", "GET", "/v1/cache/ns/k1", nil, nil, 404, ""},
		{"flush", "DELETE", "/v1/cache/ns", nil, nil, 204, ""},
		{"flushed", "GET", "/v1/cache/ns/t1", nil, nil, 404, ""},
		{"stats", "GET", "/v1/cache/stats", nil, nil, 200, `"backend":"memory"`},
	}
	for _, c := range cases {
		resp, body := do(t, c.method, u+c.path, c.body, c.hdr...)
		if resp.StatusCode != c.want || !strings.Contains(body, c.wantBody) {
			t.Errorf("%s: %s %s = %d %q; want %d containing %q", c.name, c.method, c.path, resp.StatusCode, body, c.want, c.wantBody)
		}
	}
	_, metrics := do(t, "GET", u+"/metrics", nil)
	for _, want := range []string{
		`llmo_cache_requests_total{op="get",result="hit"} 1`,
		`llmo_cache_requests_total{op="get",result="miss"} 3`,
		`llmo_cache_requests_total{op="set",result="invalid"} 5`,
		"llmo_cache_entries ", "llmo_cache_bytes ", "llmo_cache_evictions_total 0",
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
}

func TestAPITTLApplies(t *testing.T) {
	hs := serve(t, mem(t, 1<<20))
	if resp, _ := do(t, "PUT", hs.URL+"/v1/cache/ns/k?ttl=100ms", []byte("v")); resp.StatusCode != 204 {
		t.Fatal(resp.Status)
	}
	deadline := time.Now().Add(3 * time.Second)
	for {
		resp, _ := do(t, "GET", hs.URL+"/v1/cache/ns/k", nil)
		if resp.StatusCode == 404 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("a 100ms TTL given in the query did not expire")
		}
		time.Sleep(25 * time.Millisecond)
	}
}

func TestAPIStatsJSON(t *testing.T) {
	hs := serve(t, mem(t, 1<<20))
	do(t, "PUT", hs.URL+"/v1/cache/ns/k", []byte("12345"))
	_, body := do(t, "GET", hs.URL+"/v1/cache/stats", nil)
	var st cache.Stats
	if err := json.Unmarshal([]byte(body), &st); err != nil {
		t.Fatal(err)
	}
	if st.Entries != 1 || st.Bytes != int64(len("ns")+len("k")+5) || st.MaxBytes != 1<<20 {
		t.Fatalf("stats %+v", st)
	}
}
