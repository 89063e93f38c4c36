package storage

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2"
	"oras.land/oras-go/v2/content"
	"oras.land/oras-go/v2/content/memory"
	"oras.land/oras-go/v2/registry/remote"
	"oras.land/oras-go/v2/registry/remote/auth"

	"github.com/llmo/llmo/internal/testenv"
)

// Third-party clients against llmo (filesystem and S3) and against Debian's
// docker-registry (CNCF Distribution 2.8) as the reference. Between them
// they push and pull by tag and digest, upload in chunks (crane and
// skopeo PATCH), mount, list tags and the catalog, and delete.

type target struct {
	name  string
	start func(t *testing.T) string // returns host:port
}

func targets() []target {
	strip := func(u string) string { return strings.TrimPrefix(u, "http://") }
	return []target{
		{"filesystem", func(t *testing.T) string { u, _ := startFS(t, nil); return strip(u) }},
		{"s3", func(t *testing.T) string { u, _ := startS3(t, nil); return strip(u) }},
		{"docker-registry", func(t *testing.T) string { return strip(startDockerRegistry(t)) }},
	}
}

func TestORAS(t *testing.T) {
	for _, tg := range targets() {
		t.Run(tg.name, func(t *testing.T) { orasSuite(t, tg.start(t), tg.name == "docker-registry") })
	}
}

func orasRepo(t *testing.T, host, name string) *remote.Repository {
	t.Helper()
	r, err := remote.NewRepository(host + "/" + name)
	if err != nil {
		t.Fatal(err)
	}
	r.PlainHTTP = true
	return r
}

