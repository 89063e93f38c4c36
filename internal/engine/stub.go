package engine

import (
	"context"

	"github.com/llmo/llmo/internal/errs"
)

// Model is a loaded model. It is safe for concurrent use.
type Model struct{}

// Load opens a GGUF model file. An unknown architecture is an error naming it.
func Load(path string, opts Options) (*Model, error) {
	return nil, errs.E(errs.NotImplemented, "engine: not implemented yet")
}

// Close releases the model's memory and file mapping.
func (m *Model) Close() error { return nil }

// Info describes the model.
func (m *Model) Info() Info { return Info{} }

// Embed returns the mean-pooled, L2-normalised final hidden states of ids.
func (m *Model) Embed(ctx context.Context, ids []int) ([]float32, error) {
	return nil, errs.E(errs.NotImplemented, "engine: not implemented yet")
}

// Scheduler runs continuous batching over a model's KV slots.
type Scheduler struct{}

// NewScheduler makes the scheduler of m; start it with Run.
func NewScheduler(m *Model) *Scheduler { return &Scheduler{} }

// Run is the one loop that owns the batch; it returns when ctx is done.
func (s *Scheduler) Run(ctx context.Context) error { <-ctx.Done(); return ctx.Err() }

// Submit queues r and returns its event stream.
func (s *Scheduler) Submit(ctx context.Context, r Request) (<-chan Event, error) {
	return nil, errs.E(errs.NotImplemented, "engine: not implemented yet")
}

// Stats is a snapshot of the scheduler's state.
func (s *Scheduler) Stats() Stats { return Stats{} }
