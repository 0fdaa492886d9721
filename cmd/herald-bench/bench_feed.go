package main

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/herald-dev/herald/store"
)

// feed: commit→feed latency. Events are appended at --rate by --writers;
// a feed in this process, the same code herald serves from, subscribes to
// their channel. The latency runs from Append's return (the commit) to the
// event reaching the subscription: the sequencer's step, its NOTIFY, and
// the feed's read. Needs a running herald (its sequencer) on the database.
func (b *bench) feedLatency(ctx context.Context) ([]benchResult, error) {
	if b.cfg.events < 1 {
		return nil, &usageError{"feed needs --events of at least 1"}
	}
	feed := b.db.NewFeed(store.FeedOptions{})
	fctx, stop := context.WithCancel(ctx)
	fdone := make(chan error, 1)
	go func() { fdone <- feed.Run(fctx) }()
	defer func() { stop(); <-fdone }()
	select {
	case <-feed.Ready():
	case <-time.After(30 * time.Second):
		return nil, errors.New("feed: not connected after 30s")
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	res := benchResult{Scenario: "feed", Target: "herald", Params: b.params(nil)}
	for run := int64(1); run <= int64(b.cfg.runs) && ctx.Err() == nil; run++ {
		m, err := b.feedRun(ctx, feed, run)
		if err != nil {
			return []benchResult{res}, err
		}
		res.Runs = append(res.Runs, m)
		b.progress("feed run %d: %.0f events at %.0f/s, commit→feed p50 %.1f ms, p99 %.1f ms",
			run, m["events"], m["publish_per_s"], m["commit_feed_p50_ms"], m["commit_feed_p99_ms"])
		if m["lost"] > 0 {
			res.Notes = append(res.Notes, fmt.Sprintf("run %d: %.0f events not seen by the feed at the cap", run, m["lost"]))
		}
		if m["duplicate"] > 0 {
			res.Notes = append(res.Notes, fmt.Sprintf("run %d: the feed delivered %.0f events twice", run, m["duplicate"]))
		}
	}
	return []benchResult{res}, ctx.Err()
}

func (b *bench) feedRun(ctx context.Context, feed *store.Feed, run int64) (benchMetrics, error) {
	channel := fmt.Sprintf("bench-feed-%s-%d", b.nonce, run)
	sub, err := feed.Subscribe(ctx, []string{channel}, 0, false)
	if err != nil {
		return nil, err
	}
	defer sub.Close()
	N := b.cfg.events
	committed := make([]atomic.Int64, N)
	seen := make([]int64, N)    // receipt, unix nanos; owned by the reader
	started := make([]int64, N) // the payload's t
	var got atomic.Int64
	var dups int64 // deliveries of an n already seen; owned by the reader until readDone
	rctx, stopRead := context.WithCancel(ctx)
	readDone := make(chan struct{})
	go func() {
		defer close(readDone)
		for {
			select {
			case <-sub.Ready():
			case <-sub.Done():
			case <-rctx.Done():
				return
			}
			batch, err := sub.Take(rctx, 1000)
			now := time.Now().UnixNano()
			for _, ev := range batch.Events {
				n, ok := jsonInt(ev.Data, "n")
				if !ok || n < 0 || n >= int64(N) {
					continue
				}
				if seen[n] != 0 {
					dups++ // counted, not a delivery
					continue
				}
				seen[n] = now
				started[n], _ = jsonInt(ev.Data, "t")
				got.Add(1)
			}
			if err != nil {
				return
			}
		}
	}()
	start := time.Now()
	capAt := start.Add(b.cfg.duration)
	plan := pubPlan{events: N, rate: b.cfg.rate, writers: b.cfg.writers[0], run: run,
		deadline:  capAt.Add(-min(5*time.Second, b.cfg.duration/4)),
		channel:   func(int) string { return channel },
		published: func(i int) { committed[i].Store(time.Now().UnixNano()) }}
	pr := b.publishPaced(ctx, plan)
	for got.Load() < pr.published.Load() && time.Now().Before(capAt) && ctx.Err() == nil {
		time.Sleep(5 * time.Millisecond)
	}
	stopRead()
	<-readDone
	m := benchMetrics{}
	c2f, p2f, missing, negative := feedSamples(committed, seen, started)
	m["events"] = float64(pr.published.Load())
	m["lost"] = float64(missing)
	m["duplicate"] = float64(dups)
	m["commit_feed_negative"] = float64(negative)
	if secs := pr.end.Sub(pr.start).Seconds(); secs > 0 {
		m["publish_per_s"] = float64(pr.published.Load()) / secs
	}
	if n := pr.failed.Load(); n > 0 {
		m["publish_errors"] = float64(n)
	}
	addLatencies(m, "commit_feed", c2f)
	addLatencies(m, "publish_feed", p2f)
	return m, nil
}

// feedSamples turns one feed run's timestamps (unix nanos, 0 = never) into
// latency samples: commit→feed and publish start→feed for every published
// event the feed saw, the published events it never saw (missing, by
// identity), and how many commit→feed samples are negative. The commit
// time is taken when Append returns, so the feed can see an event first:
// such a sample is kept as it is (clamping it to 0 would flatter the low
// percentiles) and counted, so the report shows how often it happens.
func feedSamples(committed []atomic.Int64, seen, started []int64) (c2f, p2f []int64, missing, negative int64) {
	for i := range committed {
		if committed[i].Load() == 0 {
			continue // not published
		}
		if seen[i] == 0 {
			missing++
			continue
		}
		d := seen[i] - committed[i].Load()
		if d < 0 {
			negative++
		}
		c2f = append(c2f, d)
		p2f = append(p2f, seen[i]-started[i])
	}
	return c2f, p2f, missing, negative
}
