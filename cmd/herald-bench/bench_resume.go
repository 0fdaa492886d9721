package main

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/herald-dev/herald"
	"github.com/herald-dev/herald/client"
)

// The resume scenario: S subscribers receive a few events, drop, K events
// (--events) are written by --writers concurrent writers, and the
// subscribers resume from their last id while more events are written
// live. Each subscriber must end with every event exactly once, ids
// increasing and every writer's events in the order it wrote them. For
// herald the subscribers are client.Subscribe, the real Go client; for
// nchan, the lean SSE client sending Last-Event-ID.

const resumeWarmup = 10 // events before the drop

// resumeSub is one resuming subscriber.
type resumeSub struct {
	mu     sync.Mutex
	check  *orderCheck
	lastID string

	got    atomic.Int64
	want   atomic.Int64 // once got reaches it, doneAt is set
	doneAt atomic.Int64
	stop   func() // ends the current connection and waits for it
}

func (r *resumeSub) deliver(id string, n, w int64) {
	r.mu.Lock()
	r.check.add(id, n, w)
	r.lastID = id
	r.mu.Unlock()
	if r.got.Add(1) == r.want.Load() {
		r.doneAt.Store(time.Now().UnixNano())
	}
}

// connect starts r's connection to channel after lastID ("" live) and
// returns once the server has it.
func (b *bench) connectResumer(ctx context.Context, r *resumeSub, channel, lastID string) error {
	ctx, cancel := context.WithCancel(ctx)
	ended := make(chan struct{})
	r.stop = func() { cancel(); <-ended }
	connected := make(chan struct{})
	var once sync.Once
	if b.cfg.target == "herald" {
		var from herald.Cursor
		if lastID != "" {
			from, _ = herald.ParseCursor(lastID)
		}
		go func() {
			defer close(ended)
			_ = client.Subscribe(ctx, b.base.String(), []string{channel}, from, func(m client.Message) error {
				switch {
				case m.Event != nil:
					n, _ := jsonInt(m.Event.Data, "n")
					w, _ := jsonInt(m.Event.Data, "w")
					r.deliver(m.Event.Cursor().String(), n, w)
				case m.Reset != nil:
					r.mu.Lock()
					r.check.Resets++
					r.mu.Unlock()
				case m.State != nil && m.State.State == client.StateConnected:
					once.Do(func() { close(connected) })
				}
				return nil
			}, client.Options{MinBackoff: 100 * time.Millisecond, MaxBackoff: time.Second})
		}()
	} else {
		c, err := dialSSE(ctx, b.base, b.tgt.StreamPath(channel), lastID)
		if err != nil {
			cancel()
			close(ended)
			return err
		}
		go func() {
			defer close(ended)
			_ = c.read(func(id, data []byte) {
				n, _ := jsonInt(data, "n")
				w, _ := jsonInt(data, "w")
				r.deliver(string(id), n, w)
			})
		}()
		go func() { <-ctx.Done(); c.Close() }()
		go func() {
			select {
			case <-c.ready:
				once.Do(func() { close(connected) })
			case <-ended:
			}
		}()
	}
	select {
	case <-connected:
		return nil
	case <-ended:
		return errors.New("resume subscriber: stream ended before it was connected")
	case <-time.After(30 * time.Second):
		r.stop()
		return errors.New("resume subscriber: not connected within 30s")
	}
}

func (b *bench) resume(ctx context.Context) ([]benchResult, error) {
	if b.cfg.subscribers < 1 || b.cfg.events < 1 {
		return nil, &usageError{"resume needs --subscribers and --events of at least 1"}
	}
	res := benchResult{Scenario: "resume", Target: b.tgt.Name(), Params: b.params(nil)}
	var failed error
	for run := int64(1); run <= int64(b.cfg.runs) && ctx.Err() == nil; run++ {
		m, err := b.resumeRun(ctx, run)
		if err != nil {
			return []benchResult{res}, err
		}
		res.Runs = append(res.Runs, m)
		b.progress("%s resume run %d: %.0f events of history, missing %.0f, duplicate %.0f, out of order %.0f, resets %.0f, caught up p50 %.0f ms",
			b.tgt.Name(), run, m["history_events"], m["missing"], m["duplicate"], m["out_of_order"], m["resets"], m["catchup_p50_ms"])
		if m["missing"]+m["duplicate"]+m["out_of_order"]+m["resets"] > 0 {
			failed = errBenchCheck
			res.Notes = append(res.Notes, fmt.Sprintf("run %d: missing %.0f, duplicate %.0f, out of order %.0f, resets %.0f",
				run, m["missing"], m["duplicate"], m["out_of_order"], m["resets"]))
		}
	}
	if failed == nil {
		failed = ctx.Err()
	}
	return []benchResult{res}, failed
}

