package storage

import (
	"bytes"
	"encoding/json"
	"mime"

	"github.com/llmo/llmo/internal/errs"
)

// Manifest media types the registry accepts.
const (
	MediaTypeOCIManifest    = "application/vnd.oci.image.manifest.v1+json"
	MediaTypeOCIIndex       = "application/vnd.oci.image.index.v1+json"
	MediaTypeDockerManifest = "application/vnd.docker.distribution.manifest.v2+json"
	MediaTypeDockerList     = "application/vnd.docker.distribution.manifest.list.v2+json"
)

// maxManifestBytes is the size the distribution spec says registries should
// accept at least; larger manifests get 413.
const maxManifestBytes = 4 << 20

// Descriptor points at content by digest.
type Descriptor struct {
	MediaType    string            `json:"mediaType"`
	Digest       string            `json:"digest"`
	Size         int64             `json:"size"`
	ArtifactType string            `json:"artifactType,omitempty"`
	Annotations  map[string]string `json:"annotations,omitempty"`
	Platform     json.RawMessage   `json:"platform,omitempty"`
}

// Manifest is the union of an image manifest and an index, as far as the
// registry needs to understand them.
type Manifest struct {
	SchemaVersion int               `json:"schemaVersion"`
	MediaType     string            `json:"mediaType,omitempty"`
	ArtifactType  string            `json:"artifactType,omitempty"`
	Config        *Descriptor       `json:"config,omitempty"`
	Layers        []Descriptor      `json:"layers,omitempty"`
	Manifests     []Descriptor      `json:"manifests,omitempty"`
	Subject       *Descriptor       `json:"subject,omitempty"`
	Annotations   map[string]string `json:"annotations,omitempty"`
}

// IsIndex reports whether m lists other manifests.
func (m *Manifest) IsIndex() bool {
	return m.MediaType == MediaTypeOCIIndex || m.MediaType == MediaTypeDockerList
}

func manifestErr(format string, args ...any) error {
	return errs.E(errs.Invalid, format, args...).WithCode(codeManifestInvalid)
}

// ParseManifest parses and validates an untrusted manifest. contentType is
// the request's Content-Type (may be empty). The returned manifest's
// MediaType is always set to one of the four supported types.
func ParseManifest(contentType string, body []byte) (*Manifest, error) {
	if len(body) > maxManifestBytes {
		return nil, errs.E(errs.TooLarge, "manifest is %d bytes; the limit is %d", len(body), maxManifestBytes).WithCode(codeSizeInvalid)
	}
	trimmed := bytes.TrimSpace(body)
	if len(trimmed) == 0 || trimmed[0] != '{' {
		return nil, manifestErr("manifest must be a JSON object")
	}
	var m Manifest
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&m); err != nil {
		return nil, manifestErr("manifest is not valid JSON: %v", err)
	}
	if dec.More() {
		return nil, manifestErr("trailing data after the manifest JSON")
	}
	if m.SchemaVersion != 2 {
		return nil, manifestErr("schemaVersion must be 2, got %d", m.SchemaVersion)
	}
	ct := ""
	if contentType != "" {
		mt, _, err := mime.ParseMediaType(contentType)
		if err != nil {
			return nil, manifestErr("invalid Content-Type %q", truncate(contentType))
		}
		ct = mt
	}
	switch {
	case m.MediaType != "" && ct != "" && ct != m.MediaType:
		return nil, manifestErr("Content-Type %q does not match the manifest's mediaType %q", truncate(ct), truncate(m.MediaType))
	case m.MediaType == "" && ct != "":
		m.MediaType = ct
	case m.MediaType == "" && m.Manifests != nil:
		m.MediaType = MediaTypeOCIIndex
	case m.MediaType == "":
		m.MediaType = MediaTypeOCIManifest
	}
	switch m.MediaType {
	case MediaTypeOCIManifest, MediaTypeDockerManifest:
		if m.Config == nil {
			return nil, manifestErr("image manifest has no config descriptor")
		}
		if err := checkDescriptor("config", m.Config); err != nil {
			return nil, err
		}
		if m.Manifests != nil {
			return nil, manifestErr("image manifest must not list manifests")
		}
		for i := range m.Layers {
			if err := checkDescriptor("layers", &m.Layers[i]); err != nil {
				return nil, err
			}
		}
	case MediaTypeOCIIndex, MediaTypeDockerList:
		if m.Config != nil || m.Layers != nil {
			return nil, manifestErr("index must not have config or layers")
		}
		for i := range m.Manifests {
			if err := checkDescriptor("manifests", &m.Manifests[i]); err != nil {
				return nil, err
			}
		}
	default:
		return nil, manifestErr("unsupported manifest media type %q", truncate(m.MediaType))
	}
	if m.Subject != nil {
		if err := checkDescriptor("subject", m.Subject); err != nil {
			return nil, err
		}
	}
	return &m, nil
}

func checkDescriptor(field string, d *Descriptor) error {
	if _, err := ParseDigest(d.Digest); err != nil {
		return manifestErr("%s: invalid digest %q", field, truncate(d.Digest))
	}
	if d.Size < 0 {
		return manifestErr("%s: negative size", field)
	}
	if d.MediaType == "" {
		return manifestErr("%s: missing mediaType", field)
	}
	if _, _, err := mime.ParseMediaType(d.MediaType); err != nil {
		return manifestErr("%s: invalid mediaType %q", field, truncate(d.MediaType))
	}
	return nil
}