func orasSuite(t *testing.T, host string, ref bool) {
	ctx := context.Background()
	c := checker{t, ref}
	src := memory.New()
	layerData := bytes.Repeat([]byte("GGUF-ish model bytes "), 5000)
	layer := content.NewDescriptorFromBytes("application/vnd.llmo.model.gguf", layerData)
	layer.Annotations = map[string]string{ocispec.AnnotationTitle: "model.gguf"}
	if err := src.Push(ctx, layer, bytes.NewReader(layerData)); err != nil {
		t.Fatal(err)
	}
	man, err := oras.PackManifest(ctx, src, oras.PackManifestVersion1_1, "application/vnd.llmo.model.v1",
		oras.PackManifestOptions{Layers: []ocispec.Descriptor{layer}})
	if err != nil {
		t.Fatal(err)
	}
	if err := src.Tag(ctx, man, "v1"); err != nil {
		t.Fatal(err)
	}
	repo := orasRepo(t, host, "oras/model")

	// Push by tag, pull by tag and by digest.
	if _, err := oras.Copy(ctx, src, "v1", repo, "v1", oras.DefaultCopyOptions); err != nil {
		t.Fatalf("oras push: %v", err)
	}
	dst := memory.New()
	got, err := oras.Copy(ctx, repo, "v1", dst, "v1", oras.DefaultCopyOptions)
	if err != nil || got.Digest != man.Digest {
		t.Fatalf("oras pull by tag: %v %v", err, got.Digest)
	}
	if _, err := oras.Copy(ctx, repo, man.Digest.String(), memory.New(), "", oras.DefaultCopyOptions); err != nil {
		t.Fatalf("oras pull by digest: %v", err)
	}
	b, err := content.FetchAll(ctx, repo.Blobs(), layer)
	if err != nil || !bytes.Equal(b, layerData) {
		t.Fatalf("fetch layer: %v", err)
	}
	// Ranged read of a blob.
	rc, err := repo.Blobs().Fetch(ctx, layer)
	if err != nil {
		t.Fatal(err)
	}
	if seeker, ok := rc.(interface {
		Seek(int64, int) (int64, error)
	}); ok {
		if _, err := seeker.Seek(100, 0); err != nil {
			t.Errorf("seek (ranged GET): %v", err)
		}
		part := make([]byte, 10)
		if _, err := rc.Read(part); err != nil || !bytes.Equal(part, layerData[100:110]) {
			t.Errorf("ranged read = %q, %v", part, err)
		}
	}
	rc.Close()

	// Tags and catalog.
	if err := repo.Tag(ctx, man, "v2"); err != nil {
		t.Fatal(err)
	}
	var tags []string
	if err := repo.Tags(ctx, "", func(ts []string) error { tags = append(tags, ts...); return nil }); err != nil {
		t.Fatal(err)
	}
	c.want(slices.Equal(tags, []string{"v1", "v2"}), "tags = %v", tags)
	reg, _ := remote.NewRegistry(host)
	reg.PlainHTTP = true
	var repos []string
	if err := reg.Repositories(ctx, "", func(rs []string) error { repos = append(repos, rs...); return nil }); err != nil {
		t.Fatal(err)
	}
	c.want(slices.Contains(repos, "oras/model"), "catalog = %v", repos)

	// Cross-repository mount.
	other := orasRepo(t, host, "oras/other")
	if err := other.Mount(ctx, layer, "oras/model", nil); err != nil {
		t.Fatalf("mount: %v", err)
	}
	if ok, err := other.Blobs().Exists(ctx, layer); err != nil || !ok {
		t.Fatalf("mounted blob exists = %v, %v", ok, err)
	}

	// Referrers: a signature-like artifact on the model.
	sigData := []byte("signature")
	sig := content.NewDescriptorFromBytes("application/octet-stream", sigData)
	if err := src.Push(ctx, sig, bytes.NewReader(sigData)); err != nil {
		t.Fatal(err)
	}
	sm, err := oras.PackManifest(ctx, src, oras.PackManifestVersion1_1, "application/vnd.llmo.test.sig",
		oras.PackManifestOptions{Layers: []ocispec.Descriptor{sig}, Subject: &man})
	if err != nil {
		t.Fatal(err)
	}
	if err := oras.CopyGraph(ctx, src, repo, sm, oras.DefaultCopyGraphOptions); err != nil {
		t.Fatalf("push referrer: %v", err)
	}
	var refs []ocispec.Descriptor
	if err := repo.Referrers(ctx, man, "", func(ds []ocispec.Descriptor) error { refs = append(refs, ds...); return nil }); err != nil {
		t.Fatal(err)
	}
	c.want(len(refs) == 1 && refs[0].Digest == sm.Digest && refs[0].ArtifactType == "application/vnd.llmo.test.sig", "referrers = %+v", refs)

	// Delete the manifest and a blob.
	if err := repo.Delete(ctx, man); err != nil {
		t.Fatalf("delete manifest: %v", err)
	}
	if _, err := repo.Resolve(ctx, "v1"); err == nil {
		t.Errorf("tag still resolves after its manifest was deleted")
	}
	if err := other.Blobs().Delete(ctx, layer); err != nil {
		t.Fatalf("delete blob: %v", err)
	}
	if ok, _ := other.Blobs().Exists(ctx, layer); ok {
		t.Errorf("deleted blob still exists")
	}
}

