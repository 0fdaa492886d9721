package main

import (
	"context"
	"fmt"
	"time"
)

// quiet: the server's and its Postgres's CPU per second with no traffic and
// no connections, over --duration per run. Give --server-pid several pids
// (two herald replicas on one database, say) to meter them together; the
// Postgres figure covers every backend of the postmaster, so both replicas'
// sessions are in it. For herald the Postgres figure is also split into
// herald's own sessions and the rest of the cluster (bench_sessions.go):
// herald plus its sessions is what herald costs when idle; the rest is
// Postgres's own maintenance, there with or without herald.
func (b *bench) quiet(ctx context.Context) ([]benchResult, error) {
	res := benchResult{Scenario: "quiet", Target: b.tgt.Name(),
		Params: b.params(map[string]any{"duration": b.cfg.duration.String(), "server_processes": len(b.pids)})}
	lister, err := b.openSessionLister(ctx)
	if err != nil {
		return nil, err
	}
	defer lister.close()
	for run := 1; run <= b.cfg.runs && ctx.Err() == nil; run++ {
		sw, err := lister.open(ctx)
		if err != nil {
			return []benchResult{res}, err
		}
		w := b.openWindow()
		start := time.Now()
		benchSleep(ctx, b.cfg.duration)
		m := benchMetrics{}
		b.closeWindow(w, m, 0)
		secs := time.Since(start).Seconds()
		if err := sw.close(ctx, lister, m); err != nil {
			return []benchResult{res}, err
		}
		total := 0.0
		for _, k := range []string{"server_cpu_ms", "pg_cpu_ms"} {
			if v, ok := m[k]; ok {
				m[k+"_per_s"] = v / secs
				total += v / secs
				delete(m, k)
			}
		}
		m["total_cpu_ms_per_s"] = total
		line := ""
		if v, ok := m["sessions_cpu_ms"]; ok {
			s := v / secs
			m["sessions_cpu_ms_per_s"] = s
			m["herald_cpu_ms_per_s"] = m["server_cpu_ms_per_s"] + s
			m["pg_rest_cpu_ms_per_s"] = max(m["pg_cpu_ms_per_s"]-s, 0)
			delete(m, "sessions_cpu_ms")
			line = fmt.Sprintf("; herald and its %d sessions %.2f, the rest of Postgres %.2f",
				int(m["sessions"]), m["herald_cpu_ms_per_s"], m["pg_rest_cpu_ms_per_s"])
			if m["sessions_changed"] == 1 {
				line += " (a session began or ended in the window: a floor)"
			}
		}
		delete(m, "client_cpu_ms")
		res.Runs = append(res.Runs, m)
		b.progress("%s quiet run %d: %.2f ms CPU per second (server %.2f, Postgres %.2f%s)",
			b.tgt.Name(), run, total, m["server_cpu_ms_per_s"], m["pg_cpu_ms_per_s"], line)
	}
	return []benchResult{res}, ctx.Err()
}
