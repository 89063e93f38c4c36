// Package discovery feeds the gateway's replica registry from a YAML config
// file (hot-reloaded when it changes) and from DNS (every address of a
// name, re-resolved periodically, as a Kubernetes headless Service gives).
package discovery

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"sort"
	"strconv"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/llmo/llmo/internal/gateway/upstream"
)

// File is the gateway config file:
//
//	replicas:
//	  - url: http://10.0.0.5:8001
//	  - url: http://gpu-1:8000        # a vLLM server
//	    models: [meta-llama/Llama-3.1-8B-Instruct]
type File struct {
	Replicas []FileReplica `yaml:"replicas"`
}

// FileReplica is one replica of the file.
type FileReplica struct {
	URL    string   `yaml:"url"`
	Models []string `yaml:"models"` // optional; learned from /v1/models when empty
}

// maxFileBytes caps the config file; it is a list of URLs.
const maxFileBytes = 1 << 20

// ParseFile decodes and checks a config file strictly: unknown keys, a
// missing or malformed URL and duplicates are errors naming the entry.
func ParseFile(data []byte) (*File, error) {
	if len(data) > maxFileBytes {
		return nil, fmt.Errorf("config file is over %d bytes", maxFileBytes)
	}
	var f File
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("config file: %w", err)
	}
	seen := map[string]bool{}
	for i, r := range f.Replicas {
		norm, _, err := upstream.NormalizeURL(r.URL)
		if err != nil {
			return nil, fmt.Errorf("config file: replicas[%d]: %w", i, err)
		}
		if seen[norm] {
			return nil, fmt.Errorf("config file: replicas[%d]: duplicate URL %s", i, norm)
		}
		seen[norm] = true
		for j, m := range r.Models {
			if m == "" || len(m) > 256 {
				return nil, fmt.Errorf("config file: replicas[%d].models[%d]: want a name of 1..256 bytes", i, j)
			}
		}
	}
	return &f, nil
}

// Entries converts the file to registry entries.
func (f *File) Entries() []upstream.Entry {
	out := make([]upstream.Entry, 0, len(f.Replicas))
	for _, r := range f.Replicas {
		out = append(out, upstream.Entry{URL: r.URL, Models: r.Models})
	}
	return out
}

// LoadFile reads and parses path.
func LoadFile(path string) (*File, error) {
	data, err := readCapped(path)
	if err != nil {
		return nil, err
	}
	return ParseFile(data)
}

func readCapped(path string) ([]byte, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer fh.Close()
	return io.ReadAll(io.LimitReader(fh, maxFileBytes+1))
}

// WatchFile applies path's replicas to reg now and again whenever its
// content changes (polled every interval, which works on every filesystem
// and with Kubernetes ConfigMap symlink swaps). A bad edit is logged and the
// last good replica set stays in force.
func WatchFile(ctx context.Context, path string, interval time.Duration, reg *upstream.Registry, log *slog.Logger) error {
	var last [32]byte
	apply := func() error {
		data, err := readCapped(path)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(data)
		if sum == last {
			return nil
		}
		f, err := ParseFile(data)
		if err != nil {
			return err
		}
		if err := reg.Set(upstream.File, f.Entries()); err != nil {
			return err
		}
		last = sum
		log.Info("gateway config file loaded", "path", path, "replicas", len(f.Replicas))
		return nil
	}
	if err := apply(); err != nil {
		return fmt.Errorf("--config %s: %w", path, err)
	}
	go func() {
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				if err := apply(); err != nil {
					log.Error("gateway config file not reloaded; keeping the previous replicas", "path", path, "err", err)
				}
			}
		}
	}()
	return nil
}

// Resolver looks up a name's addresses (net.DefaultResolver in production).
type Resolver interface {
	LookupHost(ctx context.Context, host string) ([]string, error)
}

// ResolveAll resolves NAME:PORT targets into replica entries. It fails if
// any name fails, so a DNS blip never shrinks the pool.
func ResolveAll(ctx context.Context, r Resolver, targets []string) ([]upstream.Entry, error) {
	var out []upstream.Entry
	for _, t := range targets {
		host, port, err := net.SplitHostPort(t)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", t, err)
		}
		if _, err := strconv.Atoi(port); err != nil {
			return nil, fmt.Errorf("%s: bad port", t)
		}
		addrs, err := r.LookupHost(ctx, host)
		if err != nil {
			return nil, err
		}
		sort.Strings(addrs)
		for _, a := range addrs {
			out = append(out, upstream.Entry{URL: "http://" + net.JoinHostPort(a, port)})
		}
	}
	return out, nil
}

// WatchDNS resolves targets now and every interval, replacing the DNS
// replicas in reg. Failures keep the previous set.
func WatchDNS(ctx context.Context, r Resolver, targets []string, interval time.Duration, reg *upstream.Registry, log *slog.Logger) {
	resolve := func() {
		rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		entries, err := ResolveAll(rctx, r, targets)
		if err != nil {
			if ctx.Err() == nil {
				log.Warn("replica DNS lookup failed; keeping the previous replicas", "targets", targets, "err", err)
			}
			return
		}
		if err := reg.Set(upstream.DNS, entries); err != nil {
			log.Warn("replica DNS", "err", err)
		}
	}
	resolve()
	go func() {
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				resolve()
			}
		}
	}()
}