// TestORASWithPushToken: clients with credentials push, anonymous ones
// pull, and an anonymous push gets 401 with a challenge.
func TestORASWithPushToken(t *testing.T) {
	base, _ := startFS(t, func(c *Config) { c.PushToken = "tok3n" })
	host := strings.TrimPrefix(base, "http://")
	ctx := context.Background()
	data := []byte("hello")
	desc := content.NewDescriptorFromBytes("application/octet-stream", data)

	anon := orasRepo(t, host, "guarded/repo")
	if err := anon.Push(ctx, desc, bytes.NewReader(data)); err == nil {
		t.Fatal("anonymous push succeeded")
	}
	r := do(t, "POST", base+"/v2/guarded/repo/blobs/uploads/", nil)
	if r.code != 401 || !strings.HasPrefix(r.header.Get("WWW-Authenticate"), "Basic ") || ociCode(r.body) != "UNAUTHORIZED" {
		t.Fatalf("anonymous POST = %v, challenge %q", r, r.header.Get("WWW-Authenticate"))
	}
	authed := orasRepo(t, host, "guarded/repo")
	authed.Client = &auth.Client{Credential: auth.StaticCredential(host, auth.Credential{Username: "llmo", Password: "tok3n"})}
	if err := authed.Push(ctx, desc, bytes.NewReader(data)); err != nil {
		t.Fatalf("push with the token: %v", err)
	}
	if ok, err := anon.Blobs().Exists(ctx, desc); err != nil || !ok {
		t.Fatalf("anonymous read: %v %v", ok, err)
	}
	r = do(t, "DELETE", base+"/v2/guarded/repo/blobs/"+desc.Digest.String(), nil, "Authorization", "Bearer wrong")
	if r.code != 401 {
		t.Fatalf("DELETE with a wrong token = %v", r)
	}
}

func TestCrane(t *testing.T) {
	crane := testenv.Binary(t, "crane")
	for _, tg := range targets() {
		t.Run(tg.name, func(t *testing.T) { craneSuite(t, crane, tg.start(t)) })
	}
}

func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), "HOME="+t.TempDir()) // no stray credentials
	out, err := cmd.Output()
	if err != nil {
		var stderr []byte
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = ee.Stderr
		}
		t.Fatalf("%s %s: %v\n%s%s", filepath.Base(name), strings.Join(args, " "), err, out, stderr)
	}
	return strings.TrimSpace(string(out))
}

