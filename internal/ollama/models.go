package ollama

import (
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/llmo/llmo/api"
	"github.com/llmo/llmo/internal/errs"
	"github.com/llmo/llmo/internal/service"
)

func (h *handler) embed(w http.ResponseWriter, r *http.Request) {
	start := h.now()
	var req api.OllamaEmbedRequest
	if err := decode(r, &req); err != nil {
		writeError(w, r, err)
		return
	}
	if err := requireModel(req.Model); err != nil {
		writeError(w, r, err)
		return
	}
	if req.Dimensions != nil && *req.Dimensions <= 0 {
		writeError(w, r, errs.Param("dimensions", "dimensions must be positive"))
		return
	}
	if len(req.Input) == 0 {
		// Ollama loads the model and answers with no embeddings.
		if _, err := h.findModel(r, req.Model); err != nil {
			fail(w, r, err)
			return
		}
		service.WriteJSON(w, http.StatusOK, api.OllamaEmbedResponse{Model: req.Model, Embeddings: [][]float32{}})
		return
	}
	var res api.EmbeddingResponse
	body := map[string]any{"model": req.Model, "input": []string(req.Input)}
	if req.Dimensions != nil {
		body["dimensions"] = *req.Dimensions
	}
	if err := h.call(r, http.MethodPost, "/v1/embeddings", body, &res); err != nil {
		fail(w, r, err)
		return
	}
	out := api.OllamaEmbedResponse{Model: req.Model, Embeddings: make([][]float32, len(req.Input)), PromptEvalCount: res.Usage.PromptTokens}
	for _, d := range res.Data {
		if d.Index < 0 || d.Index >= len(out.Embeddings) {
			fail(w, r, errs.E(errs.BadGateway, "upstream returned embedding index %d for %d inputs", d.Index, len(req.Input)))
			return
		}
		out.Embeddings[d.Index] = d.Embedding
	}
	for i, e := range out.Embeddings {
		if e == nil {
			fail(w, r, errs.E(errs.BadGateway, "upstream returned no embedding for input %d", i))
			return
		}
	}
	out.TotalDuration = int64(h.now().Sub(start))
	service.WriteJSON(w, http.StatusOK, out)
}

// embeddings is the legacy single-prompt endpoint.
func (h *handler) embeddings(w http.ResponseWriter, r *http.Request) {
	var req api.OllamaEmbeddingsRequest
	if err := decode(r, &req); err != nil {
		writeError(w, r, err)
		return
	}
	if err := requireModel(req.Model); err != nil {
		writeError(w, r, err)
		return
	}
	if req.Prompt == "" {
		if _, err := h.findModel(r, req.Model); err != nil {
			fail(w, r, err)
			return
		}
		service.WriteJSON(w, http.StatusOK, api.OllamaEmbeddingsResponse{Embedding: []float32{}})
		return
	}
	var res api.EmbeddingResponse
	if err := h.call(r, http.MethodPost, "/v1/embeddings", map[string]any{"model": req.Model, "input": req.Prompt}, &res); err != nil {
		fail(w, r, err)
		return
	}
	if len(res.Data) == 0 {
		fail(w, r, errs.E(errs.BadGateway, "upstream returned no embedding"))
		return
	}
	service.WriteJSON(w, http.StatusOK, api.OllamaEmbeddingsResponse{Embedding: res.Data[0].Embedding})
}

func (h *handler) models(r *http.Request) ([]api.Model, error) {
	var list api.ModelList
	if err := h.call(r, http.MethodGet, "/v1/models", nil, &list); err != nil {
		return nil, err
	}
	return list.Data, nil
}

// findModel looks a model up by its id, accepting Ollama's implicit
// ":latest" tag either way round.
func (h *handler) findModel(r *http.Request, name string) (api.Model, error) {
	ms, err := h.models(r)
	if err != nil {
		return api.Model{}, err
	}
	for _, m := range ms {
		if m.ID == name || m.ID+":latest" == name || m.ID == name+":latest" {
			return m, nil
		}
	}
	return api.Model{}, errs.E(errs.NotFound, "model '%s' not found", name)
}

func (h *handler) tags(w http.ResponseWriter, r *http.Request) {
	ms, err := h.models(r)
	if err != nil {
		fail(w, r, err)
		return
	}
	out := api.OllamaTagsResponse{Models: make([]api.OllamaModel, 0, len(ms))}
	for _, m := range ms {
		out.Models = append(out.Models, api.OllamaModel{Name: m.ID, Model: m.ID, ModifiedAt: modified(m), Size: sizeOf(m), Digest: digest(m), Details: details(m)})
	}
	service.WriteJSON(w, http.StatusOK, out)
}

