package main

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/herald-dev/herald"
	"github.com/herald-dev/herald/store"
)

// publish: how many events per second apps can INSERT into herald.events,
// one event per transaction, at each --writers count, in herald's database
// with its sequencer running, and in a scratch database on the same server
// that no herald serves (no sequencer, no wake trigger: a plain table).
// Each measurement lasts --duration; the two alternate, and each pair's
// ratio is the INSERT share.
func (b *bench) publishRate(ctx context.Context) ([]benchResult, error) {
	maxW := 0
	for _, w := range b.cfg.writers {
		maxW = max(maxW, w)
	}
	type mode struct {
		seq bool
		db  *store.DB
	}
	modes := []mode{{true, b.db}}
	var notes []string
	if u, drop, err := b.scratchDatabase(ctx); err != nil {
		notes = append(notes, fmt.Sprintf("no-sequencer figures skipped: %v", err))
	} else {
		defer drop()
		db, err := store.Open(ctx, dsnWithPoolSize(u, maxW+4), nil)
		if err != nil {
			return nil, err
		}
		defer db.Close()
		modes = append(modes, mode{false, db})
	}
	// Runs alternate between the modes, so drift over the scenario (a
	// checkpoint, the disk's own state) falls on both alike rather than on
	// whichever mode ran second.
	out := make([]benchResult, 0, len(modes)*len(b.cfg.writers))
	for _, md := range modes {
		for _, W := range b.cfg.writers {
			out = append(out, benchResult{Scenario: "publish", Target: "herald", Notes: notes,
				Params: map[string]any{"writers": W, "sequencer": md.seq, "duration": b.cfg.duration.String(), "runs": b.cfg.runs}})
		}
	}
	for j, W := range b.cfg.writers {
		for run := 1; run <= b.cfg.runs && ctx.Err() == nil; run++ {
			var pair []benchMetrics
			for i, md := range modes {
				m, err := b.insertRun(ctx, md.db, W, md.seq)
				if err != nil {
					return out, err
				}
				res := &out[i*len(b.cfg.writers)+j]
				res.Runs = append(res.Runs, m)
				pair = append(pair, m)
				b.progress("publish writers=%d sequencer=%v run %d: %.0f inserts/s, Append p99 %.1f ms",
					W, md.seq, run, m["inserts_per_s"], m["append_p99_ms"])
			}
			// The INSERT share: this run's rate with herald running over
			// the plain table's right after it.
			if len(pair) == 2 && pair[1]["inserts_per_s"] > 0 {
				pair[0]["insert_share"] = pair[0]["inserts_per_s"] / pair[1]["inserts_per_s"]
				b.progress("publish writers=%d run %d: INSERT share %.2f", W, run, pair[0]["insert_share"])
			}
		}
	}
	return out, ctx.Err()
}

// insertRun runs W writers for the duration; with the sequencer it also
// waits for the sequencer to catch up and reports how long that took.
func (b *bench) insertRun(ctx context.Context, db *store.DB, W int, seq bool) (benchMetrics, error) {
	channel := "bench-pub-" + b.nonce
	var head0 int64
	if seq {
		st, err := db.State(ctx)
		if err != nil {
			return nil, err
		}
		head0 = st.Head
	}
	var count, failed atomic.Int64
	var firstErr atomic.Pointer[error]
	lats := make([][]int64, W)
	w := b.openWindow()
	start := time.Now()
	end := start.Add(b.cfg.duration)
	var wg sync.WaitGroup
	for i := range W {
		wg.Go(func() {
			var buf []byte
			for n := int64(0); time.Now().Before(end) && ctx.Err() == nil; n++ {
				t := time.Now()
				buf = benchPayload(buf, t.UnixNano(), n, 0, int64(i))
				if _, err := db.Append(ctx, herald.NewEvent{Channel: channel, Data: buf}); err != nil {
					if failed.Add(1) == 1 {
						firstErr.Store(&err)
					}
					benchSleep(ctx, 10*time.Millisecond)
					continue
				}
				lats[i] = append(lats[i], int64(time.Since(t)))
				count.Add(1)
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	m := benchMetrics{}
	n := count.Load()
	if seq {
		// Everything written must be sequenced; how long after the
		// writers stop does the log catch up?
		capAt := time.Now().Add(30 * time.Second)
		for {
			st, err := db.State(ctx)
			if err != nil {
				return nil, err
			}
			if st.Head >= head0+n {
				m["sequencer_drain_ms"] = float64(time.Since(start.Add(elapsed))) / float64(time.Millisecond)
				break
			}
			if time.Now().After(capAt) {
				m["sequencer_behind"] = float64(head0 + n - st.Head)
				break
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	b.closeWindow(w, m, n)
	delete(m, "client_cpu_ms")
	m["inserts"] = float64(n)
	m["inserts_per_s"] = float64(n) / elapsed.Seconds()
	if f := failed.Load(); f > 0 {
		m["insert_errors"] = float64(f)
		b.progress("publish: %d inserts failed, first: %v", f, *firstErr.Load())
	}
	var all []int64
	for _, l := range lats {
		all = append(all, l...)
	}
	addLatencies(m, "append", all)
	return m, nil
}
