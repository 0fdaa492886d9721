package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/herald-dev/herald"
)

// longpoll: S clients long-poll one channel while events are published at
// --rate. herald: GET /v1/poll with the cursor of the previous answer.
// nchan: GET /sub/<channel> with the Last-Modified and Etag of the previous
// answer (one message per answer). Each run uses a fresh channel.
func (b *bench) longpoll(ctx context.Context) ([]benchResult, error) {
	S := b.cfg.subscribers
	if S < 1 {
		return nil, &usageError{"--subscribers must be at least 1"}
	}
	dialer := &net.Dialer{Timeout: 10 * time.Second}
	client := &http.Client{Transport: &http.Transport{
		MaxIdleConns: S + 16, MaxIdleConnsPerHost: S + 16, IdleConnTimeout: time.Minute, DisableCompression: true,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := dialer.DialContext(ctx, network, addr)
			if tc, ok := c.(*net.TCPConn); ok {
				_ = tc.SetLinger(0) // see dialSSE
			}
			return c, err
		},
	}}
	defer client.CloseIdleConnections()
	res := benchResult{Scenario: "longpoll", Target: b.tgt.Name(), Params: b.params(nil)}
	for run := int64(1); run <= int64(b.cfg.runs) && ctx.Err() == nil; run++ {
		m, err := b.longpollRun(ctx, client, run)
		if err != nil {
			return []benchResult{res}, err
		}
		res.Runs = append(res.Runs, m)
		b.progress("%s longpoll run %d: %.0f deliveries, p50 %.1f ms, p99 %.1f ms, server %.2f ms CPU per 1k",
			b.tgt.Name(), run, m["deliveries"], m["lat_p50_ms"], m["lat_p99_ms"], m["server_cpu_ms_per_1k"])
		if m["lost"] > 0 {
			res.Notes = append(res.Notes, fmt.Sprintf("run %d: %.0f of %.0f deliveries missing at the cap", run, m["lost"], m["expected"]))
		}
		if m["duplicate"] > 0 {
			res.Notes = append(res.Notes, fmt.Sprintf("run %d: %.0f duplicate deliveries", run, m["duplicate"]))
		}
	}
	return []benchResult{res}, ctx.Err()
}

func (b *bench) longpollRun(ctx context.Context, client *http.Client, run int64) (benchMetrics, error) {
	S := b.cfg.subscribers
	channel := fmt.Sprintf("bench-lp-%s-%d", b.nonce, run)
	b.run.Store(run)
	startID, err := b.tgt.Prime(ctx, channel)
	if err != nil {
		return nil, err
	}
	pctx, stop := context.WithCancel(ctx)
	recs := make([]*recorder, S)
	var ready, errs, requests atomic.Int64
	var wg sync.WaitGroup
	defer func() { stop(); wg.Wait() }()
	for i := range recs {
		recs[i] = &recorder{run: &b.run}
		wg.Go(func() { b.poller(pctx, client, channel, startID, recs[i], &ready, &errs, &requests) })
	}
	deadline := time.Now().Add(30 * time.Second)
	for ready.Load() < int64(S) {
		if time.Now().After(deadline) || ctx.Err() != nil {
			return nil, fmt.Errorf("longpoll: %d of %d clients polling after 30s (%d errors)", ready.Load(), S, errs.Load())
		}
		time.Sleep(10 * time.Millisecond)
	}
	benchSleep(ctx, 500*time.Millisecond) // their waiting requests reach the server
	start := time.Now()
	capAt := start.Add(b.cfg.duration)
	plan := pubPlan{events: b.cfg.events, rate: b.cfg.rate, writers: b.cfg.writers[0], run: run,
		deadline: capAt.Add(-min(5*time.Second, b.cfg.duration/4)), channel: func(int) string { return channel }}
	pub := newPublishedSet()
	plan.published = pub.mark
	req0 := requests.Load()
	w := b.openWindow()
	pr := b.publishPaced(ctx, plan)
	expected := pr.published.Load() * int64(S)
	for ctx.Err() == nil && time.Now().Before(capAt) {
		var got int64
		for _, r := range recs {
			got += r.count.Load()
		}
		if got >= expected {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	m := benchMetrics{}
	var lat []int64
	var got, last, missing, dup int64
	for _, r := range recs {
		t := r.takeRun()
		lat = append(lat, t.lat...)
		got += t.count
		dup += t.dup
		missing += pub.missing(t.seen, func(int) bool { return true }) // all on one channel
		last = max(last, r.last.Load())
	}
	b.closeWindow(w, m, got)
	m["events"] = float64(pr.published.Load())
	m["deliveries"] = float64(got)
	m["expected"] = float64(expected)
	m["lost"] = float64(missing)
	m["duplicate"] = float64(dup)
	m["requests"] = float64(requests.Load() - req0)
	m["poll_errors"] = float64(errs.Load())
	if last > start.UnixNano() {
		m["deliveries_per_s"] = float64(got) / (float64(last-start.UnixNano()) / 1e9)
	}
	addLatencies(m, "lat", lat)
	return m, nil
}

// poller is one long-polling client; it counts itself ready once its
// first waiting request is on its way.
func (b *bench) poller(ctx context.Context, client *http.Client, channel, startID string, rec *recorder, ready, errs, requests *atomic.Int64) {
	isHerald := b.cfg.target == "herald"
	cursor := "" // herald's cursor
	lastMod, etag := "", ""
	first := true
	for ctx.Err() == nil {
		u := b.base.String()
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		if isHerald {
			q := url.Values{"channel": {channel}}
			if cursor != "" {
				q.Set("cursor", cursor)
				q.Set("timeout", "20")
			}
			req.URL.Path, req.URL.RawQuery = "/v1/poll", q.Encode()
		} else {
			req.URL.Path = "/sub/" + channel
			if lastMod == "" {
				req.Header.Set("Last-Event-ID", startID)
			} else {
				req.Header.Set("If-Modified-Since", lastMod)
				req.Header.Set("If-None-Match", etag)
			}
		}
		if first && (!isHerald || cursor != "") {
			ready.Add(1)
			first = false
		}
		requests.Add(1)
		resp, err := client.Do(req)
		if err != nil {
			if ctx.Err() == nil {
				errs.Add(1)
				benchSleep(ctx, 100*time.Millisecond)
			}
			continue
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || (resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusGone) {
			if ctx.Err() == nil {
				errs.Add(1)
				benchSleep(ctx, 100*time.Millisecond)
			}
			continue
		}
		if !isHerald {
			rec.record(body)
			lastMod, etag = resp.Header.Get("Last-Modified"), resp.Header.Get("Etag")
			continue
		}
		// {"events":[{..."data":{...},...},...],"cursor":"N"}; 410 carries
		// the cursor to continue from too.
		for rest := body; ; {
			i := bytes.Index(rest, []byte(`"data":{`))
			if i < 0 {
				break
			}
			rest = rest[i+7:]
			end := bytes.IndexByte(rest, '}')
			if end < 0 {
				break
			}
			rec.record(rest[:end+1])
			rest = rest[end:]
		}
		if i := bytes.LastIndex(body, []byte(`"cursor":"`)); i >= 0 {
			c := body[i+10:]
			if j := bytes.IndexByte(c, '"'); j >= 0 {
				if _, err := herald.ParseCursor(string(c[:j])); err == nil {
					cursor = string(c[:j])
				}
			}
		}
	}
}
