package storage

import (
	"testing"
	"time"
)

func TestSweepUploads(t *testing.T) {
	base, s := startFS(t, nil)
	old := do(t, "POST", base+"/v2/sweep/repo/blobs/uploads/", nil)
	loc := abs(base, old.header.Get("Location"))
	do(t, "PATCH", loc, []byte("partial"), "Content-Range", "0-6")
	ctx := t.Context()
	if n := s.sweepUploads(ctx, time.Hour, time.Now()); n != 0 {
		t.Fatalf("swept %d fresh uploads", n)
	}
	if n := s.sweepUploads(ctx, time.Hour, time.Now().Add(2*time.Hour)); n != 1 {
		t.Fatalf("swept %d stale uploads, want 1", n)
	}
	if r := do(t, "GET", loc, nil); r.code != 404 {
		t.Fatalf("swept upload status = %v", r)
	}
}
