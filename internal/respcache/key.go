package respcache

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/llmo/llmo/internal/cache"
)

// request is what the layer learns from a request body.
type request struct {
	kind          string // kindChat or kindText
	model         string
	stream        bool
	includeUsage  bool
	deterministic bool
	doc           map[string]any // the body minus fields that do not change the output

	semText string // the final user turn (chat) or the prompt (completions)
	semOK   bool   // semText is set and the request has the shape semantic caching needs
}

// ignored are request fields that do not change the answer's content.
var ignored = []string{"stream", "stream_options", "user"}

// parseRequest analyses a body. ok is false when the body is not a JSON
// object with a string model; such requests pass through untouched and the
// proxy rejects them with the proper error.
func parseRequest(kind string, body []byte) (req *request, ok bool) {
	if !utf8.Valid(body) {
		return nil, false // encoding/json would fold distinct bad bytes into U+FFFD: keys could collide
	}
	v, err := decodeJSON(body)
	if err != nil {
		return nil, false
	}
	doc, isObj := v.(map[string]any)
	if !isObj {
		return nil, false
	}
	model, _ := doc["model"].(string)
	if model == "" {
		return nil, false
	}
	req = &request{kind: kind, model: model, doc: doc}
	req.stream, _ = doc["stream"].(bool)
	if so, ok := doc["stream_options"].(map[string]any); ok {
		req.includeUsage, _ = so["include_usage"].(bool)
	}
	for _, k := range ignored {
		delete(doc, k)
	}
	// Deterministic means temperature 0 or a seed. A missing (or null)
	// temperature is OpenAI's default of 1.0.
	if t, ok := doc["temperature"].(json.Number); ok {
		if normNumber(string(t)) == "0" {
			req.deterministic = true
		}
	}
	if s, ok := doc["seed"]; ok && s != nil {
		if _, isNum := s.(json.Number); isNum {
			req.deterministic = true
		}
	}
	req.semText, req.semOK = semanticText(kind, doc)
	return req, true
}

// semanticText is the text a semantic lookup embeds: the content of the last
// message when it is a plain user message, or a single text prompt.
func semanticText(kind string, doc map[string]any) (string, bool) {
	if kind == kindText {
		switch p := doc["prompt"].(type) {
		case string:
			return p, p != ""
		case []any:
			if len(p) == 1 {
				s, ok := p[0].(string)
				return s, ok && s != ""
			}
		}
		return "", false
	}
	msgs, _ := doc["messages"].([]any)
	if len(msgs) == 0 {
		return "", false
	}
	last, _ := msgs[len(msgs)-1].(map[string]any)
	if role, _ := last["role"].(string); role != "user" {
		return "", false
	}
	s, ok := last["content"].(string)
	return s, ok && s != ""
}

// scope is what every key of a request is bound to besides its body.
type scope struct {
	route, ns, digest string
}

func hashDoc(kind string, sc scope, body any) string {
	wrapper := map[string]any{
		"v":      entryVersion,
		"kind":   kind,
		"route":  sc.route,
		"ns":     sc.ns,
		"digest": sc.digest,
		"req":    body,
	}
	var buf bytes.Buffer
	writeCanonical(&buf, wrapper)
	sum := sha256.Sum256(buf.Bytes())
	return hex.EncodeToString(sum[:])
}

// exactKey is the sha256 of the canonical request and its scope.
func (r *request) exactKey(sc scope) string { return hashDoc("exact", sc, r.doc) }

// bucket is the semantic bucket: everything in the exact key except the text
// being compared (the last message's content, or the prompt). Two requests
// share a bucket only when model, digest, namespace, every sampling
// parameter and the whole conversation before the last turn are equal.
func (r *request) bucket(sc scope) string {
	doc := make(map[string]any, len(r.doc))
	for k, v := range r.doc {
		doc[k] = v
	}
	if r.kind == kindText {
		delete(doc, "prompt")
	} else {
		msgs := r.doc["messages"].([]any)
		last := map[string]any{}
		for k, v := range msgs[len(msgs)-1].(map[string]any) {
			if k != "content" {
				last[k] = v
			}
		}
		doc["messages"] = append(append([]any{}, msgs[:len(msgs)-1]...), last)
	}
	return hashDoc("semantic", sc, doc)
}

// storeNamespace maps a principal's namespace onto the cache's namespace
// charset: valid names are used as they are, anything else by its hash.
func storeNamespace(ns string) string {
	if ns == "" {
		return "anonymous"
	}
	if cache.ValidNamespace(ns) == nil {
		return ns
	}
	sum := sha256.Sum256([]byte(ns))
	return "h-" + hex.EncodeToString(sum[:16])
}

// cacheControl is the part of Cache-Control (and Pragma) the layer honours.
type cacheControl struct{ noCache, noStore bool }

func parseCacheControl(h []string, pragma string) cacheControl {
	var cc cacheControl
	for _, line := range h {
		for d := range strings.SplitSeq(line, ",") {
			name, _, _ := strings.Cut(strings.TrimSpace(d), "=")
			switch strings.ToLower(strings.TrimSpace(name)) {
			case "no-cache":
				cc.noCache = true
			case "no-store":
				cc.noStore = true
			}
		}
	}
	if strings.EqualFold(strings.TrimSpace(pragma), "no-cache") && len(h) == 0 {
		cc.noCache = true
	}
	return cc
}

func formatSimilarity(s float32) string { return strconv.FormatFloat(float64(s), 'f', 4, 32) }
