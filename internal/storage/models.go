package storage

import (
	"context"
	"net/http"

	"github.com/llmo/llmo/internal/artifact/modelfmt"
	"github.com/llmo/llmo/internal/errs"
	"github.com/llmo/llmo/internal/service"
)

// handleModels lists every tagged llmo model artifact with the metadata of
// its config blob: GET /llmo/v1/models.
func (s *Storage) handleModels(w http.ResponseWriter, r *http.Request) {
	list, err := s.Models(r.Context())
	if err != nil {
		service.WriteError(w, r, err)
		return
	}
	service.WriteJSON(w, http.StatusOK, list)
}

// Models walks repositories and tags and reads each model's config.
// Manifests that are not llmo models (other OCI artifacts) are skipped.
func (s *Storage) Models(ctx context.Context) (*modelfmt.ModelList, error) {
	repos, err := s.reg.repositories(ctx)
	if err != nil {
		return nil, err
	}
	out := &modelfmt.ModelList{Models: []modelfmt.ModelInfo{}}
	for _, repo := range repos {
		tags, err := s.reg.tags(ctx, repo)
		if err != nil {
			return nil, err
		}
		for _, tag := range tags {
			if ctx.Err() != nil {
				return nil, errs.Wrap(errs.Canceled, ctx.Err(), "request canceled")
			}
			if info, ok := s.modelInfo(ctx, repo, tag); ok {
				out.Models = append(out.Models, info)
			}
		}
	}
	return out, nil
}

func (s *Storage) modelInfo(ctx context.Context, repo, tag string) (modelfmt.ModelInfo, bool) {
	d, _, err := s.reg.resolveManifest(ctx, repo, tag)
	if err != nil {
		return modelfmt.ModelInfo{}, false
	}
	body, err := s.reg.readManifest(ctx, d)
	if err != nil {
		return modelfmt.ModelInfo{}, false
	}
	m, err := ParseManifest("", body)
	if err != nil || m.Config == nil || m.Config.MediaType != modelfmt.MediaTypeConfig {
		return modelfmt.ModelInfo{}, false
	}
	info := modelfmt.ModelInfo{Name: repo + ":" + tag, Repository: repo, Tag: tag, Digest: string(d)}
	for _, l := range m.Layers {
		if l.MediaType == modelfmt.MediaTypeGGUF {
			info.BlobDigest, info.Size = l.Digest, l.Size
		}
	}
	cd := Digest(m.Config.Digest)
	if b, err := s.reg.readSmall(ctx, blobKey(cd), modelfmt.MaxConfigBytes); err == nil && DigestOf(b) == cd {
		if c, err := modelfmt.ParseConfig(b); err == nil {
			info.Config = c
		}
	}
	return info, true
}
