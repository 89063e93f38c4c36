package cache

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/llmo/llmo/internal/errs"
)

// NewClient returns the HTTP client of a cache service at baseURL
// (http://host:8002). Every call has the given timeout (0 means 200ms) and
// goes through a circuit breaker, so a dead service costs a few timeouts and
// then fails fast. The result also implements SemanticIndex.
func NewClient(baseURL string, timeout time.Duration) Store {
	return NewGuard("cache "+baseURL, newHTTPStore(baseURL), timeout)
}

// httpStore speaks the cache service's API without any protection; Guard
// adds the timeout and the breaker.
type httpStore struct {
	base string
	hc   *http.Client
}

func newHTTPStore(base string) *httpStore {
	tr := &http.Transport{
		Proxy:               nil, // the cache is an internal hop
		DialContext:         (&net.Dialer{Timeout: 2 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        256,
		MaxIdleConnsPerHost: 128,
		IdleConnTimeout:     90 * time.Second,
	}
	return &httpStore{base: strings.TrimRight(base, "/"), hc: &http.Client{Transport: tr}}
}

func (c *httpStore) url(parts ...string) string {
	var b strings.Builder
	b.WriteString(c.base)
	for _, p := range parts {
		b.WriteByte('/')
		b.WriteString(url.PathEscape(p))
	}
	return b.String()
}

// call performs one request and returns the response body for 2xx, or
// (nil, 404) for a miss, or an error that keeps the service's status kind.
func (c *httpStore) call(ctx context.Context, method, u string, body []byte, ctype string) ([]byte, int, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return nil, 0, errs.Wrap(errs.Internal, err, "cache client: bad request")
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return nil, 0, ctx.Err()
		}
		return nil, 0, errs.Wrap(errs.Unavailable, err, "cache service unreachable")
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		if ctx.Err() != nil {
			return nil, 0, ctx.Err()
		}
		return nil, 0, errs.Wrap(errs.Unavailable, err, "cache service: reading response")
	}
	switch {
	case resp.StatusCode/100 == 2:
		return b, resp.StatusCode, nil
	case resp.StatusCode == http.StatusNotFound && method == http.MethodGet:
		return nil, resp.StatusCode, nil
	}
	var env struct {
		Error struct {
			Message string `json:"message"`
			Param   string `json:"param"`
		} `json:"error"`
	}
	_ = json.Unmarshal(b, &env)
	msg := env.Error.Message
	if msg == "" {
		msg = fmt.Sprintf("cache service answered %s", resp.Status)
	}
	kind := errs.Unavailable
	switch resp.StatusCode {
	case http.StatusBadRequest:
		kind = errs.Invalid
	case http.StatusRequestEntityTooLarge:
		kind = errs.TooLarge
	case http.StatusNotFound:
		kind = errs.NotFound
	case http.StatusNotImplemented:
		kind = errs.NotImplemented
	}
	return nil, resp.StatusCode, &errs.Error{Kind: kind, Message: msg, Param: env.Error.Param}
}

func (c *httpStore) Get(ctx context.Context, ns, key string) ([]byte, bool, error) {
	if err := validNSKey(ns, key); err != nil {
		return nil, false, err
	}
	b, code, err := c.call(ctx, http.MethodGet, c.url("v1", "cache", ns, key), nil, "")
	if err != nil || code == http.StatusNotFound {
		return nil, false, err
	}
	return b, true, nil
}

func (c *httpStore) Set(ctx context.Context, ns, key string, val []byte, ttl time.Duration) error {
	if err := validNSKey(ns, key); err != nil {
		return err
	}
	u := c.url("v1", "cache", ns, key)
	if ttl > 0 {
		u += "?ttl=" + url.QueryEscape(ttl.String())
	}
	if val == nil {
		val = []byte{}
	}
	_, _, err := c.call(ctx, http.MethodPut, u, val, "application/octet-stream")
	return err
}

func (c *httpStore) Delete(ctx context.Context, ns, key string) error {
	if err := validNSKey(ns, key); err != nil {
		return err
	}
	_, _, err := c.call(ctx, http.MethodDelete, c.url("v1", "cache", ns, key), nil, "")
	return err
}

func (c *httpStore) Flush(ctx context.Context, ns string) error {
	if err := ValidNamespace(ns); err != nil {
		return err
	}
	_, _, err := c.call(ctx, http.MethodDelete, c.url("v1", "cache", ns), nil, "")
	return err
}

func (c *httpStore) Stats(ctx context.Context) (Stats, error) {
	var st Stats
	b, _, err := c.call(ctx, http.MethodGet, c.url("v1", "cache", "stats"), nil, "")
	if err != nil {
		return st, err
	}
	if err := json.Unmarshal(b, &st); err != nil {
		return st, errs.Wrap(errs.BadGateway, err, "cache service: bad stats response")
	}
	st.Backend = "remote:" + st.Backend
	return st, nil
}

func (c *httpStore) Add(ctx context.Context, ns, bucket string, e SemanticEntry, ttl time.Duration) error {
	if err := validEntry(ns, bucket, e); err != nil {
		return err
	}
	body, _ := json.Marshal(semanticPut{Bucket: bucket, SemanticEntry: e, TTLSeconds: ttl.Seconds()})
	_, _, err := c.call(ctx, http.MethodPut, c.url("v1", "semantic", ns), body, "application/json")
	return err
}

func (c *httpStore) Search(ctx context.Context, ns, bucket string, vec []float32, k int, minScore float32) ([]SemanticMatch, error) {
	if err := validSemantic(ns, bucket, vec); err != nil {
		return nil, err
	}
	body, _ := json.Marshal(semanticSearch{Bucket: bucket, Vector: vec, K: k, MinScore: minScore})
	b, _, err := c.call(ctx, http.MethodPost, c.url("v1", "semantic", ns, "search"), body, "application/json")
	if err != nil {
		return nil, err
	}
	var res semanticResult
	if err := json.Unmarshal(b, &res); err != nil {
		return nil, errs.Wrap(errs.BadGateway, err, "cache service: bad search response")
	}
	return res.Matches, nil
}

// Wire bodies of the semantic API.
type semanticPut struct {
	Bucket string `json:"bucket"`
	SemanticEntry
	TTLSeconds float64 `json:"ttl_s,omitempty"`
}

type semanticSearch struct {
	Bucket   string    `json:"bucket"`
	Vector   []float32 `json:"vector"`
	K        int       `json:"k,omitempty"`
	MinScore float32   `json:"min_score"`
}

type semanticResult struct {
	Matches []SemanticMatch `json:"matches"`
}
