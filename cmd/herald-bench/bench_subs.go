package main

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// recorder counts one subscriber's events of the current run and keeps
// each one's latency.
type recorder struct {
	run *atomic.Int64 // the bench's current run: other runs' events are ignored

	mu    sync.Mutex
	lat   []int64        // nanoseconds from the publishing call's start
	seen  map[int64]bool // n of the run's events delivered (bench_identity.go)
	dup   int64          // deliveries of an n already delivered
	count atomic.Int64
	last  atomic.Int64 // unix nanoseconds of the latest receipt
}

// record notes one event whose payload is data.
func (s *recorder) record(data []byte) {
	now := time.Now().UnixNano()
	if r, _ := jsonInt(data, "r"); r != s.run.Load() {
		return
	}
	n, _ := jsonInt(data, "n")
	s.mu.Lock()
	first := s.firstDelivery(n)
	if t, ok := jsonInt(data, "t"); ok && first {
		s.lat = append(s.lat, now-t)
	}
	s.mu.Unlock()
	if !first {
		return // a duplicate: counted apart, not a delivery
	}
	s.count.Add(1)
	s.last.Store(now)
}

// take returns and resets the run's latencies and count.
func (s *recorder) take() ([]int64, int64) {
	t := s.takeRun()
	return t.lat, t.count
}

// benchSub is one lean SSE subscriber.
type benchSub struct {
	recorder
	c     *sseConn
	ended chan struct{}
	err   error // why read returned
}

func (s *benchSub) onEvent(_, data []byte) { s.record(data) }

// alive reports whether the stream is still open.
func (s *benchSub) alive() bool {
	select {
	case <-s.ended:
		return false
	default:
		return true
	}
}

// connectAll opens n subscribers, cfg.connectConc at a time, subscriber i
// to path(i), and waits until the server has registered every one. Any
// failure closes them all.
func (b *bench) connectAll(ctx context.Context, n int, path func(i int) string, lastID string) ([]*benchSub, error) {
	subs := make([]*benchSub, n)
	errs := make(chan error, n)
	sem := make(chan struct{}, b.cfg.connectConc)
	var wg sync.WaitGroup
	start := time.Now()
	for i := range n {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			c, err := dialSSE(ctx, b.base, path(i), lastID)
			if err != nil {
				errs <- fmt.Errorf("subscriber %d: %w", i, err)
				return
			}
			s := &benchSub{recorder: recorder{run: &b.run}, c: c, ended: make(chan struct{})}
			subs[i] = s
			go func() {
				defer close(s.ended)
				s.err = c.read(s.onEvent)
			}()
			select {
			case <-c.ready:
			case <-s.ended:
				errs <- fmt.Errorf("subscriber %d: stream ended before its first line: %v", i, s.err)
			case <-time.After(30 * time.Second):
				errs <- fmt.Errorf("subscriber %d: no first line within 30s", i)
			}
		})
		if ctx.Err() != nil {
			break
		}
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil || ctx.Err() != nil {
		closeSubs(subs)
		if err == nil {
			err = ctx.Err()
		}
		return nil, err
	}
	b.progress("%s: %d subscribers connected in %v", b.tgt.Name(), n, time.Since(start).Round(time.Millisecond))
	return subs, nil
}

// closeSubs closes every subscriber and waits for their readers.
func closeSubs(subs []*benchSub) {
	for _, s := range subs {
		if s != nil {
			s.c.Close()
		}
	}
	for _, s := range subs {
		if s != nil {
			<-s.ended
		}
	}
}

// receivedTotal sums the subscribers' counts for the current run.
func receivedTotal(subs []*benchSub) int64 {
	var n int64
	for _, s := range subs {
		n += s.count.Load()
	}
	return n
}

// countDisconnected counts subscribers whose stream ended on its own.
func countDisconnected(subs []*benchSub) int {
	n := 0
	for _, s := range subs {
		if !s.alive() {
			n++
		}
	}
	return n
}
