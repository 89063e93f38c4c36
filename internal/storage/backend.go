package storage

import (
	"context"
	"errors"
	"io"
	"io/fs"
)

// Backend is where the registry keeps bytes. Keys are slash-separated paths
// built by this package from validated names and digests, never from raw
// request text. Two implementations exist: the filesystem (default) and S3.
type Backend interface {
	// Kind names the backend for logs: "filesystem" or "s3".
	Kind() string
	// Stat returns the size of the object at key, or an error wrapping
	// fs.ErrNotExist.
	Stat(ctx context.Context, key string) (int64, error)
	// Open opens the object at key for reading with Range support.
	Open(ctx context.Context, key string) (io.ReadSeekCloser, int64, error)
	// Put stores a small object atomically (metadata, manifests).
	Put(ctx context.Context, key string, b []byte) error
	// Delete removes the object at key; a missing key is not an error.
	Delete(ctx context.Context, key string) error
	// List returns the keys below prefix (recursively), relative to it, sorted.
	List(ctx context.Context, prefix string) ([]string, error)

	// AppendUpload stores chunk number part (0, 1, ...) of upload id,
	// which starts at byte offset, and returns its size. Chunks are
	// appended in order; anything staged beyond offset (left by a crash
	// mid-chunk) is discarded first.
	AppendUpload(ctx context.Context, id string, part int, offset int64, r io.Reader) (int64, error)
	// CommitUpload makes parts 0..parts-1 of upload id visible at key if
	// and only if their concatenation hashes to want; otherwise it returns
	// errDigestMismatch and nothing becomes visible.
	CommitUpload(ctx context.Context, id string, parts int, key string, want Digest) error
	// TruncateUpload discards staged data beyond parts chunks and size
	// bytes, after a chunk that failed or was refused.
	TruncateUpload(ctx context.Context, id string, parts int, size int64) error
	// DeleteUpload discards an upload's staged data.
	DeleteUpload(ctx context.Context, id string) error

	// Ping checks that the backend answers (for /ready).
	Ping(ctx context.Context) error
}

var errDigestMismatch = errors.New("content does not match the digest")

func isNotExist(err error) bool { return errors.Is(err, fs.ErrNotExist) }
