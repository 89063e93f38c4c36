// Package modelfmt defines llmo's model artifact format: the media types of
// an OCI manifest that carries a GGUF model, and its config blob. It has no
// dependencies so that both the registry and its clients can use it; see
// docs/artifact-format.md.
package modelfmt

import (
	"encoding/json"
	"fmt"
)

// Media types of a model artifact.
const (
	// ArtifactType is the manifest's artifactType.
	ArtifactType = "application/vnd.llmo.model.v1"
	// MediaTypeConfig is the config blob: a JSON Config.
	MediaTypeConfig = "application/vnd.llmo.model.config.v1+json"
	// MediaTypeGGUF is the one layer: the GGUF file, byte for byte.
	MediaTypeGGUF = "application/vnd.llmo.model.gguf"
	// MediaTypeManifest is the manifest itself (an OCI image manifest).
	MediaTypeManifest = "application/vnd.oci.image.manifest.v1+json"
	// AnnotationTitle names the layer's file (the OCI standard key oras uses).
	AnnotationTitle = "org.opencontainers.image.title"
)

// Config is the model config blob, read from the GGUF header at push time.
type Config struct {
	Format        string `json:"format"` // always "gguf"
	Architecture  string `json:"architecture"`
	Name          string `json:"name,omitempty"`
	Parameters    int64  `json:"parameters"`
	Quantization  string `json:"quantization"`
	ContextLength int64  `json:"context_length"`
	Tokenizer     string `json:"tokenizer"`
	ChatTemplate  string `json:"chat_template,omitempty"`
	FileType      int64  `json:"file_type,omitempty"`
	Size          int64  `json:"size"`
}

// maxConfigBytes caps the config blob a reader will parse; chat templates
// are a few KiB, so 1 MiB is generous.
const MaxConfigBytes = 1 << 20

// ParseConfig decodes a config blob.
func ParseConfig(b []byte) (*Config, error) {
	if len(b) > MaxConfigBytes {
		return nil, fmt.Errorf("model config is %d bytes; the limit is %d", len(b), MaxConfigBytes)
	}
	var c Config
	if err := json.Unmarshal(b, &c); err != nil {
		return nil, fmt.Errorf("model config: %w", err)
	}
	return &c, nil
}

// ModelInfo is one entry of the storage service's model list
// (GET /llmo/v1/models).
type ModelInfo struct {
	Name       string  `json:"name"` // REPO:TAG
	Repository string  `json:"repository"`
	Tag        string  `json:"tag"`
	Digest     string  `json:"digest"` // manifest digest
	BlobDigest string  `json:"blob_digest"`
	Size       int64   `json:"size"`
	Config     *Config `json:"config"`
}

// ModelList is the body of GET /llmo/v1/models.
type ModelList struct {
	Models []ModelInfo `json:"models"`
}