func layerTar(t *testing.T) string {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	data := bytes.Repeat([]byte("model weights "), 20000)
	_ = tw.WriteHeader(&tar.Header{Name: "model.gguf", Mode: 0o644, Size: int64(len(data))})
	_, _ = tw.Write(data)
	_ = tw.Close()
	p := filepath.Join(t.TempDir(), "layer.tar")
	if err := os.WriteFile(p, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func craneSuite(t *testing.T, crane, host string) {
	img := host + "/crane/img"
	// append streams the layer: POST, PATCH, PUT (a chunked upload).
	run(t, crane, "append", "--insecure", "-f", layerTar(t), "-t", img+":v1")
	d := run(t, crane, "digest", "--insecure", img+":v1")
	if !strings.HasPrefix(d, "sha256:") {
		t.Fatalf("digest %q", d)
	}
	var m ocispec.Manifest
	if err := json.Unmarshal([]byte(run(t, crane, "manifest", "--insecure", img+"@"+d)), &m); err != nil || len(m.Layers) != 1 {
		t.Fatalf("manifest by digest: %v %+v", err, m)
	}
	if digest.FromString(run(t, crane, "manifest", "--insecure", img+":v1")+"\n") == "" {
		t.Fatal("manifest by tag")
	}
	blob := run(t, crane, "blob", "--insecure", img+"@"+m.Layers[0].Digest.String())
	if int64(len(blob)) == 0 {
		t.Fatal("empty blob")
	}
	run(t, crane, "tag", "--insecure", img+":v1", "v2")
	if tags := run(t, crane, "ls", "--insecure", img); tags != "v1\nv2" {
		t.Fatalf("ls = %q", tags)
	}
	// copy within one registry mounts the blobs.
	run(t, crane, "copy", "--insecure", img+":v1", host+"/crane/copy:v1")
	if d2 := run(t, crane, "digest", "--insecure", host+"/crane/copy:v1"); d2 != d {
		t.Fatalf("copied digest %s != %s", d2, d)
	}
	cat := run(t, crane, "catalog", "--insecure", host)
	if !strings.Contains(cat, "crane/img") || !strings.Contains(cat, "crane/copy") {
		t.Fatalf("catalog = %q", cat)
	}
	run(t, crane, "delete", "--insecure", img+"@"+d)
	cmd := exec.Command(crane, "manifest", "--insecure", img+"@"+d)
	if err := cmd.Run(); err == nil {
		t.Fatal("manifest still served after delete")
	}
}

func TestSkopeo(t *testing.T) {
	skopeo := testenv.Binary(t, "skopeo")
	crane := testenv.Binary(t, "crane")
	for _, tg := range targets() {
		t.Run(tg.name, func(t *testing.T) { skopeoSuite(t, skopeo, crane, tg.start(t)) })
	}
}

func skopeoSuite(t *testing.T, skopeo, crane, host string) {
	// An OCI layout on disk to push from.
	seed := host + "/seed/img:v1"
	run(t, crane, "append", "--insecure", "-f", layerTar(t), "-t", seed)
	layout := filepath.Join(t.TempDir(), "layout")
	run(t, crane, "pull", "--insecure", "--format", "oci", seed, layout)

	tls := "--dest-tls-verify=false"
	img := "docker://" + host + "/skopeo/img"
	run(t, skopeo, "--insecure-policy", "copy", tls, "oci:"+layout, img+":v1")
	var info struct {
		Digest string
		Layers []string
	}
	if err := json.Unmarshal([]byte(run(t, skopeo, "inspect", "--tls-verify=false", img+":v1")), &info); err != nil || info.Digest == "" {
		t.Fatalf("inspect: %v %+v", err, info)
	}
	var tl struct{ Tags []string }
	_ = json.Unmarshal([]byte(run(t, skopeo, "list-tags", "--tls-verify=false", img)), &tl)
	if !slices.Equal(tl.Tags, []string{"v1"}) {
		t.Fatalf("list-tags = %v", tl.Tags)
	}
	// Registry-to-registry copy (blob mount or re-upload) and pull by digest.
	run(t, skopeo, "--insecure-policy", "copy", "--src-tls-verify=false", tls, img+"@"+info.Digest, "docker://"+host+"/skopeo/copy:v1")
	out := filepath.Join(t.TempDir(), "out")
	run(t, skopeo, "--insecure-policy", "copy", "--src-tls-verify=false", img+"@"+info.Digest, "dir:"+out)
	if _, err := os.Stat(filepath.Join(out, "manifest.json")); err != nil {
		t.Fatalf("pulled dir has no manifest: %v", err)
	}
	run(t, skopeo, "delete", "--tls-verify=false", img+"@"+info.Digest)
	if err := exec.Command(skopeo, "inspect", "--tls-verify=false", img+":v1").Run(); err == nil {
		t.Fatal("image still there after skopeo delete")
	}
}

// TestCraneWithPushToken: crane logs in with the token as its password,
// pushes and deletes; without credentials its push is refused.
func TestCraneWithPushToken(t *testing.T) {
	crane := testenv.Binary(t, "crane")
	base, _ := startFS(t, func(c *Config) { c.PushToken = "tok3n" })
	host := strings.TrimPrefix(base, "http://")
	home := t.TempDir()
	craneAt := func(args ...string) ([]byte, error) {
		cmd := exec.Command(crane, args...)
		cmd.Env = append(os.Environ(), "HOME="+home, "DOCKER_CONFIG="+filepath.Join(home, ".docker"))
		return cmd.CombinedOutput()
	}
	if out, err := craneAt("append", "--insecure", "-f", layerTar(t), "-t", host+"/tok/img:v1"); err == nil {
		t.Fatalf("anonymous push succeeded: %s", out)
	}
	if out, err := craneAt("auth", "login", host, "-u", "llmo", "-p", "tok3n"); err != nil {
		t.Fatalf("login: %v %s", err, out)
	}
	if out, err := craneAt("append", "--insecure", "-f", layerTar(t), "-t", host+"/tok/img:v1"); err != nil {
		t.Fatalf("push with the token: %v %s", err, out)
	}
	// Anonymous reads still work.
	run(t, crane, "digest", "--insecure", host+"/tok/img:v1")
}
