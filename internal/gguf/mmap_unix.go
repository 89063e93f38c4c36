//go:build unix

package gguf

import (
	"io"
	"math"
	"os"
	"syscall"
)

func mapFile(fh *os.File, size int64) ([]byte, func() error, error) {
	if size == 0 {
		return nil, nil, nil
	}
	if size > math.MaxInt {
		return nil, nil, syscall.EFBIG
	}
	data, err := syscall.Mmap(int(fh.Fd()), 0, int(size), syscall.PROT_READ, syscall.MAP_SHARED)
	if err != nil {
		// Some filesystems cannot be mapped; read the file instead.
		buf := make([]byte, size)
		if _, rerr := io.ReadFull(fh, buf); rerr != nil {
			return nil, nil, rerr
		}
		return buf, nil, nil
	}
	return data, func() error { return syscall.Munmap(data) }, nil
}
