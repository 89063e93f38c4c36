package storage

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"sort"
	"strings"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// S3Config says how to reach an S3-compatible bucket.
type S3Config struct {
	Endpoint  string // URL or host:port
	Bucket    string
	Region    string
	AccessKey string
	SecretKey string
	Insecure  bool   // plain HTTP
	Prefix    string // key prefix inside the bucket
}

// S3 is the S3 backend (minio-go). Upload chunks are stored as separate
// part objects; on commit they are streamed through sha256 into a staging
// object, and only a verified staging object is copied server-side to its
// content-addressed key.
type S3 struct {
	c      *minio.Client
	bucket string
	prefix string
}

var _ Backend = (*S3)(nil)

// NewS3 connects to the bucket, creating it if it does not exist.
func NewS3(ctx context.Context, c S3Config) (*S3, error) {
	host := c.Endpoint
	secure := !c.Insecure
	if u, err := url.Parse(c.Endpoint); err == nil && u.Host != "" {
		host = u.Host
		secure = u.Scheme == "https"
	}
	cl, err := minio.New(host, &minio.Options{
		Creds:  credentials.NewStaticV4(c.AccessKey, c.SecretKey, ""),
		Secure: secure,
		Region: c.Region,
	})
	if err != nil {
		return nil, fmt.Errorf("storage: s3 client: %w", err)
	}
	ok, err := cl.BucketExists(ctx, c.Bucket)
	if err != nil {
		return nil, fmt.Errorf("storage: s3 bucket %q: %w", c.Bucket, err)
	}
	if !ok {
		if err := cl.MakeBucket(ctx, c.Bucket, minio.MakeBucketOptions{Region: c.Region}); err != nil {
			return nil, fmt.Errorf("storage: create s3 bucket %q: %w", c.Bucket, err)
		}
	}
	p := strings.Trim(c.Prefix, "/")
	if p != "" {
		p += "/"
	}
	return &S3{c: cl, bucket: c.Bucket, prefix: p}, nil
}

// Kind implements Backend.
func (s *S3) Kind() string { return "s3" }

func (s *S3) key(k string) string { return s.prefix + k }

func s3err(err error) error {
	if err == nil {
		return nil
	}
	resp := minio.ToErrorResponse(err)
	if resp.Code == minio.NoSuchKey || resp.StatusCode == 404 {
		return fmt.Errorf("%w: %s", fs.ErrNotExist, err)
	}
	return err
}

// Stat implements Backend.
func (s *S3) Stat(ctx context.Context, key string) (int64, error) {
	info, err := s.c.StatObject(ctx, s.bucket, s.key(key), minio.StatObjectOptions{})
	if err != nil {
		return 0, s3err(err)
	}
	return info.Size, nil
}

// Open implements Backend. minio.Object is a ReadSeeker that issues ranged
// GETs, so http.ServeContent can serve Range requests from it.
func (s *S3) Open(ctx context.Context, key string) (io.ReadSeekCloser, int64, error) {
	obj, err := s.c.GetObject(ctx, s.bucket, s.key(key), minio.GetObjectOptions{})
	if err != nil {
		return nil, 0, s3err(err)
	}
	info, err := obj.Stat()
	if err != nil {
		obj.Close()
		return nil, 0, s3err(err)
	}
	return obj, info.Size, nil
}

// Put implements Backend (an S3 PUT is atomic).
func (s *S3) Put(ctx context.Context, key string, b []byte) error {
	_, err := s.c.PutObject(ctx, s.bucket, s.key(key), bytes.NewReader(b), int64(len(b)), minio.PutObjectOptions{})
	return err
}

// Delete implements Backend.
func (s *S3) Delete(ctx context.Context, key string) error {
	err := s.c.RemoveObject(ctx, s.bucket, s.key(key), minio.RemoveObjectOptions{})
	if err != nil && isNotExist(s3err(err)) {
		return nil
	}
	return err
}

