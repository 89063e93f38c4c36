// Package auth is the gateway's API-key authentication and quota layer.
//
// Keys come from a YAML/JSON file or LLMO_API_KEYS and are kept only as
// sha256 hashes, compared in constant time; the plaintext is never stored or
// logged. Each key has a name, allowed models, requests/minute (enforced
// with x/time/rate) and tokens/minute. A token quota reserves the prompt
// estimate plus max_tokens at admission, atomically, and reconciles with the
// usage the proxy reports in the request's reqinfo.Meter when the request
// ends. Failures are 401, 403 and 429 (with Retry-After) in the envelope
// service.WriteError picks for the path.
package auth

import (
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/time/rate"

	"github.com/llmo/llmo/internal/errs"
	"github.com/llmo/llmo/internal/reqinfo"
	"github.com/llmo/llmo/internal/service"
)

// Anonymous is the name of the principal every request gets when auth is off.
const Anonymous = "anonymous"

// Auth authenticates requests and enforces per-key quotas.
type Auth struct {
	cfg      Config
	enabled  bool
	keys     []*Key
	limits   map[*Key]*limits
	admin    [sha256.Size]byte
	hasAdmin bool
	log      *slog.Logger
	now      func() time.Time

	rejections *prometheus.CounterVec
	failures   *prometheus.CounterVec
}

type limits struct {
	rpm *rate.Limiter // nil = unlimited
	tpm *tokenBucket  // nil = unlimited
}

// New builds the auth layer. With auth on it needs at least one API key or
// an admin key; with auth off it logs a warning, since anyone who can reach
// the gateway can then use it.
func New(cfg Config, reg prometheus.Registerer, log *slog.Logger) (*Auth, error) {
	if log == nil {
		log = slog.Default()
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	a := &Auth{cfg: cfg, enabled: cfg.Enabled(), limits: map[*Key]*limits{}, log: log, now: time.Now}
	a.rejections = registerCounter(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "llmo_gateway_quota_rejections_total",
		Help: "Requests refused by quotas or model permissions, by key name and kind (rpm, tpm, model).",
	}, []string{"key", "kind"}))
	a.failures = registerCounter(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "llmo_gateway_auth_failures_total",
		Help: "Requests refused for missing, invalid or non-admin credentials, by reason.",
	}, []string{"reason"}))
	if !a.enabled {
		log.Warn("auth is OFF: every request is served as the anonymous principal with no quotas and /admin is open; set LLMO_AUTH=on for anything but local use")
		return a, nil
	}
	if cfg.KeysFile != "" {
		data, err := readLimited(cfg.KeysFile, maxKeyFile)
		if err != nil {
			return nil, fmt.Errorf("auth: %w", err)
		}
		keys, err := ParseKeysFile(cfg.KeysFile, data, cfg.DefaultRPM, cfg.DefaultTPM)
		if err != nil {
			return nil, fmt.Errorf("auth: %s: %w", cfg.KeysFile, err)
		}
		a.keys = append(a.keys, keys...)
	}
	if cfg.Keys != "" {
		keys, err := ParseKeysEnv(cfg.Keys, cfg.DefaultRPM, cfg.DefaultTPM)
		if err != nil {
			return nil, fmt.Errorf("auth: %w", err)
		}
		a.keys = append(a.keys, keys...)
	}
	if err := checkDuplicates(a.keys); err != nil {
		return nil, fmt.Errorf("auth: %w", err)
	}
	if cfg.AdminKey != "" {
		if err := checkSecret(cfg.AdminKey); err != nil {
			return nil, fmt.Errorf("auth: LLMO_ADMIN_KEY: %w", err)
		}
		a.admin, a.hasAdmin = hashKey(cfg.AdminKey), true
		a.cfg.AdminKey = "" // keep only the hash
	}
	a.cfg.Keys = ""
	if len(a.keys) == 0 && !a.hasAdmin {
		return nil, errors.New("auth is on but no API keys are configured: set LLMO_API_KEYS or --api-keys-file (or LLMO_AUTH=off for local use)")
	}
	now := a.now()
	names := make([]string, 0, len(a.keys))
	for _, k := range a.keys {
		l := &limits{}
		if k.RPM > 0 {
			l.rpm = rate.NewLimiter(rate.Limit(float64(k.RPM)/60), k.RPM)
		}
		if k.TPM > 0 {
			l.tpm = newTokenBucket(k.TPM, now)
		}
		a.limits[k] = l
		names = append(names, k.Name)
	}
	log.Info("auth on", "keys", names, "admin_key", a.hasAdmin)
	if !a.hasAdmin && !anyAdmin(a.keys) {
		log.Warn("no admin key configured (LLMO_ADMIN_KEY): /admin endpoints refuse every request")
	}
	return a, nil
}

