package cache

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/llmo/llmo/internal/errs"
)

// Redis is the shared Store: keys live under "llmo:c:NS:KEY", semantic
// buckets under "llmo:s:NS:BUCKET" (a capped list, newest first). A flush
// scans the namespace's prefix and UNLINKs what it finds; it never touches
// keys outside llmo's prefix, so a Redis shared with other software is safe.
type Redis struct {
	rdb       *redis.Client
	perBucket int
}

// go-redis logs pool errors with the standard logger; route them to slog at
// debug level instead (the errors themselves reach callers and metrics).
type redisLogger struct{}

func (redisLogger) Printf(ctx context.Context, format string, v ...any) {
	slog.DebugContext(ctx, "redis: "+fmt.Sprintf(format, v...))
}

func init() { redis.SetLogger(redisLogger{}) }

const (
	redisDataPrefix = "llmo:c:"
	redisSemPrefix  = "llmo:s:"
)

// NewRedis connects to url (redis://[user:pass@]host:port/db) and returns a
// Store. It does not wait for the server: a Redis that is down makes calls
// fail until it is back.
func NewRedis(url string) (Store, error) { return NewRedisStore(url) }

// NewRedisStore is NewRedis with the concrete type.
func NewRedisStore(url string) (*Redis, error) {
	opt, err := redis.ParseURL(url)
	if err != nil {
		return nil, errs.Wrap(errs.Invalid, err, "bad Redis URL")
	}
	opt.DialTimeout = 2 * time.Second
	opt.ReadTimeout = 2 * time.Second
	opt.WriteTimeout = 2 * time.Second
	opt.MaxRetries = 1
	return &Redis{rdb: redis.NewClient(opt), perBucket: DefaultSemanticPerBucket}, nil
}

// Ping checks the connection.
func (r *Redis) Ping(ctx context.Context) error {
	return redisErr(r.rdb.Ping(ctx).Err(), "ping")
}

func dataKey(ns, key string) string { return redisDataPrefix + ns + ":" + key }

func redisErr(err error, op string) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return errs.Wrap(errs.Unavailable, err, "cache backend unavailable (redis %s)", op)
}

// Get implements Store.
func (r *Redis) Get(ctx context.Context, ns, key string) ([]byte, bool, error) {
	if err := validNSKey(ns, key); err != nil {
		return nil, false, err
	}
	b, err := r.rdb.Get(ctx, dataKey(ns, key)).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, redisErr(err, "get")
	}
	return b, true, nil
}

// Set implements Store.
func (r *Redis) Set(ctx context.Context, ns, key string, val []byte, ttl time.Duration) error {
	if err := validNSKey(ns, key); err != nil {
		return err
	}
	if ttl <= 0 {
		ttl = DefaultTTL
	}
	return redisErr(r.rdb.Set(ctx, dataKey(ns, key), val, ttl).Err(), "set")
}

// Delete implements Store.
func (r *Redis) Delete(ctx context.Context, ns, key string) error {
	if err := validNSKey(ns, key); err != nil {
		return err
	}
	return redisErr(r.rdb.Unlink(ctx, dataKey(ns, key)).Err(), "unlink")
}

// Flush implements Store: SCAN the namespace's data and semantic prefixes
// and UNLINK in batches. Namespaces cannot contain glob characters or ':'
// (ValidNamespace), so the patterns match exactly that namespace.
func (r *Redis) Flush(ctx context.Context, ns string) error {
	if err := ValidNamespace(ns); err != nil {
		return err
	}
	for _, prefix := range []string{redisDataPrefix, redisSemPrefix} {
		iter := r.rdb.Scan(ctx, 0, prefix+ns+":*", 1000).Iterator()
		batch := make([]string, 0, 500)
		for iter.Next(ctx) {
			batch = append(batch, iter.Val())
			if len(batch) == cap(batch) {
				if err := r.rdb.Unlink(ctx, batch...).Err(); err != nil {
					return redisErr(err, "unlink")
				}
				batch = batch[:0]
			}
		}
		if err := iter.Err(); err != nil {
			return redisErr(err, "scan")
		}
		if len(batch) > 0 {
			if err := r.rdb.Unlink(ctx, batch...).Err(); err != nil {
				return redisErr(err, "unlink")
			}
		}
	}
	return nil
}

// Stats implements Store from INFO: Entries is the database's key count
// (DBSIZE, which includes non-llmo keys on a shared server), Bytes is
// used_memory, Evictions is evicted_keys.
func (r *Redis) Stats(ctx context.Context) (Stats, error) {
	st := Stats{Backend: "redis"}
	n, err := r.rdb.DBSize(ctx).Result()
	if err != nil {
		return st, redisErr(err, "dbsize")
	}
	st.Entries = n
	info, err := r.rdb.Info(ctx, "memory", "stats").Result()
	if err != nil {
		return st, redisErr(err, "info")
	}
	for line := range strings.SplitSeq(info, "\n") {
		k, v, ok := strings.Cut(strings.TrimSpace(line), ":")
		if !ok {
			continue
		}
		n, _ := strconv.ParseInt(v, 10, 64)
		switch k {
		case "used_memory":
			st.Bytes = n
		case "maxmemory":
			st.MaxBytes = n
		case "evicted_keys":
			st.Evictions = n
		case "keyspace_hits":
			st.Hits = n
		case "keyspace_misses":
			st.Misses = n
		}
	}
	return st, nil
}

