package main

import (
	"context"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// benchPayload is the body of every bench event: t is when the publishing call
// started (unix nanoseconds; latency runs from there to receipt), n the
// event's number, r the run, w the writer that published it.
func benchPayload(buf []byte, t, n, r, w int64) []byte {
	buf = append(buf[:0], `{"t":`...)
	buf = strconv.AppendInt(buf, t, 10)
	buf = append(buf, `,"n":`...)
	buf = strconv.AppendInt(buf, n, 10)
	buf = append(buf, `,"r":`...)
	buf = strconv.AppendInt(buf, r, 10)
	buf = append(buf, `,"w":`...)
	buf = strconv.AppendInt(buf, w, 10)
	return append(buf, '}')
}

// pubPlan is one run's publishing: events numbered 0..events-1, event i
// not before start + i/rate (rate 0: as fast as the writers go), spread
// over writers concurrent publishers, stopping at deadline.
type pubPlan struct {
	events   int
	rate     float64
	writers  int
	run      int64
	deadline time.Time
	channel  func(i int) string
	// published, if set, is called after event i was published.
	published func(i int)
}

// pubResult says how publishing went.
type pubResult struct {
	published atomic.Int64
	failed    atomic.Int64
	firstErr  atomic.Pointer[error]
	start     time.Time
	end       time.Time
}

// publishPaced runs p and returns when every event is published, failed,
// or the deadline passed.
func (b *bench) publishPaced(ctx context.Context, p pubPlan) *pubResult {
	res := &pubResult{start: time.Now()}
	ctx, cancel := context.WithDeadline(ctx, p.deadline)
	defer cancel()
	next := make(chan int)
	go func() {
		defer close(next)
		for i := 0; i < p.events; i++ {
			if p.rate > 0 {
				at := res.start.Add(time.Duration(float64(i) / p.rate * float64(time.Second)))
				if d := time.Until(at); d > 0 {
					t := time.NewTimer(d)
					select {
					case <-t.C:
					case <-ctx.Done():
						t.Stop()
						return
					}
				}
			}
			select {
			case next <- i:
			case <-ctx.Done():
				return
			}
		}
	}()
	var wg sync.WaitGroup
	for w := range max(p.writers, 1) {
		wg.Go(func() {
			var buf []byte
			for i := range next {
				buf = benchPayload(buf, time.Now().UnixNano(), int64(i), p.run, int64(w))
				if err := b.tgt.Publish(ctx, p.channel(i), buf); err != nil {
					if res.failed.Add(1) == 1 {
						res.firstErr.Store(&err)
					}
					continue
				}
				res.published.Add(1)
				if p.published != nil {
					p.published(i)
				}
			}
		})
	}
	wg.Wait()
	res.end = time.Now()
	return res
}

// err is the first publishing error, or nil.
func (r *pubResult) err() error {
	if p := r.firstErr.Load(); p != nil {
		return *p
	}
	return nil
}