func (h *handler) ps(w http.ResponseWriter, r *http.Request) {
	ms, err := h.models(r)
	if err != nil {
		fail(w, r, err)
		return
	}
	// Replicas keep their model loaded for as long as they run.
	expires := h.now().UTC().Add(24 * time.Hour).Truncate(time.Second)
	out := api.OllamaPsResponse{Models: make([]api.OllamaRunningModel, 0, len(ms))}
	for _, m := range ms {
		out.Models = append(out.Models, api.OllamaRunningModel{Name: m.ID, Model: m.ID, Size: sizeOf(m), Digest: digest(m), Details: details(m),
			ExpiresAt: expires, ContextLength: contextLength(m)})
	}
	service.WriteJSON(w, http.StatusOK, out)
}

func (h *handler) show(w http.ResponseWriter, r *http.Request) {
	var req api.OllamaShowRequest
	if err := decode(r, &req); err != nil {
		writeError(w, r, err)
		return
	}
	name := req.Model
	if name == "" {
		name = req.Name
	}
	if err := requireModel(name); err != nil {
		writeError(w, r, err)
		return
	}
	m, err := h.findModel(r, name)
	if err != nil {
		fail(w, r, err)
		return
	}
	arch := m.Architecture
	if arch == "" {
		arch = "unknown"
	}
	info := map[string]any{"general.architecture": arch}
	if m.Parameters > 0 {
		info["general.parameter_count"] = m.Parameters
	}
	if n := contextLength(m); n > 0 {
		info[arch+".context_length"] = n
	}
	if m.Quantization != "" {
		info["general.file_type"] = m.Quantization
	}
	service.WriteJSON(w, http.StatusOK, api.OllamaShowResponse{
		Modelfile:    fmt.Sprintf("# served by llmo\nFROM %s\n", m.ID),
		Details:      details(m),
		ModelInfo:    info,
		Capabilities: []string{"completion"},
		ModifiedAt:   modified(m),
	})
}

func (h *handler) version(w http.ResponseWriter, r *http.Request) {
	service.WriteJSON(w, http.StatusOK, api.OllamaVersionResponse{Version: APIVersion})
}

func modified(m api.Model) time.Time {
	if m.Created > 0 {
		return time.Unix(m.Created, 0).UTC()
	}
	return time.Unix(0, 0).UTC()
}

func contextLength(m api.Model) int {
	if m.ContextLength > 0 {
		return m.ContextLength
	}
	return m.MaxModelLen
}

func digest(m api.Model) string { return strings.TrimPrefix(m.Digest, "sha256:") }

func details(m api.Model) api.OllamaModelDetails {
	d := api.OllamaModelDetails{Format: "gguf", Family: m.Architecture, QuantizationLevel: m.Quantization}
	if m.Architecture != "" {
		d.Families = []string{m.Architecture}
	}
	if m.Parameters > 0 {
		d.ParameterSize = humanNumber(m.Parameters)
	}
	return d
}

// bitsPerWeight of the GGML quantization types, block scales included.
var bitsPerWeight = map[string]float64{
	"F32": 32, "F16": 16, "BF16": 16, "Q8_0": 8.5, "Q8_1": 9, "Q4_0": 4.5, "Q4_1": 5, "Q5_0": 5.5, "Q5_1": 6,
	"Q2_K": 2.625, "Q3_K": 3.4375, "Q4_K": 4.5, "Q5_K": 5.5, "Q6_K": 6.5625, "Q8_K": 9.125,
}

// sizeOf estimates the model's size in bytes from its parameter count and
// quantization, since /v1/models does not carry file sizes. Mixed types
// such as Q4_K_M count as their base type.
func sizeOf(m api.Model) int64 {
	if m.Parameters <= 0 {
		return 0
	}
	q := strings.ToUpper(m.Quantization)
	bpw, ok := bitsPerWeight[q]
	for k, v := range bitsPerWeight {
		if !ok && strings.HasPrefix(q, k+"_") {
			bpw, ok = v, true
		}
	}
	if !ok {
		bpw = 16
	}
	return int64(math.Round(float64(m.Parameters) * bpw / 8))
}

// humanNumber formats a parameter count as Ollama does: 494.03M, 7.6B.
func humanNumber(n int64) string {
	f := float64(n)
	switch {
	case n >= 1e9:
		if v := f / 1e9; v == math.Floor(v) {
			return fmt.Sprintf("%.0fB", v)
		} else {
			return fmt.Sprintf("%.1fB", v)
		}
	case n >= 1e6:
		if v := f / 1e6; v == math.Floor(v) {
			return fmt.Sprintf("%.0fM", v)
		} else {
			return fmt.Sprintf("%.2fM", v)
		}
	case n >= 1e3:
		return fmt.Sprintf("%.0fK", f/1e3)
	}
	return strconv.FormatInt(n, 10)
}
