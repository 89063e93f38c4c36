package modelsvc

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"math"
	"net/http"
	"slices"
	"time"

	"github.com/llmo/llmo/api"
	"github.com/llmo/llmo/internal/errs"
	"github.com/llmo/llmo/internal/service"
)

func (s *Service) routes() {
	mux := s.srv.Mux
	mux.HandleFunc("POST /v1/chat/completions", s.handleChat)
	mux.HandleFunc("POST /v1/completions", s.handleCompletions)
	mux.HandleFunc("POST /v1/embeddings", s.handleEmbeddings)
	mux.HandleFunc("GET /v1/models", s.handleModels)
	mux.HandleFunc("GET /v1/models/{id...}", s.handleModel)
}

// reject writes err and counts the refusal by reason.
func (s *Service) reject(w http.ResponseWriter, r *http.Request, err error) {
	e := errs.As(err)
	reason := ""
	switch e.Kind {
	case errs.Invalid, errs.TooLarge, errs.UnsupportedMedia:
		reason = "invalid"
	case errs.NotFound:
		reason = "not_found"
	case errs.RateLimited:
		reason = "queue_full"
	case errs.Unavailable:
		reason = "draining"
	case errs.Timeout:
		reason = "timeout"
	}
	if reason != "" {
		s.met.rejected.WithLabelValues(reason).Inc()
	}
	service.WriteError(w, r, err)
}

// lookup finds the model a request names. An empty name means the only
// model when one is served.
func (s *Service) lookup(name string) (*model, error) {
	if name == "" {
		if len(s.models) == 1 {
			return s.models[0], nil
		}
		return nil, errs.Param("model", "model is required; this server has %d models (see GET /v1/models)", len(s.models))
	}
	m, ok := s.byID[name]
	if !ok {
		e := errs.E(errs.NotFound, "The model `%s` does not exist on this server (see GET /v1/models).", truncate(name, 200))
		e.Param = "model"
		return nil, e.WithCode("model_not_found")
	}
	return m, nil
}

// admit refuses new work while draining, then waits for slots.
func (s *Service) admit(ctx context.Context, m *model, n int) (release func(), err error) {
	if s.draining.Load() {
		return nil, errs.E(errs.Unavailable, "server is shutting down; retry on another replica").WithRetry(time.Second)
	}
	release, waited, err := m.adm.acquire(ctx, n)
	if err != nil {
		switch {
		case errs.KindOf(err) == errs.Timeout:
			return nil, errs.Wrap(errs.Timeout, err, "request timed out after %s waiting for a free slot", waited.Round(time.Millisecond))
		}
		return nil, err
	}
	s.met.queue.WithLabelValues(m.id).Observe(waited.Seconds())
	return release, nil
}

func (s *Service) apiModel(m *model) api.Model {
	out := api.Model{ID: m.id, Object: "model", Created: m.created, OwnedBy: "llmo",
		ContextLength: m.ctxLen, MaxModelLen: m.ctxLen, Quantization: m.info.Quant, Parameters: m.info.Params,
		Architecture: m.info.Arch, ChatTemplate: m.tmpl != nil}
	if d := m.digest.Load(); d != nil {
		out.Digest = *d
	}
	return out
}

func (s *Service) handleModels(w http.ResponseWriter, r *http.Request) {
	list := api.ModelList{Object: "list", Data: []api.Model{}}
	for _, m := range s.models {
		list.Data = append(list.Data, s.apiModel(m))
	}
	service.WriteJSON(w, http.StatusOK, list)
}

func (s *Service) handleModel(w http.ResponseWriter, r *http.Request) {
	m, err := s.lookup(r.PathValue("id"))
	if err != nil || r.PathValue("id") == "" {
		if err == nil {
			err = errs.E(errs.NotFound, "no model id given").WithCode("model_not_found")
		}
		s.reject(w, r, err)
		return
	}
	service.WriteJSON(w, http.StatusOK, s.apiModel(m))
}

