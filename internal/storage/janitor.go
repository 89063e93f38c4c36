package storage

import (
	"context"
	"encoding/json"
	"io"
	"strings"
	"time"
)

// sweepUploads deletes upload sessions started more than ttl ago: clients
// that vanished mid-upload would otherwise leave staged data forever.
// Sessions whose state cannot be read are left alone (they may be in the
// middle of being created). It returns how many it removed.
func (s *Storage) sweepUploads(ctx context.Context, ttl time.Duration, now time.Time) int {
	keys, err := s.backend.List(ctx, "_uploads")
	if err != nil {
		s.log.Warn("upload sweep: list failed", "err", err)
		return 0
	}
	removed := 0
	for _, k := range keys {
		id, rest, ok := strings.Cut(k, "/")
		if !ok || rest != "info.json" || !uploadIDRE.MatchString(id) {
			continue
		}
		rc, _, err := s.backend.Open(ctx, uploadInfoKey(id))
		if err != nil {
			continue
		}
		var u upload
		err = json.NewDecoder(io.LimitReader(rc, 1<<16)).Decode(&u)
		rc.Close()
		if err != nil || u.Started.IsZero() || now.Sub(u.Started) < ttl {
			continue
		}
		unlock := s.reg.lockUpload(id)
		if err := s.reg.cancelUpload(ctx, id); err == nil {
			removed++
		}
		unlock()
	}
	if removed > 0 {
		s.log.Info("removed abandoned uploads", "count", removed, "older_than", ttl)
	}
	return removed
}

// janitor sweeps abandoned uploads at start and then every ttl/4 until
// ctx ends.
func (s *Storage) janitor(ctx context.Context, ttl time.Duration) {
	s.sweepUploads(ctx, ttl, time.Now())
	t := time.NewTicker(ttl / 4)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			s.sweepUploads(ctx, ttl, time.Now())
		}
	}
}
