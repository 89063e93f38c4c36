package modelsvc

import (
	"context"
	"log/slog"

	"github.com/llmo/llmo/internal/artifact"
)

// resolveRef fetches an artifact ref (NAME:TAG against --storage,
// oci://..., hf://...) into the local model cache, verified by sha256, and
// returns the file and its digest. A cached model is reused on restart.
func resolveRef(ctx context.Context, ref string, cfg Config, log *slog.Logger) (path, digest string, err error) {
	log.Info("resolving model", "ref", ref, "storage", cfg.Storage)
	return artifact.Resolve(ctx, ref, artifact.ResolveOptions{
		StorageURL: cfg.Storage,
		CacheDir:   cfg.ModelCache,
		HFBaseURL:  cfg.HFBaseURL,
		HFToken:    cfg.HFToken,
	})
}
