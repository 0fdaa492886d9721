package main

import (
	"context"
	"time"
)

// quiet: the server's and its Postgres's CPU per second with no traffic and
// no connections, over --duration per run. Give --server-pid several pids
// (two herald replicas on one database, say) to meter them together; the
// Postgres figure covers every backend of the postmaster, so both replicas'
// sessions are in it.
func (b *bench) quiet(ctx context.Context) ([]benchResult, error) {
	res := benchResult{Scenario: "quiet", Target: b.tgt.Name(),
		Params: b.params(map[string]any{"duration": b.cfg.duration.String(), "server_processes": len(b.pids)})}
	for run := 1; run <= b.cfg.runs && ctx.Err() == nil; run++ {
		w := b.openWindow()
		start := time.Now()
		benchSleep(ctx, b.cfg.duration)
		m := benchMetrics{}
		b.closeWindow(w, m, 0)
		secs := time.Since(start).Seconds()
		total := 0.0
		for _, k := range []string{"server_cpu_ms", "pg_cpu_ms"} {
			if v, ok := m[k]; ok {
				m[k+"_per_s"] = v / secs
				total += v / secs
				delete(m, k)
			}
		}
		m["total_cpu_ms_per_s"] = total
		delete(m, "client_cpu_ms")
		res.Runs = append(res.Runs, m)
		b.progress("%s quiet run %d: %.2f ms CPU per second (server %.2f, Postgres %.2f)",
			b.tgt.Name(), run, total, m["server_cpu_ms_per_s"], m["pg_cpu_ms_per_s"])
	}
	return []benchResult{res}, ctx.Err()
}
