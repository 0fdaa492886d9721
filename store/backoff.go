package store

import (
	"context"
	"math/rand/v2"
	"time"
)

// backoff is capped exponential backoff with full jitter, for reconnect
// loops. reset after a connection has proved itself.
type backoff struct {
	min, max, cur time.Duration
}

func newBackoff(min, max time.Duration) *backoff { return &backoff{min: min, max: max, cur: min} }

func (b *backoff) peek() time.Duration { return b.cur }

func (b *backoff) reset() { b.cur = b.min }

// sleep waits a jittered delay in [cur/2, cur] and doubles cur; false if ctx
// ended first.
func (b *backoff) sleep(ctx context.Context) bool {
	d := b.cur/2 + rand.N(b.cur/2+1)
	b.cur = min(b.cur*2, b.max)
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
