package modelsvc

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"reflect"
	"slices"
	"strings"

	"github.com/llmo/llmo/internal/errs"
	"github.com/llmo/llmo/internal/service"
)

// decode reads a JSON request body with service.DecodeJSON. When a value
// has the wrong shape and encoding/json cannot say where (fields with their
// own decoders, such as stop, prompt or a message's content), it finds the
// top-level field at fault so that the 400 still names the parameter.
func decode(r *http.Request, dst any) error {
	var buf bytes.Buffer
	if r.Body != nil {
		r.Body = struct {
			io.Reader
			io.Closer
		}{io.TeeReader(r.Body, &buf), r.Body}
	}
	err := service.DecodeJSON(r, dst)
	if err == nil {
		return nil
	}
	e := errs.As(err)
	if e.Kind != errs.Invalid || e.Param != "" {
		return err
	}
	var fields map[string]json.RawMessage
	if json.Unmarshal(buf.Bytes(), &fields) != nil {
		return err // a syntax error: there is no field to blame
	}
	keys := make([]string, 0, len(fields))
	for k := range fields {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	typ := reflect.TypeOf(dst).Elem()
	for _, k := range keys {
		one, _ := json.Marshal(map[string]json.RawMessage{k: fields[k]})
		if json.Unmarshal(one, reflect.New(typ).Interface()) != nil {
			c := *e
			c.Param = strings.ToLower(k)
			c.Message = c.Param + ": " + strings.TrimPrefix(e.Message, "malformed JSON: ")
			return &c
		}
	}
	return err
}
