package storage

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// FS is the filesystem backend. Every write goes to a temporary file that
// is fsynced, verified and renamed into place, so a crash leaves either the
// old state or the new one, never a partial object.
type FS struct {
	root string
}

var _ Backend = (*FS)(nil)

// NewFS opens (creating if needed) a filesystem store under root.
func NewFS(root string) (*FS, error) {
	if root == "" {
		return nil, fmt.Errorf("storage: empty root directory")
	}
	abs, err := filepath.Abs(root)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Join(abs, "_uploads"), 0o755); err != nil {
		return nil, fmt.Errorf("storage: create root: %w", err)
	}
	return &FS{root: abs}, nil
}

// Kind implements Backend.
func (f *FS) Kind() string { return "filesystem" }

// Root is the directory the store lives in.
func (f *FS) Root() string { return f.root }

func (f *FS) path(key string) string { return filepath.Join(f.root, filepath.FromSlash(key)) }

// Stat implements Backend.
func (f *FS) Stat(_ context.Context, key string) (int64, error) {
	st, err := os.Stat(f.path(key))
	if err != nil {
		return 0, err
	}
	if st.IsDir() {
		return 0, fs.ErrNotExist
	}
	return st.Size(), nil
}

// Open implements Backend.
func (f *FS) Open(_ context.Context, key string) (io.ReadSeekCloser, int64, error) {
	fh, err := os.Open(f.path(key))
	if err != nil {
		return nil, 0, err
	}
	st, err := fh.Stat()
	if err != nil || st.IsDir() {
		fh.Close()
		return nil, 0, fs.ErrNotExist
	}
	return fh, st.Size(), nil
}

// Put implements Backend: temp file, fsync, rename, fsync the directory.
func (f *FS) Put(_ context.Context, key string, b []byte) error {
	dst := f.path(key)
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(dst), ".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), dst); err != nil {
		return err
	}
	return syncDir(filepath.Dir(dst))
}

// Delete implements Backend.
func (f *FS) Delete(_ context.Context, key string) error {
	err := os.Remove(f.path(key))
	if err != nil && !isNotExist(err) {
		return err
	}
	return nil
}

// List implements Backend.
func (f *FS) List(ctx context.Context, prefix string) ([]string, error) {
	base := f.path(prefix)
	var keys []string
	err := filepath.WalkDir(base, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if isNotExist(err) {
				return nil
			}
			return err
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if d.IsDir() || strings.HasPrefix(d.Name(), ".tmp-") {
			return nil
		}
		rel, err := filepath.Rel(base, p)
		if err != nil {
			return err
		}
		keys = append(keys, filepath.ToSlash(rel))
		return nil
	})
	sort.Strings(keys)
	return keys, err
}

func (f *FS) uploadPath(id string) string { return filepath.Join(f.root, "_uploads", id, "data") }

// AppendUpload implements Backend. The chunks of an upload go into one
// staging file under _uploads, which is never visible as a blob.
func (f *FS) AppendUpload(_ context.Context, id string, _ int, offset int64, r io.Reader) (int64, error) {
	p := f.uploadPath(id)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return 0, err
	}
	fh, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE, 0o644)
	if err != nil {
		return 0, err
	}
	start := offset
	if err := fh.Truncate(start); err != nil {
		fh.Close()
		return 0, err
	}
	if _, err := fh.Seek(start, io.SeekStart); err != nil {
		fh.Close()
		return 0, err
	}
	n, err := io.Copy(fh, r)
	if err != nil {
		// Drop the torn chunk so that a retry resumes at a clean offset.
		_ = fh.Truncate(start)
		fh.Close()
		return 0, err
	}
	return n, fh.Close()
}

// CommitUpload implements Backend: fsync the staged file, hash what is on
// disk, and only then rename it to its content address.
func (f *FS) CommitUpload(_ context.Context, id string, _ int, key string, want Digest) error {
	p := f.uploadPath(id)
	fh, err := os.OpenFile(p, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return err
	}
	if err := fh.Sync(); err != nil {
		fh.Close()
		return err
	}
	h := sha256.New()
	if _, err := io.Copy(h, fh); err != nil {
		fh.Close()
		return err
	}
	fh.Close()
	if "sha256:"+hex.EncodeToString(h.Sum(nil)) != string(want) {
		return errDigestMismatch
	}
	dst := f.path(key)
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	if err := os.Rename(p, dst); err != nil {
		return err
	}
	return syncDir(filepath.Dir(dst))
}

// DeleteUpload implements Backend.
func (f *FS) DeleteUpload(_ context.Context, id string) error {
	return os.RemoveAll(filepath.Join(f.root, "_uploads", id))
}

// Ping implements Backend.
func (f *FS) Ping(context.Context) error {
	_, err := os.Stat(f.root)
	return err
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// TruncateUpload implements Backend.
func (f *FS) TruncateUpload(_ context.Context, id string, _ int, size int64) error {
	err := os.Truncate(f.uploadPath(id), size)
	if isNotExist(err) {
		return nil
	}
	return err
}
