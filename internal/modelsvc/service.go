// Package modelsvc is the model service (`llmo serve model`): it loads GGUF
// models on the native engine and serves them over the OpenAI API
// (/v1/chat/completions, /v1/completions, /v1/embeddings, /v1/models) with
// admission control, vLLM-compatible metrics, readiness that follows the
// engine, and graceful drain.
package modelsvc

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/llmo/llmo/internal/chattmpl"
	"github.com/llmo/llmo/internal/engine"
	"github.com/llmo/llmo/internal/service"
)

// Service is a running model service. Build it with New, serve
// Server() (Serve or ListenAndServe), then Close it.
type Service struct {
	cfg    Config
	log    *slog.Logger
	srv    *service.Server
	models []*model
	byID   map[string]*model
	met    *metrics

	draining atomic.Bool
	bgCtx    context.Context
	bgStop   context.CancelFunc
	bg       sync.WaitGroup
	closed   sync.Once
}

// model is one served model.
type model struct {
	id      string
	path    string
	digest  atomic.Pointer[string]
	b       backend
	info    engine.Info
	ctxLen  int
	tmpl    *chattmpl.Template // nil: chat is refused with a clear error
	bos     string
	eos     string
	adm     *admission
	warm    atomic.Bool
	warmErr atomic.Pointer[string]
	created int64
}

// New loads cfg.Models and builds the service. The models are loaded before
// it returns (a bad file is a start-up error); warm-up runs in the
// background and /ready turns true when it is done.
func New(ctx context.Context, cfg Config, log *slog.Logger) (*Service, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.Default()
	}
	srv := service.New("model", cfg.Common, log, nil)
	s := &Service{cfg: cfg, log: srv.Log, srv: srv, byID: map[string]*model{}, met: newMetrics(srv.Registry)}
	s.bgCtx, s.bgStop = context.WithCancel(context.WithoutCancel(ctx))
	override, err := loadOverride(cfg.ChatTemplate)
	if err != nil {
		return nil, err
	}
	specs, err := s.expand(ctx, cfg.Models)
	if err != nil {
		return nil, err
	}
	for _, sp := range specs {
		m, err := s.load(sp, override)
		if err != nil {
			s.Close()
			return nil, err
		}
		if _, dup := s.byID[m.id]; dup {
			_ = m.b.Close()
			s.Close()
			return nil, fmt.Errorf("two models are named %q; rename a file or use --served-model-name", m.id)
		}
		s.models = append(s.models, m)
		s.byID[m.id] = m
		s.met.addModel(m)
	}
	s.routes()
	srv.AddReadyCheck("models", s.readyCheck)
	srv.AddHealthCheck("engine", s.healthCheck)
	srv.OnDrain(func() {
		s.draining.Store(true)
		s.log.Info("draining: refusing new requests, finishing in-flight sequences")
	})
	srv.SetReady() // the "models" check now decides
	for _, m := range s.models {
		s.goBG(func() { s.warmUp(m) })
		if m.digest.Load() == nil {
			s.goBG(func() { s.hashFile(m) })
		}
	}
	if cfg.Gateway != "" {
		s.goBG(s.heartbeat)
	}
	return s, nil
}

// Server is the HTTP server, with the model routes mounted.
func (s *Service) Server() *service.Server { return s.srv }

// Close stops background work and the engine loops and frees the models.
// Call it after Serve has returned (the drain has finished).
func (s *Service) Close() {
	s.closed.Do(func() {
		s.draining.Store(true)
		s.bgStop()
		s.bg.Wait()
		for _, m := range s.models {
			if err := m.b.Close(); err != nil {
				s.log.Warn("closing model", "model", m.id, "err", err)
			}
		}
	})
}

func (s *Service) goBG(fn func()) {
	s.bg.Add(1)
	go func() { defer s.bg.Done(); fn() }()
}

// modelSpec is a model file to load, with what is known about it.
type modelSpec struct {
	id, path, digest string
}