// List implements Backend.
func (s *S3) List(ctx context.Context, prefix string) ([]string, error) {
	full := s.key(strings.TrimSuffix(prefix, "/") + "/")
	var keys []string
	for obj := range s.c.ListObjects(ctx, s.bucket, minio.ListObjectsOptions{Prefix: full, Recursive: true}) {
		if obj.Err != nil {
			return nil, obj.Err
		}
		keys = append(keys, strings.TrimPrefix(obj.Key, full))
	}
	sort.Strings(keys)
	return keys, nil
}

func (s *S3) partKey(id string, part int) string {
	return s.key(fmt.Sprintf("_uploads/%s/part-%08d", id, part))
}

// AppendUpload implements Backend.
func (s *S3) AppendUpload(ctx context.Context, id string, part int, _ int64, r io.Reader) (int64, error) {
	info, err := s.c.PutObject(ctx, s.bucket, s.partKey(id, part), r, -1, minio.PutObjectOptions{PartSize: 16 << 20})
	if err != nil {
		_ = s.c.RemoveObject(ctx, s.bucket, s.partKey(id, part), minio.RemoveObjectOptions{})
		return 0, err
	}
	return info.Size, nil
}

// CommitUpload implements Backend.
func (s *S3) CommitUpload(ctx context.Context, id string, parts int, key string, want Digest) error {
	var size int64
	for i := 0; i < parts; i++ {
		st, err := s.c.StatObject(ctx, s.bucket, s.partKey(id, i), minio.StatObjectOptions{})
		if err != nil {
			return s3err(err)
		}
		size += st.Size
	}
	pr, pw := io.Pipe()
	go func() {
		for i := 0; i < parts; i++ {
			obj, err := s.c.GetObject(ctx, s.bucket, s.partKey(id, i), minio.GetObjectOptions{})
			if err != nil {
				pw.CloseWithError(err)
				return
			}
			_, err = io.Copy(pw, obj)
			obj.Close()
			if err != nil {
				pw.CloseWithError(err)
				return
			}
		}
		pw.Close()
	}()
	h := sha256.New()
	staged := s.key("_uploads/" + id + "/blob")
	_, err := s.c.PutObject(ctx, s.bucket, staged, io.TeeReader(pr, h), size, minio.PutObjectOptions{PartSize: 16 << 20})
	pr.CloseWithError(errors.New("commit ended"))
	if err != nil {
		return err
	}
	if "sha256:"+hex.EncodeToString(h.Sum(nil)) != string(want) {
		_ = s.c.RemoveObject(ctx, s.bucket, staged, minio.RemoveObjectOptions{})
		return errDigestMismatch
	}
	// Server-side copy of the verified object; ComposeObject splits
	// sources over 5 GiB into ranged part copies.
	_, err = s.c.ComposeObject(ctx,
		minio.CopyDestOptions{Bucket: s.bucket, Object: s.key(key)},
		minio.CopySrcOptions{Bucket: s.bucket, Object: staged})
	return err
}

// DeleteUpload implements Backend.
func (s *S3) DeleteUpload(ctx context.Context, id string) error {
	prefix := s.key("_uploads/" + id + "/")
	for obj := range s.c.ListObjects(ctx, s.bucket, minio.ListObjectsOptions{Prefix: prefix, Recursive: true}) {
		if obj.Err != nil {
			return obj.Err
		}
		if err := s.c.RemoveObject(ctx, s.bucket, obj.Key, minio.RemoveObjectOptions{}); err != nil {
			return err
		}
	}
	return nil
}

// Ping implements Backend.
func (s *S3) Ping(ctx context.Context) error {
	_, err := s.c.BucketExists(ctx, s.bucket)
	return err
}

// TruncateUpload implements Backend: parts are whole objects, so only the
// part after the last recorded one can be partial.
func (s *S3) TruncateUpload(ctx context.Context, id string, parts int, _ int64) error {
	err := s.c.RemoveObject(ctx, s.bucket, s.partKey(id, parts), minio.RemoveObjectOptions{})
	if err != nil && isNotExist(s3err(err)) {
		return nil
	}
	return err
}