func anyAdmin(keys []*Key) bool {
	for _, k := range keys {
		if k.Admin {
			return true
		}
	}
	return false
}

func registerCounter(reg prometheus.Registerer, c *prometheus.CounterVec) *prometheus.CounterVec {
	if reg == nil {
		return c
	}
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(*prometheus.CounterVec); ok {
				return existing
			}
		}
		panic(err)
	}
	return c
}

func readLimited(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("%s is larger than %d bytes", path, limit)
	}
	return data, nil
}

// Enabled reports whether keys are checked.
func (a *Auth) Enabled() bool { return a.enabled }

// secret is the API key a request presents: a Bearer token, else x-api-key.
func secret(r *http.Request) (string, error) {
	if h := r.Header.Get("Authorization"); h != "" {
		scheme, tok, ok := strings.Cut(strings.TrimSpace(h), " ")
		if !ok || !strings.EqualFold(scheme, "Bearer") {
			return "", errs.E(errs.Unauthenticated, "unsupported Authorization scheme; send Authorization: Bearer <key>")
		}
		return strings.TrimSpace(tok), nil
	}
	return strings.TrimSpace(r.Header.Get("X-Api-Key")), nil
}

var (
	errMissing = errs.E(errs.Unauthenticated, "missing API key: send Authorization: Bearer <key> or x-api-key: <key>").WithCode("missing_api_key")
	errInvalid = errs.E(errs.Unauthenticated, "invalid API key").WithCode("invalid_api_key")
)

// authenticate returns the request's key, or nil with admin=true for the
// admin key.
func (a *Auth) authenticate(r *http.Request) (k *Key, admin bool, err error) {
	s, err := secret(r)
	if err != nil {
		return nil, false, err
	}
	if s == "" {
		return nil, false, errMissing
	}
	k = match(a.keys, s)
	h := hashKey(s)
	isAdmin := a.hasAdmin && subtle.ConstantTimeCompare(a.admin[:], h[:]) == 1
	switch {
	case k != nil:
		return k, k.Admin, nil
	case isAdmin:
		return nil, true, nil
	}
	return nil, false, errInvalid
}

// Middleware authenticates, checks the model against the key's allowed
// models, admits the request against its quotas and puts a reqinfo.Principal
// and a fresh reqinfo.Meter in the context. After next returns it reconciles
// the token reservation with the Meter's usage.
// anonymous is the principal of every request when auth is off. Shared,
// since no layer modifies a Principal: one allocation fewer per request.
var anonymous = &reqinfo.Principal{KeyName: Anonymous, Namespace: Anonymous}

func (a *Auth) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !a.enabled {
			ctx := reqinfo.WithPrincipal(r.Context(), anonymous)
			ctx, _ = reqinfo.WithMeter(ctx)
			next.ServeHTTP(w, r.WithContext(ctx))
			return
		}
		k, admin, err := a.authenticate(r)
		if err != nil {
			a.deny(w, r, err, "")
			return
		}
		p := &reqinfo.Principal{Admin: admin}
		if k != nil {
			p.KeyName, p.Namespace, p.SemanticCache = k.Name, k.Namespace, k.SemanticCache
			p.AllowedModels = k.Models
		} else {
			p.KeyName, p.Namespace = "admin", "admin"
		}

		var req request
		if r.Method == http.MethodPost && r.Body != nil {
			body, err := io.ReadAll(r.Body)
			if err != nil {
				a.deny(w, r, bodyError(r, err), p.KeyName)
				return
			}
			r.Body = io.NopCloser(bytes.NewReader(body))
			r.ContentLength = int64(len(body))
			if req, err = parseRequest(body); err != nil {
				a.deny(w, r, err, p.KeyName)
				return
			}
		}
		if k != nil && len(k.Models) > 0 && r.Method == http.MethodPost {
			if req.Model == "" {
				a.deny(w, r, errs.Param("model", "model is required"), p.KeyName)
				return
			}
			if !k.Allows(req.Model) {
				a.rejections.WithLabelValues(k.Name, "model").Inc()
				a.deny(w, r, errs.E(errs.PermissionDenied, "this API key may not use model %q", req.Model).WithCode("model_not_allowed"), p.KeyName)
				return
			}
		}

		var lim *limits
		if k != nil {
			lim = a.limits[k]
		}
		reserved, err := a.admit(lim, k, r, &req)
		if err != nil {
			a.deny(w, r, err, p.KeyName)
			return
		}
		ctx := reqinfo.WithPrincipal(r.Context(), p)
		ctx, meter := reqinfo.WithMeter(ctx)
		sw := &statusWriter{ResponseWriter: w}
		if reserved > 0 {
			defer func() { a.reconcile(lim.tpm, reserved, meter, sw.status) }()
		}
		next.ServeHTTP(sw, r.WithContext(ctx))
	})
}