// expand turns --model values (files, directories, artifact refs) into
// model files.
func (s *Service) expand(ctx context.Context, refs []string) ([]modelSpec, error) {
	var out []modelSpec
	for _, ref := range refs {
		st, err := os.Stat(ref)
		switch {
		case err == nil && st.IsDir():
			files, _ := filepath.Glob(filepath.Join(ref, "*.gguf"))
			if len(files) == 0 {
				return nil, fmt.Errorf("--model %s: directory has no .gguf files", ref)
			}
			slices.Sort(files)
			for _, f := range files {
				out = append(out, modelSpec{id: strings.TrimSuffix(filepath.Base(f), ".gguf"), path: f})
			}
		case err == nil:
			out = append(out, modelSpec{id: strings.TrimSuffix(filepath.Base(ref), ".gguf"), path: ref})
		default:
			if looksLikePath(ref) {
				return nil, fmt.Errorf("--model %s: %w", ref, err)
			}
			path, digest, rerr := resolveRef(ctx, ref, s.cfg, s.log)
			if rerr != nil {
				return nil, fmt.Errorf("--model %s: %w", ref, rerr)
			}
			out = append(out, modelSpec{id: refName(ref), path: path, digest: digest})
		}
	}
	if s.cfg.ServedModelName != "" {
		if len(out) != 1 {
			return nil, errors.New("--served-model-name applies to a single model file")
		}
		out[0].id = s.cfg.ServedModelName
	}
	return out, nil
}

// looksLikePath says whether a --model value that does not exist was meant
// as a local file rather than an artifact ref.
func looksLikePath(ref string) bool {
	if strings.Contains(ref, "://") {
		return false
	}
	return strings.HasSuffix(ref, ".gguf") || strings.HasPrefix(ref, "/") || strings.HasPrefix(ref, ".") || !strings.Contains(ref, ":")
}

// refName is the model id for an artifact ref: the last path element,
// without a .gguf suffix (hf://org/repo/x.gguf -> x, oci://h/llmo/m:1 -> m:1).
func refName(ref string) string {
	if i := strings.Index(ref, "://"); i >= 0 {
		ref = ref[i+3:]
	}
	if i := strings.LastIndex(ref, "/"); i >= 0 {
		ref = ref[i+1:]
	}
	return strings.TrimSuffix(ref, ".gguf")
}

func (s *Service) load(sp modelSpec, override *chattmpl.Template) (*model, error) {
	start := time.Now()
	b, err := loadEngine(sp.path, engine.Options{Threads: s.cfg.Threads, Int8: s.cfg.Int8, MaxBatch: s.cfg.MaxBatch, CtxLen: s.cfg.CtxLen})
	if err != nil {
		return nil, fmt.Errorf("loading %s: %w", sp.path, err)
	}
	m, err := s.newModel(sp, b, override)
	if err != nil {
		_ = b.Close()
		return nil, err
	}
	s.log.Info("model loaded", "model", m.id, "path", sp.path, "arch", m.info.Arch, "quant", m.info.Quant,
		"params", m.info.Params, "ctx", m.ctxLen, "chat_template", m.tmpl != nil, "ms", time.Since(start).Milliseconds())
	return m, nil
}

// newModel wraps a loaded backend.
func (s *Service) newModel(sp modelSpec, b backend, override *chattmpl.Template) (*model, error) {
	info := b.Info()
	m := &model{id: sp.id, path: sp.path, b: b, info: info, ctxLen: info.CtxLen, created: time.Now().Unix(),
		adm: newAdmission(s.cfg.MaxBatch, s.cfg.MaxQueue)}
	if s.cfg.CtxLen > 0 && (m.ctxLen == 0 || s.cfg.CtxLen < m.ctxLen) {
		m.ctxLen = s.cfg.CtxLen
	}
	if m.ctxLen <= 1 {
		return nil, fmt.Errorf("model %s reports a context length of %d", sp.id, m.ctxLen)
	}
	if sp.digest != "" {
		d := sp.digest
		m.digest.Store(&d)
	}
	m.bos, m.eos = b.SpecialTexts()
	switch {
	case override != nil:
		m.tmpl = override
	case info.ChatTemplate != "":
		t, err := chattmpl.New(info.ChatTemplate)
		if err != nil {
			// A model whose own template is broken still serves completions.
			s.log.Warn("model's chat template does not parse; chat is disabled (use --chat-template)", "model", sp.id, "err", err)
		} else {
			m.tmpl = t
		}
	}
	return m, nil
}

