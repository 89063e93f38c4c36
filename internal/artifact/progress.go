package artifact

import (
	"fmt"
	"io"

	"github.com/schollz/progressbar/v3"
)

// bar is a progress bar on a writer (the CLI's stderr), or nothing when
// the writer is nil. It counts bytes written to it.
type bar struct {
	pb *progressbar.ProgressBar
}

func newBar(w io.Writer, size int64, desc string) *bar {
	if w == nil {
		return &bar{}
	}
	return &bar{pb: progressbar.NewOptions64(size,
		progressbar.OptionSetWriter(w),
		progressbar.OptionSetDescription(desc),
		progressbar.OptionShowBytes(true),
		progressbar.OptionSetWidth(30),
		progressbar.OptionThrottle(100_000_000), // 100ms
		progressbar.OptionShowCount(),
		progressbar.OptionClearOnFinish(),
	)}
}

func (b *bar) Write(p []byte) (int, error) {
	if b != nil && b.pb != nil {
		_ = b.pb.Add(len(p))
	}
	return len(p), nil
}

func (b *bar) set(n int64) {
	if b != nil && b.pb != nil {
		_ = b.pb.Set64(n)
	}
}

func (b *bar) finish() {
	if b != nil && b.pb != nil {
		_ = b.pb.Finish()
	}
}

func (c *Client) progressSkip(size int64, why string) {
	if c.Progress != nil {
		fmt.Fprintf(c.Progress, "%s (%d bytes)\n", why, size)
	}
}
