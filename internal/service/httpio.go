package service

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/llmo/llmo/internal/errs"
)

// Style is an error envelope format.
type Style int

const (
	OpenAI Style = iota // {"error":{"message","type","param","code"}}
	Ollama              // {"error":"..."}
)

// StyleFor picks the envelope for a request path: Ollama's under /api/,
// OpenAI's everywhere else.
func StyleFor(path string) Style {
	if strings.HasPrefix(path, "/api/") && path != "/api/health" {
		return Ollama
	}
	return OpenAI
}

// OpenAIError is the OpenAI error envelope body.
type OpenAIError struct {
	Error OpenAIErrorBody `json:"error"`
}

// OpenAIErrorBody is the object inside the OpenAI envelope.
type OpenAIErrorBody struct {
	Message string  `json:"message"`
	Type    string  `json:"type"`
	Param   *string `json:"param"`
	Code    *string `json:"code"`
}

// OllamaError is Ollama's error body.
type OllamaError struct {
	Error string `json:"error"`
}

// Envelope renders err in style s and returns the status and the body.
func Envelope(err error, s Style) (int, any) {
	e := errs.As(err)
	msg := e.Message
	if msg == "" {
		msg = e.Kind.String()
	}
	if s == Ollama {
		return e.Kind.Status(), OllamaError{Error: msg}
	}
	body := OpenAIErrorBody{Message: msg, Type: e.Kind.String()}
	if e.Param != "" {
		body.Param = &e.Param
	}
	if e.Code != "" {
		body.Code = &e.Code
	}
	return e.Kind.Status(), OpenAIError{Error: body}
}

// WriteError logs err (with its detail) and writes it in the envelope that
// suits the request path, with Retry-After on 429 and 503.
func WriteError(w http.ResponseWriter, r *http.Request, err error) {
	WriteErrorStyle(w, r, err, StyleFor(r.URL.Path))
}

// WriteErrorStyle is WriteError with an explicit envelope style.
func WriteErrorStyle(w http.ResponseWriter, r *http.Request, err error, s Style) {
	e := errs.As(err)
	status, body := Envelope(e, s)
	if e.RetryAfter > 0 || status == http.StatusTooManyRequests || status == http.StatusServiceUnavailable {
		secs := int(math.Ceil(e.RetryAfter.Seconds()))
		if secs < 1 {
			secs = 1
		}
		w.Header().Set("Retry-After", strconv.Itoa(secs))
	}
	if e.Kind == errs.Canceled {
		return // nobody is listening
	}
	WriteJSON(w, status, body)
}

// WriteJSON writes v as a JSON response with the given status.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		b = []byte(`{"error":{"message":"internal error: response encoding failed","type":"server_error","param":null,"code":null}}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}

// DecodeJSON reads a JSON request body into dst. Unknown fields are ignored,
// as OpenAI does. Every failure is a client error with a clear message: 413
// over the body limit, 415 for a non-JSON content type, 400 for malformed
// JSON, invalid UTF-8 or a value of the wrong type (naming the field).
func DecodeJSON(r *http.Request, dst any) error {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || (mt != "application/json" && !strings.HasSuffix(mt, "+json")) {
			return errs.E(errs.UnsupportedMedia, "Content-Type must be application/json, got %q", ct)
		}
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return errs.E(errs.TooLarge, "request body exceeds the limit of %d bytes", mbe.Limit)
		}
		if ctxErr := r.Context().Err(); ctxErr != nil {
			return errs.Wrap(errs.Canceled, ctxErr, "request canceled")
		}
		return errs.Wrap(errs.Invalid, err, "could not read request body")
	}
	return DecodeJSONBytes(body, dst)
}

// DecodeJSONBytes is DecodeJSON's parsing half, for bodies already read.
func DecodeJSONBytes(body []byte, dst any) error {
	if len(strings.TrimSpace(string(body))) == 0 {
		return errs.E(errs.Invalid, "request body is empty; expected a JSON object")
	}
	if !utf8.Valid(body) {
		return errs.E(errs.Invalid, "request body is not valid UTF-8")
	}
	if err := json.Unmarshal(body, dst); err != nil {
		return JSONError(err)
	}
	return nil
}

// JSONError turns an encoding/json error into a client error that names the
// field or the byte offset.
func JSONError(err error) error {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &te):
		field := jsonFieldPath(te.Field)
		if field == "" {
			return errs.E(errs.Invalid, "request body must be a JSON object, not %s", te.Value)
		}
		return errs.Param(field, "%s: expected %s, got %s", field, te.Type.String(), te.Value)
	case errors.As(err, &se):
		return errs.E(errs.Invalid, "malformed JSON at byte %d: %s", se.Offset, se.Error())
	case errors.Is(err, io.ErrUnexpectedEOF):
		return errs.E(errs.Invalid, "malformed JSON: unexpected end of input")
	}
	var pe *errs.Error
	if errors.As(err, &pe) {
		return pe
	}
	return errs.Wrap(errs.Invalid, err, "malformed JSON: %s", err.Error())
}

func (s *Server) serveHealth(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	checks := append([]Check{}, s.health...)
	s.mu.Unlock()
	res := s.runChecks(r.Context(), checks)
	status := http.StatusOK
	if res.Status != "ok" {
		status = http.StatusServiceUnavailable
	}
	WriteJSON(w, status, res)
}

func (s *Server) serveReady(w http.ResponseWriter, r *http.Request) {
	res := probeResult{Status: "ok", Service: s.Name}
	if p := s.notReady.Load(); p != nil {
		res.Status, res.Reason = "not ready", *p
	} else {
		s.mu.Lock()
		checks := append([]Check{}, s.ready...)
		s.mu.Unlock()
		res = s.runChecks(r.Context(), checks)
	}
	status := http.StatusOK
	if res.Status != "ok" {
		status = http.StatusServiceUnavailable
		if res.Status == "failing" {
			res.Status = "not ready"
		}
	}
	WriteJSON(w, status, res)
}

type probeResult struct {
	Status  string            `json:"status"`
	Service string            `json:"service"`
	Reason  string            `json:"reason,omitempty"`
	Checks  map[string]string `json:"checks,omitempty"`
}

func (s *Server) runChecks(ctx context.Context, checks []Check) probeResult {
	res := probeResult{Status: "ok", Service: s.Name}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	for _, c := range checks {
		if res.Checks == nil {
			res.Checks = map[string]string{}
		}
		if err := c.Fn(ctx); err != nil {
			res.Status = "failing"
			res.Checks[c.Name] = err.Error()
			if res.Reason == "" {
				res.Reason = fmt.Sprintf("%s: %v", c.Name, err)
			}
			continue
		}
		res.Checks[c.Name] = "ok"
	}
	return res
}

// Track marks work that outlives its HTTP handler (rare) so that drain waits
// for it. Call the returned func when the work ends.
func (s *Server) Track() func() {
	s.inflight.Add(1)
	return s.inflight.Done
}

// jsonFieldPath drops the Go type names that encoding/json puts in the
// path of a field promoted from an embedded struct
// ("ChatRequest.SamplingParams.max_tokens" -> "max_tokens"), so that the
// client sees the JSON name it sent.
func jsonFieldPath(field string) string {
	parts := strings.Split(field, ".")
	i := 0
	for i < len(parts)-1 && parts[i] != "" && parts[i][0] >= 'A' && parts[i][0] <= 'Z' {
		i++
	}
	return strings.Join(parts[i:], ".")
}