// loadOverride reads --chat-template: a built-in name or a file.
func loadOverride(name string) (*chattmpl.Template, error) {
	if name == "" {
		return nil, nil
	}
	src := chattmpl.Builtin(name)
	if src == "" {
		b, err := os.ReadFile(name)
		if err != nil {
			return nil, fmt.Errorf("--chat-template: %w", err)
		}
		src = string(b)
	}
	t, err := chattmpl.New(src)
	if err != nil {
		return nil, fmt.Errorf("--chat-template %s: %w", name, err)
	}
	return t, nil
}

// warmUp runs one short decode so that the first client does not pay for
// page faults and lazy initialisation, and so /ready means "can generate".
func (s *Service) warmUp(m *model) {
	start := time.Now()
	err := func() error {
		ctx, cancel := context.WithTimeout(s.bgCtx, 5*time.Minute)
		defer cancel()
		prompt := []int{m.info.BOS}
		if m.info.BOS < 0 || m.info.BOS >= m.info.VocabSize {
			prompt = []int{0}
		}
		ch, err := m.b.Submit(ctx, engine.Request{Prompt: prompt, MaxTokens: 1})
		if err != nil {
			return err
		}
		for ev := range ch {
			if ev.Err != nil {
				return ev.Err
			}
			if ev.Done {
				return nil
			}
		}
		return cmp.Or(ctx.Err(), errors.New("warm-up sequence ended without finishing"))
	}()
	if err != nil {
		msg := "warm-up failed: " + err.Error()
		m.warmErr.Store(&msg)
		s.log.Error("warm-up failed; model stays not ready", "model", m.id, "err", err)
		return
	}
	m.warm.Store(true)
	s.log.Info("model ready", "model", m.id, "warmup_ms", time.Since(start).Milliseconds())
}

func (s *Service) hashFile(m *model) {
	f, err := os.Open(m.path)
	if err != nil {
		return
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, readerCtx{s.bgCtx, f}); err != nil {
		return
	}
	d := "sha256:" + hex.EncodeToString(h.Sum(nil))
	m.digest.Store(&d)
}

// readerCtx stops a long read when ctx ends.
type readerCtx struct {
	ctx context.Context
	r   io.Reader
}

func (r readerCtx) Read(p []byte) (int, error) {
	if err := r.ctx.Err(); err != nil {
		return 0, err
	}
	return r.r.Read(p)
}

func (s *Service) readyCheck(context.Context) error {
	for _, m := range s.models {
		if m.warm.Load() {
			continue
		}
		if p := m.warmErr.Load(); p != nil {
			return fmt.Errorf("model %s: %s", m.id, *p)
		}
		return fmt.Errorf("model %s is warming up", m.id)
	}
	return nil
}

// healthCheck fails when an engine loop has work but has made no progress
// for --wedge-timeout: a restart is the only cure for that.
func (s *Service) healthCheck(context.Context) error {
	for _, m := range s.models {
		st := m.b.Stats()
		if st.Running+st.Waiting == 0 || st.LastStep.IsZero() {
			continue
		}
		if idle := time.Since(st.LastStep); idle > s.cfg.WedgeTimeout {
			return fmt.Errorf("model %s: engine loop made no progress for %s with %d running and %d waiting",
				m.id, idle.Round(time.Second), st.Running, st.Waiting)
		}
	}
	return nil
}
