package storage

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"io"
	"net/http"
	"testing"
)

// BenchmarkBlobPush measures a monolithic blob upload (POST ?digest=):
// network to loopback, staging write, fsync, re-hash and rename.
func BenchmarkBlobPush(b *testing.B) {
	for _, bk := range []string{"filesystem", "s3"} {
		b.Run(bk, func(b *testing.B) {
			base := startBench(b, bk)
			blob := make([]byte, 32<<20)
			b.SetBytes(int64(len(blob)))
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				_, _ = rand.Read(blob[:64]) // a new digest each time
				d := sha(blob)
				b.StartTimer()
				res, err := http.Post(base+"/v2/bench/blob/blobs/uploads/?digest="+d, "application/octet-stream", bytes.NewReader(blob))
				if err != nil || res.StatusCode != 201 {
					b.Fatalf("push: %v %v", err, res)
				}
				res.Body.Close()
			}
		})
	}
}

// BenchmarkBlobPull measures a full blob GET with on-the-fly verification.
func BenchmarkBlobPull(b *testing.B) {
	for _, bk := range []string{"filesystem", "s3"} {
		b.Run(bk, func(b *testing.B) {
			base := startBench(b, bk)
			blob := make([]byte, 32<<20)
			_, _ = rand.Read(blob)
			d := sha(blob)
			res, err := http.Post(base+"/v2/bench/blob/blobs/uploads/?digest="+d, "application/octet-stream", bytes.NewReader(blob))
			if err != nil || res.StatusCode != 201 {
				b.Fatalf("push: %v %v", err, res)
			}
			res.Body.Close()
			b.SetBytes(int64(len(blob)))
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				res, err := http.Get(base + "/v2/bench/blob/blobs/" + d)
				if err != nil || res.StatusCode != 200 {
					b.Fatalf("pull: %v %v", err, res)
				}
				n, _ := io.Copy(io.Discard, res.Body)
				res.Body.Close()
				if n != int64(len(blob)) {
					b.Fatal(fmt.Sprintf("short read %d", n))
				}
			}
		})
	}
}

func startBench(b *testing.B, backend string) string {
	if backend == "s3" {
		u, _ := startS3(b, nil)
		return u
	}
	u, _ := startFS(b, nil)
	return u
}
