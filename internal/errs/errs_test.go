package errs

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"testing"
)

func TestStatusTable(t *testing.T) {
	cases := []struct {
		err  error
		want int
	}{
		{E(Invalid, "bad"), http.StatusBadRequest},
		{Param("temperature", "must be in [0, 2]"), http.StatusBadRequest},
		{E(Unauthenticated, "no key"), http.StatusUnauthorized},
		{E(RateLimited, "slow down"), http.StatusTooManyRequests},
		{E(TooLarge, "big"), http.StatusRequestEntityTooLarge},
		{fmt.Errorf("wrapped: %w", E(NotFound, "model")), http.StatusNotFound},
		{context.Canceled, 499},
		{context.DeadlineExceeded, http.StatusGatewayTimeout},
		{errors.New("boom"), http.StatusInternalServerError},
	}
	for _, c := range cases {
		if got := As(c.err).Kind.Status(); got != c.want {
			t.Errorf("%v: status %d, want %d", c.err, got, c.want)
		}
	}
}

func TestForeignErrorHidesDetail(t *testing.T) {
	e := As(errors.New("open /secret/path: permission denied"))
	if e.Message != "internal error" {
		t.Fatalf("client message leaks detail: %q", e.Message)
	}
}

func TestWrapfKeepsKind(t *testing.T) {
	f := func() (err error) {
		defer Wrapf(&err, "op(%s)", "x")
		return Param("model", "unknown model %q", "m")
	}
	err := f()
	e := As(err)
	if e.Kind != Invalid || e.Param != "model" || e.Message != `unknown model "m"` {
		t.Fatalf("got %+v", e)
	}
	if got := err.Error(); got != `unknown model "m": op(x): ` {
		t.Fatalf("Error() = %q", got)
	}
}
