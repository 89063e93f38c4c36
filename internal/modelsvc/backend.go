package modelsvc

import (
	"context"
	"errors"
	"sync"

	"github.com/llmo/llmo/internal/engine"
)

// backend is what the HTTP layer needs from one loaded model. The engine
// provides it (engineBackend); the interface is here, where it is used, so
// the handlers do not care how tokens are produced.
type backend interface {
	Info() engine.Info
	// Encode tokenizes text. addBOS prepends BOS when the model wants one;
	// special parses special-token texts such as <|im_end|> as tokens.
	Encode(text string, addBOS, special bool) ([]int, error)
	// TokenText is the text of one token (for logprobs).
	TokenText(id int) string
	// SpecialTexts are the BOS and EOS texts handed to chat templates.
	SpecialTexts() (bos, eos string)
	Submit(ctx context.Context, r engine.Request) (<-chan engine.Event, error)
	Stats() engine.Stats
	Embed(ctx context.Context, ids []int) ([]float32, error)
	Close() error
}

// engineBackend runs one model on the native engine with its own scheduler
// loop.
type engineBackend struct {
	m      *engine.Model
	sched  *engine.Scheduler
	cancel context.CancelFunc
	done   chan struct{}
	once   sync.Once
}

func loadEngine(path string, opts engine.Options) (*engineBackend, error) {
	m, err := engine.Load(path, opts)
	if err != nil {
		return nil, err
	}
	if !hasTokenizer(m) {
		_ = m.Close()
		return nil, errors.New("engine has no tokenizer for this model")
	}
	ctx, cancel := context.WithCancel(context.Background())
	b := &engineBackend{m: m, sched: engine.NewScheduler(m), cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(b.done)
		_ = b.sched.Run(ctx)
	}()
	return b, nil
}

func (b *engineBackend) Info() engine.Info { return b.m.Info() }

func (b *engineBackend) Encode(text string, addBOS, special bool) ([]int, error) {
	return encodeWith(b.m, text, addBOS, special), nil
}

func (b *engineBackend) TokenText(id int) string { return tokenText(b.m, id) }

func (b *engineBackend) SpecialTexts() (string, string) { return specialTexts(b.m) }

func (b *engineBackend) Submit(ctx context.Context, r engine.Request) (<-chan engine.Event, error) {
	return b.sched.Submit(ctx, r)
}

func (b *engineBackend) Stats() engine.Stats { return b.sched.Stats() }

func (b *engineBackend) Embed(ctx context.Context, ids []int) ([]float32, error) {
	return b.m.Embed(ctx, ids)
}

// Close stops the scheduler loop and frees the model.
func (b *engineBackend) Close() error {
	var err error
	b.once.Do(func() {
		b.cancel()
		<-b.done
		err = b.m.Close()
	})
	return err
}
