package stream_test

import (
	"context"
	"encoding/json"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/herald-dev/herald"
	"github.com/herald-dev/herald/client"
)

// goClient is one client.Subscribe running in the background, recording
// everything its handler is given.
type goClient struct {
	mu     sync.Mutex
	msgs   []client.Message
	events []*herald.Event
	states map[string]int
	errs   []error // Err of every disconnected state
	change chan struct{}
	// dropped counts events the client dropped as already delivered: the
	// handler's exactly-once would hide a server that sends a seq twice,
	// so every test through subscribeGo fails unless it stays 0.
	dropped atomic.Int64

	done   chan struct{} // closed when Subscribe returned; err is then set
	err    error
	cancel context.CancelFunc
}

// subscribeGo starts client.Subscribe on herald at base and stops it when
// the test ends.
func subscribeGo(t testing.TB, base string, channels []string, from int64, opts client.Options) *goClient {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	c := &goClient{states: map[string]int{}, change: make(chan struct{}, 1), done: make(chan struct{}), cancel: cancel}
	if opts.Dropped == nil {
		opts.Dropped = &c.dropped
	}
	go func() {
		defer close(c.done)
		c.err = client.Subscribe(ctx, base, channels, herald.Cursor{Seq: from}, c.handle, opts)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-c.done:
		case <-time.After(wait):
			t.Errorf("Subscribe did not return within %v of cancel", wait)
		}
		if n := opts.Dropped.Load(); n != 0 {
			t.Errorf("the server sent %d events the client had already delivered (dropped by the client)", n)
		}
	})
	return c
}

// checkNoneDropped fails t if the client dropped any event as already
// delivered: the server sent a seq twice (or out of order).
func (c *goClient) checkNoneDropped(t testing.TB) {
	t.Helper()
	if n := c.dropped.Load(); n != 0 {
		t.Fatalf("the server sent %d events the client had already delivered (dropped by the client)", n)
	}
}

func (c *goClient) handle(m client.Message) error {
	c.mu.Lock()
	c.msgs = append(c.msgs, m)
	switch {
	case m.Event != nil:
		c.events = append(c.events, m.Event)
	case m.State != nil:
		c.states[m.State.State]++
		if m.State.State == client.StateDisconnected && m.State.Err != nil {
			c.errs = append(c.errs, m.State.Err)
		}
	}
	c.mu.Unlock()
	select {
	case c.change <- struct{}{}:
	default:
	}
	return nil
}

// waitFor waits until cond, called with the client's lock held, holds.
func (c *goClient) waitFor(t testing.TB, within time.Duration, what string, cond func(c *goClient) bool) {
	t.Helper()
	timer := time.NewTimer(within)
	defer timer.Stop()
	for {
		c.mu.Lock()
		ok := cond(c)
		n := len(c.events)
		c.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-c.change:
		case <-c.done:
			t.Fatalf("waiting for %s: Subscribe returned %v", what, c.err)
		case <-timer.C:
			t.Fatalf("waiting for %s: not within %v (%d events so far)", what, within, n)
		}
	}
}

// tryWaitEvents waits up to within for n events and returns what arrived.
func (c *goClient) tryWaitEvents(n int, within time.Duration) ([]*herald.Event, bool) {
	timer := time.NewTimer(within)
	defer timer.Stop()
	for {
		c.mu.Lock()
		got := len(c.events) >= n
		events := append([]*herald.Event(nil), c.events...)
		c.mu.Unlock()
		if got {
			return events, true
		}
		select {
		case <-c.change:
		case <-c.done:
			return events, false
		case <-timer.C:
			return events, false
		}
	}
}

func (c *goClient) waitEvents(t testing.TB, n int, within time.Duration) []*herald.Event {
	t.Helper()
	c.waitFor(t, within, "events", func(c *goClient) bool { return len(c.events) >= n })
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]*herald.Event(nil), c.events...)
}

func (c *goClient) state(s string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.states[s]
}

func (c *goClient) messages() []client.Message {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]client.Message(nil), c.msgs...)
}

// compactKeys returns want with each JSON key in its wire form: the SSE data
// line is compact JSON, while pgtest.WriteLoad returns jsonb's text.
func compactKeys(t testing.TB, want map[string]bool) map[string]bool {
	t.Helper()
	out := make(map[string]bool, len(want))
	for k := range want {
		b, err := json.Marshal(json.RawMessage(k))
		if err != nil {
			t.Fatalf("compact %s: %v", k, err)
		}
		out[string(b)] = true
	}
	return out
}