func (b *bench) resumeRun(ctx context.Context, run int64) (benchMetrics, error) {
	channel := fmt.Sprintf("bench-resume-%s-%d", b.nonce, run)
	K := b.cfg.events
	live := min(1000, max(K/10, 1))
	total := resumeWarmup + K + live
	subs := make([]*resumeSub, b.cfg.subscribers)
	defer func() {
		for _, r := range subs {
			if r != nil && r.stop != nil {
				r.stop()
			}
		}
	}()
	for i := range subs {
		subs[i] = &resumeSub{check: newOrderCheck()}
		subs[i].want.Store(-1)
		if err := b.connectResumer(ctx, subs[i], channel, ""); err != nil {
			return nil, err
		}
	}
	// Before the drop: a few events every subscriber must have.
	var next atomic.Int64
	if err := b.writeNumbered(ctx, channel, run, resumeWarmup, 1, &next); err != nil {
		return nil, err
	}
	if !waitResumers(ctx, subs, resumeWarmup, time.Now().Add(30*time.Second)) {
		got := make([]int64, len(subs))
		for i, r := range subs {
			got[i] = r.got.Load()
		}
		return nil, fmt.Errorf("resume: subscribers did not receive the %d warm-up events within 30s (receivedTotal: %v)", resumeWarmup, got)
	}
	for _, r := range subs {
		r.stop()
	}
	b.progress("%s resume run %d: %d subscribers dropped; writing %d events", b.tgt.Name(), run, len(subs), K)
	if err := b.writeNumbered(ctx, channel, run, K, b.cfg.writers[0], &next); err != nil {
		return nil, err
	}
	capAt := time.Now().Add(b.cfg.duration)
	for _, r := range subs {
		r.want.Store(int64(total))
	}
	w := b.openWindow()
	start := time.Now()
	for _, r := range subs {
		r.mu.Lock()
		last := r.lastID
		r.mu.Unlock()
		if err := b.connectResumer(ctx, r, channel, last); err != nil {
			return nil, err
		}
	}
	// Live events while the subscribers catch up: the backlog must meet
	// the live stream without a gap or a duplicate.
	if err := b.writeNumbered(ctx, channel, run, live, b.cfg.writers[0], &next); err != nil {
		return nil, err
	}
	waitResumers(ctx, subs, int64(total), capAt)
	m := benchMetrics{}
	var got int64
	for _, r := range subs {
		got += r.got.Load() - resumeWarmup
	}
	b.closeWindow(w, m, got)
	expected := make([]int64, total)
	for i := range expected {
		expected[i] = int64(i)
	}
	var catchup []int64
	for _, r := range subs {
		r.stop()
		r.mu.Lock()
		m["missing"] += float64(r.check.Missing(expected))
		m["duplicate"] += float64(r.check.Duplicate)
		m["out_of_order"] += float64(r.check.OutOfOrder)
		m["resets"] += float64(r.check.Resets)
		r.mu.Unlock()
		if t := r.doneAt.Load(); t > 0 {
			catchup = append(catchup, t-start.UnixNano())
		}
	}
	m["history_events"] = float64(K)
	m["live_events"] = float64(live)
	m["deliveries"] = float64(got)
	addLatencies(m, "catchup", catchup)
	return m, nil
}

// writeNumbered publishes count events numbered from next on, split over
// writers; each writer writes its events in order, 25 per call (one
// transaction for herald).
func (b *bench) writeNumbered(ctx context.Context, channel string, run int64, count, writers int, next *atomic.Int64) error {
	const batch = 25
	end := next.Load() + int64(count)
	var wg sync.WaitGroup
	var firstErr atomic.Pointer[error]
	for w := range writers {
		wg.Go(func() {
			for {
				lo := next.Add(batch) - batch
				if lo >= end || firstErr.Load() != nil {
					return
				}
				hi := min(lo+batch, end)
				data := make([][]byte, 0, hi-lo)
				for n := lo; n < hi; n++ {
					data = append(data, benchPayload(nil, time.Now().UnixNano(), n, run, int64(w)))
				}
				if err := b.tgt.Publish(ctx, channel, data...); err != nil {
					firstErr.CompareAndSwap(nil, &err)
					return
				}
			}
		})
	}
	wg.Wait()
	next.Store(end)
	if p := firstErr.Load(); p != nil {
		return fmt.Errorf("resume: publish: %w", *p)
	}
	return nil
}

// waitResumers waits until every subscriber has n events, or until deadline.
func waitResumers(ctx context.Context, subs []*resumeSub, n int64, deadline time.Time) bool {
	for {
		all := true
		for _, r := range subs {
			if r.got.Load() < n {
				all = false
				break
			}
		}
		if all {
			return true
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return false
		}
		time.Sleep(10 * time.Millisecond)
	}
}