func (s *Service) handleEmbeddings(w http.ResponseWriter, r *http.Request) {
	var req api.EmbeddingRequest
	if err := decode(r, &req); err != nil {
		s.reject(w, r, err)
		return
	}
	m, err := s.lookup(req.Model)
	if err != nil {
		s.reject(w, r, err)
		return
	}
	inputs, err := s.prompts(m, req.Input, "input", false)
	if err != nil {
		s.reject(w, r, err)
		return
	}
	switch req.EncodingFormat {
	case "", "float", "base64":
	default:
		s.reject(w, r, errs.Param("encoding_format", "encoding_format must be float or base64, got %q", truncate(req.EncodingFormat, 50)))
		return
	}
	if req.Dimensions != nil && *req.Dimensions != m.info.EmbedDim {
		s.reject(w, r, errs.Param("dimensions", "this model's embeddings have %d dimensions; dimensions=%d is not supported", m.info.EmbedDim, *req.Dimensions))
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), s.cfg.RequestTimeout)
	defer cancel()
	release, err := s.admit(ctx, m, 1)
	if err != nil {
		s.reject(w, r, err)
		return
	}
	defer release()
	resp := api.EmbeddingResponse{Object: "list", Model: m.id, Data: make([]api.Embedding, 0, len(inputs))}
	var b64 []string
	for i, ids := range inputs {
		if len(ids) > m.ctxLen {
			s.reject(w, r, errs.Param("input", "input %d is %d tokens; the model's context is %d", i, len(ids), m.ctxLen).WithCode("context_length_exceeded"))
			return
		}
		vec, err := m.b.Embed(ctx, ids)
		if err != nil {
			s.reject(w, r, err)
			return
		}
		resp.Usage.PromptTokens += len(ids)
		if req.EncodingFormat == "base64" {
			b64 = append(b64, encodeFloats(vec))
			vec = nil
		}
		resp.Data = append(resp.Data, api.Embedding{Object: "embedding", Index: i, Embedding: vec})
	}
	resp.Usage.TotalTokens = resp.Usage.PromptTokens
	s.met.promptTokens.WithLabelValues(m.id).Add(float64(resp.Usage.PromptTokens))
	if b64 == nil {
		service.WriteJSON(w, http.StatusOK, resp)
		return
	}
	// OpenAI's base64 format: little-endian float32s. The official SDKs ask
	// for it by default.
	type b64Embedding struct {
		Object    string `json:"object"`
		Index     int    `json:"index"`
		Embedding string `json:"embedding"`
	}
	out := struct {
		Object string         `json:"object"`
		Data   []b64Embedding `json:"data"`
		Model  string         `json:"model"`
		Usage  api.Usage      `json:"usage"`
	}{Object: "list", Model: m.id, Usage: resp.Usage}
	for i, e := range b64 {
		out.Data = append(out.Data, b64Embedding{Object: "embedding", Index: i, Embedding: e})
	}
	service.WriteJSON(w, http.StatusOK, out)
}

func encodeFloats(v []float32) string {
	buf := make([]byte, 4*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint32(buf[4*i:], math.Float32bits(x))
	}
	return base64.StdEncoding.EncodeToString(buf)
}

// prompts tokenizes a prompt or input field: text (with BOS when the model
// wants one) or token ids, which are checked against the vocabulary.
func (s *Service) prompts(m *model, p api.Prompt, param string, allowEmpty bool) ([][]int, error) {
	if !p.Set || (len(p.Texts) == 0 && len(p.IDs) == 0) {
		return nil, errs.Param(param, "%s is required", param)
	}
	n := max(len(p.Texts), len(p.IDs))
	if n > maxPrompts {
		return nil, errs.Param(param, "at most %d %ss per request, got %d", maxPrompts, param, n)
	}
	var out [][]int
	for _, t := range p.Texts {
		if t == "" && !allowEmpty {
			return nil, errs.Param(param, "%s must not be empty", param)
		}
		if len(t) > maxBytesPerToken*m.ctxLen { // far more bytes than the context can hold tokens; skip tokenizing it
			return nil, errs.Param(param, "%s is %d bytes, far longer than the model's context of %d tokens", param, len(t), m.ctxLen).WithCode("context_length_exceeded")
		}
		ids, err := m.b.Encode(t, true, false)
		if err != nil {
			return nil, err
		}
		if len(ids) == 0 {
			return nil, errs.Param(param, "%s must not be empty", param)
		}
		out = append(out, ids)
	}
	for _, ids := range p.IDs {
		if len(ids) == 0 {
			return nil, errs.Param(param, "%s token list must not be empty", param)
		}
		for _, id := range ids {
			if id < 0 || id >= m.info.VocabSize {
				return nil, errs.Param(param, "token id %d is outside the vocabulary (0..%d)", id, m.info.VocabSize-1)
			}
		}
		out = append(out, slices.Clone(ids))
	}
	return out, nil
}

func newID(prefix string) string { return prefix + rand.Text() }

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

// requestContext bounds a request by --request-timeout; the client hanging
// up cancels it too.
func (s *Service) requestContext(r *http.Request) (context.Context, context.CancelFunc) {
	return context.WithTimeout(r.Context(), s.cfg.RequestTimeout)
}