// Close closes the connection pool.
func (r *Redis) Close() error { return r.rdb.Close() }

// Semantic index on Redis: one list per bucket, newest first, trimmed to
// perBucket entries, expiring ttl after the last addition. A search reads the
// whole (bounded) list and scans it; each element is
//
//	u64 expiry (unix ms) | u32 len(id) id | u32 len(text) text | u32 dim | dim x f32
//
// little-endian, vectors already normalised.

func semKey(ns, bucket string) string { return redisSemPrefix + ns + ":" + bucket }

// Add implements SemanticIndex.
func (r *Redis) Add(ctx context.Context, ns, bucket string, e SemanticEntry, ttl time.Duration) error {
	if err := validEntry(ns, bucket, e); err != nil {
		return err
	}
	v := Normalize(e.Vector)
	if v == nil {
		return errs.Param("vector", "vector has zero length")
	}
	if ttl <= 0 {
		ttl = DefaultTTL
	}
	rec := encodeSem(time.Now().Add(ttl), e.ID, e.Text, v)
	k := semKey(ns, bucket)
	pipe := r.rdb.TxPipeline()
	pipe.LPush(ctx, k, rec)
	pipe.LTrim(ctx, k, 0, int64(r.perBucket-1))
	pipe.Expire(ctx, k, ttl)
	_, err := pipe.Exec(ctx)
	return redisErr(err, "lpush")
}

// Search implements SemanticIndex.
func (r *Redis) Search(ctx context.Context, ns, bucket string, vec []float32, k int, minScore float32) ([]SemanticMatch, error) {
	if err := validSemantic(ns, bucket, vec); err != nil {
		return nil, err
	}
	q := Normalize(vec)
	if q == nil {
		return nil, nil
	}
	recs, err := r.rdb.LRange(ctx, semKey(ns, bucket), 0, int64(r.perBucket-1)).Result()
	if err != nil {
		return nil, redisErr(err, "lrange")
	}
	now := time.Now()
	t := topK{k: clampK(k), min: minScore}
	for _, rec := range recs {
		exp, id, text, v, ok := decodeSem([]byte(rec))
		if !ok || len(v) != len(q) || now.After(exp) {
			continue
		}
		t.offer(id, text, dot(q, v))
	}
	return t.m, nil
}

func encodeSem(exp time.Time, id, text string, v []float32) []byte {
	b := make([]byte, 0, 8+4+len(id)+4+len(text)+4+4*len(v))
	b = binary.LittleEndian.AppendUint64(b, uint64(exp.UnixMilli()))
	b = binary.LittleEndian.AppendUint32(b, uint32(len(id)))
	b = append(b, id...)
	b = binary.LittleEndian.AppendUint32(b, uint32(len(text)))
	b = append(b, text...)
	b = binary.LittleEndian.AppendUint32(b, uint32(len(v)))
	for _, x := range v {
		b = binary.LittleEndian.AppendUint32(b, math.Float32bits(x))
	}
	return b
}

// decodeSem parses one record, refusing anything malformed (the list could
// have been written by another version or by hand).
func decodeSem(b []byte) (exp time.Time, id, text string, v []float32, ok bool) {
	u64 := func() (uint64, bool) {
		if len(b) < 8 {
			return 0, false
		}
		x := binary.LittleEndian.Uint64(b)
		b = b[8:]
		return x, true
	}
	u32 := func() (int, bool) {
		if len(b) < 4 {
			return 0, false
		}
		x := binary.LittleEndian.Uint32(b)
		b = b[4:]
		return int(x), true
	}
	str := func() (string, bool) {
		n, ok := u32()
		if !ok || n > len(b) {
			return "", false
		}
		s := string(b[:n])
		b = b[n:]
		return s, true
	}
	ms, ok1 := u64()
	id, ok2 := str()
	text, ok3 := str()
	dim, ok4 := u32()
	if !ok1 || !ok2 || !ok3 || !ok4 || dim > MaxVectorDim || len(b) != 4*dim {
		return time.Time{}, "", "", nil, false
	}
	v = make([]float32, dim)
	for i := range v {
		v[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
	}
	return time.UnixMilli(int64(ms)), id, text, v, true
}

var (
	_ Store         = (*Redis)(nil)
	_ SemanticIndex = (*Redis)(nil)
)
