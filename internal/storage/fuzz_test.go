package storage

import (
	"encoding/json"
	"path"
	"strings"
	"testing"

	"github.com/llmo/llmo/internal/errs"
)

var repoCases = []struct {
	name string
	ok   bool
}{
	{"library/ubuntu", true},
	{"a", true},
	{"models/synth-15m", true},
	{"a.b_c__d---e/f", true},
	{"llama/3.1/8b", true},
	{"", false},
	{"UPPER", false},
	{"a/../b", false},
	{"../etc/passwd", false},
	{"/abs", false},
	{"a//b", false},
	{"a/", false},
	{"-a", false},
	{"a_", false},
	{"a/_manifests", false},
	{"a/_uploads/x", false},
	{"a\\b", false},
	{"a%2fb", false},
	{strings.Repeat("a", 256), false},
	{"a/./b", false},
	{"a b", false},
	{"a\x00b", false},
}

func TestValidRepo(t *testing.T) {
	for _, c := range repoCases {
		err := ValidRepo(c.name)
		if (err == nil) != c.ok {
			t.Errorf("ValidRepo(%q) = %v, want ok=%v", c.name, err, c.ok)
		}
		if err != nil && errs.As(err).Code != codeNameInvalid {
			t.Errorf("ValidRepo(%q) code %q", c.name, errs.As(err).Code)
		}
	}
}

// FuzzRepoName checks that any name ValidRepo accepts stays inside the
// repositories directory and cannot reach the store's own directories,
// and that route parsing round-trips it.
func FuzzRepoName(f *testing.F) {
	for _, c := range repoCases {
		f.Add(c.name)
	}
	f.Fuzz(func(t *testing.T, name string) {
		if ValidRepo(name) != nil {
			return
		}
		key := repoKey(name) + "/_manifests/tags/x"
		if clean := path.Clean(key); clean != key || !strings.HasPrefix(clean, "repositories/") {
			t.Fatalf("name %q gives key %q (clean %q)", name, key, clean)
		}
		for _, part := range strings.Split(name, "/") {
			if part == "" || part == "." || part == ".." || strings.HasPrefix(part, "_") {
				t.Fatalf("accepted component %q in %q", part, name)
			}
		}
		for _, suffix := range []string{"/tags/list", "/manifests/v1", "/blobs/sha256:" + strings.Repeat("a", 64), "/blobs/uploads/", "/blobs/uploads/0123"} {
			rt, ok := parseRoute("/v2/" + name + suffix)
			if !ok || rt.name != name {
				t.Fatalf("parseRoute(%q) = %+v, %v", name+suffix, rt, ok)
			}
		}
	})
}

var manifestSeeds = []string{
	`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2},"layers":[]}`,
	`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":7}]}`,
	`{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json","config":{"mediaType":"application/vnd.docker.container.image.v1+json","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2},"layers":[{"mediaType":"application/vnd.docker.image.rootfs.diff.tar.gzip","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2}]}`,
	`{"schemaVersion":2,"config":{"mediaType":"a/b","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2},"subject":{"mediaType":"a/b","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":-1}}`,
	`{"schemaVersion":1}`,
	`{"schemaVersion":2,"config":{"digest":"md5:abc"}}`,
	`[]`,
	`{"schemaVersion":2}{}`,
	``,
}

func TestParseManifestTable(t *testing.T) {
	cases := []struct {
		ct, body string
		ok       bool
		mt       string
	}{
		{MediaTypeOCIManifest, manifestSeeds[0], true, MediaTypeOCIManifest},
		{"", manifestSeeds[1], true, MediaTypeOCIIndex},
		{MediaTypeDockerManifest, manifestSeeds[2], true, MediaTypeDockerManifest},
		{MediaTypeOCIIndex, manifestSeeds[0], false, ""}, // Content-Type disagrees with mediaType
		{"", manifestSeeds[3], false, ""},                // negative subject size
		{"", manifestSeeds[4], false, ""},                // schema 1
		{"", manifestSeeds[5], false, ""},
		{"", manifestSeeds[6], false, ""},
		{"", manifestSeeds[7], false, ""}, // trailing data
		{"", manifestSeeds[8], false, ""},
		{"text/plain", `{"schemaVersion":2,"config":{"mediaType":"a/b","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2}}`, false, ""},
	}
	for i, c := range cases {
		m, err := ParseManifest(c.ct, []byte(c.body))
		if (err == nil) != c.ok {
			t.Errorf("case %d: err = %v, want ok=%v", i, err, c.ok)
			continue
		}
		if err != nil {
			if k := errs.KindOf(err); k != errs.Invalid && k != errs.TooLarge {
				t.Errorf("case %d: kind %v", i, k)
			}
			continue
		}
		if m.MediaType != c.mt {
			t.Errorf("case %d: media type %q, want %q", i, m.MediaType, c.mt)
		}
	}
	big := `{"schemaVersion":2,"annotations":{"x":"` + strings.Repeat("a", maxManifestBytes) + `"}}`
	if _, err := ParseManifest("", []byte(big)); !errs.Is(err, errs.TooLarge) {
		t.Errorf("oversized manifest: %v", err)
	}
}

// FuzzManifest: the parser never panics, errors are client errors, and an
// accepted manifest has a supported type and only valid digests.
func FuzzManifest(f *testing.F) {
	for _, s := range manifestSeeds {
		f.Add("", s)
		f.Add(MediaTypeOCIManifest, s)
	}
	f.Fuzz(func(t *testing.T, ct, body string) {
		m, err := ParseManifest(ct, []byte(body))
		if err != nil {
			if k := errs.KindOf(err); k != errs.Invalid && k != errs.TooLarge {
				t.Fatalf("error kind %v: %v", k, err)
			}
			return
		}
		switch m.MediaType {
		case MediaTypeOCIManifest, MediaTypeDockerManifest, MediaTypeOCIIndex, MediaTypeDockerList:
		default:
			t.Fatalf("accepted media type %q", m.MediaType)
		}
		var ds []Descriptor
		if m.Config != nil {
			ds = append(ds, *m.Config)
		}
		ds = append(ds, m.Layers...)
		ds = append(ds, m.Manifests...)
		if m.Subject != nil {
			ds = append(ds, *m.Subject)
		}
		for _, d := range ds {
			if _, err := ParseDigest(d.Digest); err != nil || d.Size < 0 {
				t.Fatalf("accepted descriptor %+v", d)
			}
		}
		if _, err := json.Marshal(m); err != nil {
			t.Fatal(err)
		}
	})
}
