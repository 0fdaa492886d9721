package main

import (
	"context"
	"fmt"
	"slices"
	"time"
)

// deliver is the fanout scenario (every subscriber on one channel: each
// event is delivered S times) and, with perChannel, the channels scenario
// (each subscriber on its own channel: each event is delivered once,
// round-robin over the channels). The subscribers stay connected across
// runs; each run publishes --events at --rate and waits for every
// delivery or the --duration cap.
func (b *bench) deliver(ctx context.Context, perChannel bool) ([]benchResult, error) {
	name, S := "fanout", b.cfg.subscribers
	if S < 1 {
		return nil, &usageError{"--subscribers must be at least 1"}
	}
	chans := []string{fmt.Sprintf("bench-fanout-%s", b.nonce)}
	if perChannel {
		name = "channels"
		chans = make([]string, S)
		for i := range chans {
			chans[i] = fmt.Sprintf("bench-ch-%s-%d", b.nonce, i)
		}
	}
	subs, err := b.connectAll(ctx, S, func(i int) string { return b.tgt.StreamPath(chans[i%len(chans)]) }, "")
	if err != nil {
		return nil, err
	}
	defer closeSubs(subs)
	res := benchResult{Scenario: name, Target: b.tgt.Name(), Params: b.params(nil)}
	for run := int64(1); run <= int64(b.cfg.runs) && ctx.Err() == nil; run++ {
		m := b.deliverRun(ctx, subs, chans, run, perChannel)
		res.Runs = append(res.Runs, m)
		b.progress("%s %s run %d: %.0f deliveries, %.0f/s, p50 %.1f ms, p99 %.1f ms, server %.2f ms CPU per 1k",
			b.tgt.Name(), name, run, m["deliveries"], m["deliveries_per_s"], m["lat_p50_ms"], m["lat_p99_ms"], m["server_cpu_ms_per_1k"])
		if m["lost"] > 0 {
			res.Notes = append(res.Notes, fmt.Sprintf("run %d: %.0f of %.0f deliveries missing at the cap", run, m["lost"], m["expected"]))
		}
		if m["duplicate"] > 0 {
			res.Notes = append(res.Notes, fmt.Sprintf("run %d: %.0f duplicate deliveries", run, m["duplicate"]))
		}
		benchSleep(ctx, 300*time.Millisecond) // let the last run's stragglers pass
	}
	if d := countDisconnected(subs); d > 0 {
		res.Notes = append(res.Notes, fmt.Sprintf("%d of %d subscribers were countDisconnected by the server", d, S))
	}
	return []benchResult{res}, ctx.Err()
}

// deliverRun is one run: publish, wait for every delivery (or the cap),
// and measure.
func (b *bench) deliverRun(ctx context.Context, subs []*benchSub, chans []string, run int64, perChannel bool) benchMetrics {
	b.run.Store(run)
	for _, s := range subs {
		s.take()
	}
	start := time.Now()
	capAt := start.Add(b.cfg.duration)
	// Publishing stops early enough for its last events to arrive.
	plan := pubPlan{events: b.cfg.events, rate: b.cfg.rate, writers: b.cfg.writers[0], run: run,
		deadline: capAt.Add(-min(5*time.Second, b.cfg.duration/4))}
	offset := int(run) * 7919 // each run's events go to other channels first
	plan.channel = func(i int) string { return chans[(i+offset)%len(chans)] }
	pub := newPublishedSet()
	plan.published = pub.mark
	w := b.openWindow()
	pubDone := make(chan *pubResult, 1)
	go func() { pubDone <- b.publishPaced(ctx, plan) }()
	var pr *pubResult
	var expected int64
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
wait:
	for {
		select {
		case pr = <-pubDone:
			expected = pr.published.Load()
			if !perChannel {
				expected *= int64(len(subs))
			}
		case <-tick.C:
		case <-ctx.Done():
			break wait
		}
		if pr != nil && receivedTotal(subs) >= expected || time.Now().After(capAt) {
			break wait
		}
	}
	m := benchMetrics{}
	var lat []int64
	var got, last, dup int64
	tallies := make([]runTally, len(subs))
	for k, s := range subs {
		r := s.takeRun()
		tallies[k] = r
		lat = append(lat, r.lat...)
		got += r.count
		dup += r.dup
		last = max(last, s.last.Load())
	}
	b.closeWindow(w, m, got)
	if pr == nil {
		pr = <-pubDone
		expected = pr.published.Load()
		if !perChannel {
			expected *= int64(len(subs))
		}
	}
	m["events"] = float64(pr.published.Load())
	m["deliveries"] = float64(got)
	m["expected"] = float64(expected)
	var missing int64 // publishing is over: every published event is marked
	for k, r := range tallies {
		// Subscriber k reads chans[k%len(chans)] (see deliver).
		missing += pub.missing(r.seen, func(i int) bool { return plan.channel(i) == chans[k%len(chans)] })
	}
	m["lost"] = float64(missing)
	m["duplicate"] = float64(dup)
	if n := pr.failed.Load(); n > 0 {
		m["publish_errors"] = float64(n)
		b.progress("run %d: %d publishes failed, first: %v", run, n, pr.err())
	}
	if last > start.UnixNano() {
		secs := float64(last-start.UnixNano()) / 1e9
		m["elapsed_s"] = secs
		m["deliveries_per_s"] = float64(got) / secs
	}
	if secs := pr.end.Sub(pr.start).Seconds(); secs > 0 {
		m["publish_per_s"] = float64(pr.published.Load()) / secs
	}
	addLatencies(m, "lat", lat)
	return m
}

// cpuWindow is a measuring interval: CPU samples at its start.
type cpuWindow struct {
	srv, pg cpuSample
	self    time.Duration
}

func (b *bench) openWindow() cpuWindow {
	return cpuWindow{srv: b.server.sample(), pg: b.pg.sample(), self: selfCPU()}
}

// closeWindow adds the CPU used since w opened by the server, Postgres
// (herald) and this load generator, per 1,000 deliveries too.
func (b *bench) closeWindow(w cpuWindow, m benchMetrics, deliveries int64) {
	if b.server != nil {
		addCPU(m, "server", b.server.sample().since(w.srv), deliveries)
	}
	if b.pg != nil {
		addCPU(m, "pg", b.pg.sample().since(w.pg), deliveries)
	}
	if deliveries > 0 {
		m["total_cpu_ms_per_1k"] = m["server_cpu_ms_per_1k"] + m["pg_cpu_ms_per_1k"]
	}
	m["client_cpu_ms"] = float64(selfCPU()-w.self) / float64(time.Millisecond)
}

func benchSleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

// benchKeys returns a map's keys in order.
func benchKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
