package artifact_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/llmo/llmo/internal/artifact"
	"github.com/llmo/llmo/internal/storage"
	"github.com/llmo/llmo/internal/storage/storagetest"
	"github.com/llmo/llmo/internal/testenv"
)

// TestS3EndToEnd: the same push / resolve / corruption checks with the
// storage service on a real S3 server (versitygw).
func TestS3EndToEnd(t *testing.T) {
	model := testenv.Model(t, modelName)
	want := fileDigest(t, model)
	v := storagetest.Versity(t)
	base, _ := startStorage(t, "", func(c *storage.Config) {
		c.S3Endpoint, c.S3Bucket, c.S3Region, c.S3AccessKey, c.S3SecretKey = v.Endpoint, v.Bucket, v.Region, v.AccessKey, v.SecretKey
	})
	ctx := context.Background()
	if _, err := artifact.Push(ctx, model, "s3/synth:q8", artifact.ResolveOptions{StorageURL: base}); err != nil {
		t.Fatal(err)
	}
	_, d, err := artifact.Resolve(ctx, "s3/synth:q8", artifact.ResolveOptions{StorageURL: base, CacheDir: t.TempDir()})
	if err != nil || d != want {
		t.Fatalf("resolve: %v %s", err, d)
	}
	list, err := (&artifact.Client{Base: base}).Models(ctx)
	if err != nil || len(list.Models) != 1 || list.Models[0].Config == nil || list.Models[0].Config.Quantization != "Q8_0" {
		t.Fatalf("models: %v %+v", err, list)
	}
	// Flip a byte in the object as the S3 server stores it.
	hx := strings.TrimPrefix(want, "sha256:")
	flipByte(t, filepath.Join(v.Dir, v.Bucket, "blobs", "sha256", hx[:2], hx), 12345)
	if _, _, err := artifact.Resolve(ctx, "s3/synth:q8", artifact.ResolveOptions{StorageURL: base, CacheDir: t.TempDir(), Retries: 2}); err == nil {
		t.Fatal("a corrupted S3 object was accepted")
	}
}
