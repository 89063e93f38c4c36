// Package storage is llmo's model artifact store: an OCI Distribution API v2
// registry (end-1 to end-13 of the distribution spec, plus _catalog) over a
// filesystem or S3 backend, with a model listing that reads llmo's artifact
// config blobs. Writes are atomic and content is verified by sha256 on the
// way in and on the way out. See docs/storage.md.
package storage

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/llmo/llmo/internal/config"
	"github.com/llmo/llmo/internal/service"
	"github.com/llmo/llmo/internal/telemetry"
)

// Config is the storage service's configuration.
type Config struct {
	service.Common
	Port           int           `flag:"port" env:"STORAGE_PORT" default:"8003" help:"HTTP port of the storage service"`
	Root           string        `flag:"root" env:"STORAGE_ROOT" help:"filesystem backend directory (default ~/.local/share/llmo/storage)"`
	S3Endpoint     string        `flag:"s3-endpoint" env:"S3_ENDPOINT" help:"S3 endpoint URL; selects the S3 backend"`
	S3Bucket       string        `flag:"s3-bucket" env:"S3_BUCKET" help:"S3 bucket (created if missing)"`
	S3Region       string        `flag:"s3-region" env:"S3_REGION" default:"us-east-1" help:"S3 region"`
	S3AccessKey    string        `flag:"s3-access-key" env:"S3_ACCESS_KEY" help:"S3 access key"`
	S3SecretKey    string        `flag:"s3-secret-key" env:"S3_SECRET_KEY" help:"S3 secret key"`
	S3Insecure     bool          `flag:"s3-insecure" env:"S3_INSECURE" help:"use plain HTTP for an endpoint given without a scheme"`
	S3Prefix       string        `flag:"s3-prefix" env:"S3_PREFIX" help:"key prefix inside the bucket"`
	PushToken      string        `flag:"push-token" env:"STORAGE_PUSH_TOKEN" help:"bearer token required to push and delete (reads stay open); empty disables"`
	MaxUploadBytes int64         `flag:"max-upload-bytes" env:"STORAGE_MAX_UPLOAD_BYTES" default:"68719476736" help:"largest blob accepted (413 above it)"`
	UploadTTL      time.Duration `flag:"upload-ttl" env:"STORAGE_UPLOAD_TTL" default:"24h" help:"abandoned upload sessions older than this are deleted"`
}

// Validate checks the config.
func (c *Config) Validate() error {
	if err := c.Common.Validate(); err != nil {
		return err
	}
	if c.Port < 0 || c.Port > 65535 {
		return fmt.Errorf("--port %d out of range", c.Port)
	}
	if c.MaxUploadBytes <= 0 {
		return fmt.Errorf("--max-upload-bytes must be positive")
	}
	if c.UploadTTL < time.Minute {
		return fmt.Errorf("--upload-ttl must be at least 1m")
	}
	if c.S3Endpoint != "" && c.S3Bucket == "" {
		return fmt.Errorf("--s3-endpoint needs --s3-bucket")
	}
	if c.S3Endpoint == "" && c.S3Bucket != "" {
		return fmt.Errorf("--s3-bucket needs --s3-endpoint")
	}
	return nil
}

func init() { config.Register(Config{}) }

// DefaultRoot is the filesystem backend's directory when --root is unset.
func DefaultRoot() string {
	if home, err := os.UserHomeDir(); err == nil {
		return filepath.Join(home, ".local", "share", "llmo", "storage")
	}
	return filepath.Join(os.TempDir(), "llmo-storage")
}

type metrics struct {
	errors         *prometheus.CounterVec
	bytesIn        prometheus.Counter
	bytesOut       prometheus.Counter
	verifyFailures prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) *metrics {
	bytes := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "llmo_storage_bytes_total", Help: "Blob and manifest bytes received (in) and served (out).",
	}, []string{"direction"})
	m := &metrics{
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "llmo_storage_errors_total", Help: "Registry requests that ended in an error, by operation.",
		}, []string{"op"}),
		bytesIn:  bytes.WithLabelValues("in"),
		bytesOut: bytes.WithLabelValues("out"),
		verifyFailures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "llmo_storage_verify_failures_total", Help: "Content that did not match its digest (uploads refused, corrupt blobs detected on read).",
		}),
	}
	reg.MustRegister(m.errors, bytes, m.verifyFailures)
	return m
}

// Storage is the storage service.
type Storage struct {
	cfg     Config
	log     *slog.Logger
	backend Backend
	reg     *registry
	srv     *service.Server
	metrics *metrics
}

// New opens the backend and builds the service. The S3 backend is used
// when cfg.S3Endpoint is set, the filesystem otherwise.
func New(ctx context.Context, cfg Config, log *slog.Logger) (*Storage, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.Default()
	}
	var b Backend
	var err error
	if cfg.S3Endpoint != "" {
		b, err = NewS3(ctx, S3Config{Endpoint: cfg.S3Endpoint, Bucket: cfg.S3Bucket, Region: cfg.S3Region,
			AccessKey: cfg.S3AccessKey, SecretKey: cfg.S3SecretKey, Insecure: cfg.S3Insecure, Prefix: cfg.S3Prefix})
	} else {
		if cfg.Root == "" {
			cfg.Root = DefaultRoot()
		}
		b, err = NewFS(cfg.Root)
	}
	if err != nil {
		return nil, err
	}
	s := NewWithBackend(cfg, b, log)
	// The janitor lives as long as the ctx New was given (the process).
	go s.janitor(ctx, cfg.UploadTTL)
	return s, nil
}

// NewWithBackend builds the service over an already opened backend.
func NewWithBackend(cfg Config, b Backend, log *slog.Logger) *Storage {
	if log == nil {
		log = slog.Default()
	}
	common := cfg.Common
	// Blob uploads are the one kind of large body; the framework's body
	// limit must not be lower than the upload cap. Manifests and chunks
	// are capped on their own.
	if common.MaxBodyBytes < cfg.MaxUploadBytes {
		common.MaxBodyBytes = cfg.MaxUploadBytes
	}
	reg := telemetry.NewRegistry()
	srv := service.New("storage", common, log, reg)
	s := &Storage{cfg: cfg, log: srv.Log, backend: b, reg: newRegistry(b, cfg.MaxUploadBytes), srv: srv, metrics: newMetrics(reg)}
	srv.Mux.HandleFunc("/v2/", s.serveV2)
	srv.Mux.HandleFunc("/v2", s.serveV2)
	srv.Mux.HandleFunc("GET /llmo/v1/models", s.handleModels)
	srv.AddReadyCheck("backend", b.Ping)
	srv.SetReady()
	srv.Log.Info("storage backend", "kind", b.Kind(), "push_auth", cfg.PushToken != "", "max_upload_bytes", cfg.MaxUploadBytes)
	return s
}

// Server is the HTTP server, for `llmo serve storage` and the monolith.
func (s *Storage) Server() *service.Server { return s.srv }

// Backend is the store the service runs on.
func (s *Storage) Backend() Backend { return s.backend }

// Port is the configured port.
func (s *Storage) Port() int { return s.cfg.Port }

var zeroTime time.Time

func writeJSON(w http.ResponseWriter, status int, v any) {
	writeJSONType(w, status, "application/json", v)
}

func writeJSONType(w http.ResponseWriter, status int, ct string, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		b = []byte(`{"errors":[{"code":"UNKNOWN","message":"response encoding failed","detail":null}]}`)
	}
	w.Header().Set("Content-Type", ct)
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}
