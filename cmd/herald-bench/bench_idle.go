package main

import (
	"context"
	"fmt"
	"time"
)

// idleSettle is how long idle connections sit before memory is read; the
// server's CPU over it is its idle cost with S connections open.
const idleSettle = 3 * time.Second

// idle opens S SSE connections that receive nothing, each on its own
// channel, and reads the server's memory before and after: KiB per
// connection, by VmRSS and by Pss. Each run adds S connections to those of
// the runs before (run k has k×S open): closing them between runs would
// let the next run reuse the memory they freed, which a server that only
// grows never can, and understate the cost.
func (b *bench) idle(ctx context.Context) ([]benchResult, error) {
	S := b.cfg.subscribers
	if S < 1 {
		return nil, &usageError{"--subscribers must be at least 1"}
	}
	res := benchResult{Scenario: "idle", Target: b.tgt.Name(), Params: b.params(nil)}
	var open []*benchSub
	defer func() { closeSubs(open) }()
	for run := 1; run <= b.cfg.runs && ctx.Err() == nil; run++ {
		before, err := readMemory(b.pids)
		if err != nil {
			return []benchResult{res}, fmt.Errorf("read server procMemory: %w", err)
		}
		subs, err := b.connectAll(ctx, S, func(i int) string {
			return b.tgt.StreamPath(fmt.Sprintf("bench-idle-%s-%d-%d", b.nonce, run, i))
		}, "")
		if err != nil {
			return []benchResult{res}, err
		}
		w := b.openWindow()
		start := time.Now()
		benchSleep(ctx, idleSettle)
		m := benchMetrics{}
		b.closeWindow(w, m, 0)
		secs := time.Since(start).Seconds()
		for _, k := range []string{"server_cpu_ms", "pg_cpu_ms"} {
			if v, ok := m[k]; ok {
				m[k+"_per_s"] = v / secs
				delete(m, k)
			}
		}
		delete(m, "client_cpu_ms")
		after, err := readMemory(b.pids)
		open = append(open, subs...)
		alive := len(open) - countDisconnected(open)
		if err != nil {
			return []benchResult{res}, fmt.Errorf("read server procMemory: %w", err)
		}
		m["rss_before_kib"], m["rss_after_kib"] = float64(before.RSS), float64(after.RSS)
		m["pss_before_kib"], m["pss_after_kib"] = float64(before.Pss), float64(after.Pss)
		m["rss_kib_per_conn"] = float64(after.RSS-before.RSS) / float64(S)
		m["pss_kib_per_conn"] = float64(after.Pss-before.Pss) / float64(S)
		m["connections"] = float64(alive)
		res.Runs = append(res.Runs, m)
		b.progress("%s idle run %d: %d connections open, RSS %+d KiB (%.1f KiB each), Pss %.1f KiB each",
			b.tgt.Name(), run, alive, after.RSS-before.RSS, m["rss_kib_per_conn"], m["pss_kib_per_conn"])
	}
	return []benchResult{res}, ctx.Err()
}