// admit takes one request from the rpm limiter and, for a POST, reserves the
// token estimate from the tpm bucket, both or neither. It returns the tokens
// reserved.
func (a *Auth) admit(lim *limits, k *Key, r *http.Request, req *request) (int, error) {
	if lim == nil {
		return 0, nil
	}
	now := a.now()
	var res *rate.Reservation
	if lim.rpm != nil {
		res = lim.rpm.ReserveN(now, 1)
		if d := res.DelayFrom(now); !res.OK() || d > 0 {
			res.CancelAt(now)
			a.rejections.WithLabelValues(k.Name, "rpm").Inc()
			return 0, errs.E(errs.RateLimited, "rate limit reached: this key allows %d requests per minute", k.RPM).
				WithCode("rate_limit_exceeded").WithRetry(d)
		}
	}
	if lim.tpm == nil || r.Method != http.MethodPost {
		return 0, nil
	}
	need := req.promptTokens() + req.completionTokens(r.URL.Path, a.cfg.DefaultMaxTokens)
	if need <= 0 {
		return 0, nil
	}
	if need > k.TPM {
		if res != nil {
			res.CancelAt(now)
		}
		a.rejections.WithLabelValues(k.Name, "tpm").Inc()
		return 0, errs.E(errs.RateLimited, "request too large: it needs about %d tokens (prompt estimate + max_tokens) and this key allows %d tokens per minute; lower max_tokens", need, k.TPM).
			WithCode("request_too_large").WithRetry(time.Minute)
	}
	if ok, wait := lim.tpm.take(need, now); !ok {
		if res != nil {
			res.CancelAt(now)
		}
		a.rejections.WithLabelValues(k.Name, "tpm").Inc()
		return 0, errs.E(errs.RateLimited, "token rate limit reached: this key allows %d tokens per minute and the request needs about %d", k.TPM, need).
			WithCode("rate_limit_exceeded").WithRetry(wait)
	}
	return need, nil
}

// reconcile replaces the reservation with the real usage: unused tokens go
// back, extra tokens are charged (the bucket may go into debt). Cache hits
// cost nothing. A failed request with no usage is refunded; a successful
// one with no usage report keeps its reservation, as the safe guess.
func (a *Auth) reconcile(b *tokenBucket, reserved int, m *reqinfo.Meter, status int) {
	u, ok := m.Usage()
	var used int
	switch {
	case m.Cached:
		used = 0
	case ok:
		used = u.PromptTokens + u.CompletionTokens
	case status >= 400:
		used = 0
	default:
		return
	}
	b.adjust(reserved-used, a.now())
}

// RequireAdmin lets through only the admin key (LLMO_ADMIN_KEY, or a file
// key with admin: true). With auth off, everyone passes.
func (a *Auth) RequireAdmin(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !a.enabled {
			next.ServeHTTP(w, r.WithContext(reqinfo.WithPrincipal(r.Context(), &reqinfo.Principal{KeyName: Anonymous, Namespace: Anonymous, Admin: true})))
			return
		}
		k, admin, err := a.authenticate(r)
		if err != nil {
			a.deny(w, r, err, "")
			return
		}
		name := "admin"
		if k != nil {
			name = k.Name
		}
		if !admin {
			a.failures.WithLabelValues("not_admin").Inc()
			a.deny(w, r, errs.E(errs.PermissionDenied, "this endpoint needs the admin key"), name)
			return
		}
		next.ServeHTTP(w, r.WithContext(reqinfo.WithPrincipal(r.Context(), &reqinfo.Principal{KeyName: name, Namespace: name, Admin: true})))
	})
}

// deny logs (without any secret) and writes err.
func (a *Auth) deny(w http.ResponseWriter, r *http.Request, err error, key string) {
	e := errs.As(err)
	if e.Kind == errs.Unauthenticated {
		reason := "invalid"
		if e == errMissing {
			reason = "missing"
		}
		a.failures.WithLabelValues(reason).Inc()
		w.Header().Set("WWW-Authenticate", `Bearer realm="llmo"`)
	}
	a.log.DebugContext(r.Context(), "request refused", "key", key, "path", r.URL.Path, "status", e.Kind.Status(), "reason", e.Message)
	service.WriteError(w, r, e)
}

func bodyError(r *http.Request, err error) error {
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return errs.E(errs.TooLarge, "request body exceeds the limit of %d bytes", mbe.Limit)
	}
	if ctxErr := r.Context().Err(); ctxErr != nil {
		return errs.Wrap(errs.Canceled, ctxErr, "request canceled")
	}
	return errs.Wrap(errs.Invalid, err, "could not read request body")
}

// statusWriter records the status for reconciliation and passes Flush and
// Unwrap through so that streaming works behind it.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(p)
}

func (w *statusWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
