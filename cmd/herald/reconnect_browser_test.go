package main

// Reconnecting in a real headless Chromium: herald.js returning to SSE after
// restarts pushed it onto long-poll, and a plain EventSource behind
// deploy/nginx.conf surviving an outage (docs/RECONNECTING.md).

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/herald-dev/herald/store/pgtest"
)

// serveAtAddr runs `herald serve` on addr against dbURL and waits until it
// listens.
func serveAtAddr(t *testing.T, dbURL, addr string, extra ...string) *running {
	t.Helper()
	kv := append([]string{"DATABASE_URL", dbURL, "HERALD_LOG_LEVEL", "warn", "HERALD_SHUTDOWN_TIMEOUT", "5s"}, extra...)
	r := start(t, []string{"serve", "--listen", addr}, env(kv...))
	r.serveURL(t, 60*time.Second)
	return r
}

// numberedWriter inserts {"n":0}, {"n":1}, ... into channel, one every
// 50 ms, as an app would, until stop; it returns how many it committed.
func numberedWriter(t *testing.T, dbURL, channel string) (stop func() int) {
	t.Helper()
	pool, err := pgxpool.New(context.Background(), dbURL)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	n := 0
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			if _, err := pool.Exec(ctx, `INSERT INTO herald.events (channel, type, data) VALUES ($1, 'n', jsonb_build_object('n', $2::int))`, channel, n); err != nil {
				if ctx.Err() == nil {
					t.Errorf("insert %d: %v", n, err)
				}
				return
			}
			n++
		}
	}()
	var once sync.Once
	stop = func() int {
		once.Do(func() {
			cancel()
			wg.Wait()
			pool.Close()
		})
		return n
	}
	t.Cleanup(func() { stop() }) // before the database goes, if t fails first
	return stop
}

// waitRec waits until the page's expression is true, failing t with what
// herald.js went through (window.rec) if it does not become so.
func waitRec(t *testing.T, b *demoBrowser, js string, timeout time.Duration) {
	t.Helper()
	waitJS(t, b, js, timeout, `window.rec ? "transports " + rec.transports.join(" → ") + ", states " + rec.states.join(" ") : "no rec"`)
}

// waitJS waits until js is true, failing t with describe's value if not.
func waitJS(t *testing.T, b *demoBrowser, js string, timeout time.Duration, describe string) {
	t.Helper()
	if _, err := b.run(chromedp.Poll[bool](js, chromedp.WithPollingInterval(10*time.Millisecond), chromedp.WithPollingTimeout(timeout))); err != nil {
		t.Fatalf("waiting %v for %s: %v\npage: %v", timeout, js, err, b.eval(t, describe))
	}
}

// waitNotices waits until the page holds n notices and checks they are
// exactly 0..n-1, in order: every committed notice once.
func waitNotices(t *testing.T, b *demoBrowser, expr string, n int) {
	t.Helper()
	if _, err := b.run(chromedp.Poll[bool](fmt.Sprintf(`%s.length >= %d`, expr, n), chromedp.WithPollingInterval(20*time.Millisecond), chromedp.WithPollingTimeout(30*time.Second))); err != nil {
		t.Fatalf("the page has %v notices, want %d: %v", b.eval(t, expr+".length"), n, err)
	}
	raw := b.eval(t, `JSON.stringify(`+expr+`)`).(string)
	var got []int
	if err := json.Unmarshal([]byte(raw), &got); err != nil {
		t.Fatal(err)
	}
	for i, v := range got {
		if v != i || len(got) != n {
			t.Fatalf("notices %v…: want 0..%d exactly once, in order (first difference at %d)", got[:min(len(got), i+5)], n-1, i)
		}
	}
}

// TestBrowserReturnsToSSE: herald restarts twice in a row, soon after each
// SSE connect, so herald.js runs out of SSE lives and falls back to
// long-poll; it probes SSE in the background and goes back to it once the
// stream works, and the page receives every notice committed meanwhile
// (including while herald was down) exactly once, in order, across both
// switches. Before probes, herald.js stayed on long-poll for good.
func TestBrowserReturnsToSSE(t *testing.T) {
	browser := startChromium(t)
	dbURL := pgtest.URL(t)
	addr := demoFreeAddr(t)
	h := serveAtAddr(t, dbURL, addr)
	b := newDemoTab(t, browser)
	b.do(t, chromedp.Navigate("http://"+addr+"/healthz"))
	// The page: herald.js from herald, from the head of the channel, with
	// short probe delays so the test does not wait the default 15 s.
	b.eval(t, `(async () => {
		window.rec = { notices: [], transports: [], states: [] };
		const m = await import("/herald.js");
		const head = (await (await fetch("/v1/poll?channel=flow")).json()).cursor;
		window.sub = m.subscribe({ url: "", channels: ["flow"], cursor: head, probeMin: 2000, probeMax: 4000,
			onNotice: (n) => rec.notices.push(n.data.n),
			onStateChange: (s, i) => { rec.states.push(s + ":" + (i.transport || "")); if (s === "connected") rec.transports.push(i.transport); } });
	})(), true`)
	waitRec(t, b, `window.rec && rec.transports.at(-1) === "sse"`, 20*time.Second)
	stop := numberedWriter(t, dbURL, "flow")

	for i := range 2 {
		connects := int(b.eval(t, `rec.transports.length`).(float64))
		if err := h.stop(t, 30*time.Second); err != nil {
			t.Fatal(err)
		}
		waitRec(t, b, `rec.states.at(-1).startsWith("unavailable")`, 20*time.Second)
		h = serveAtAddr(t, dbURL, addr)
		waitRec(t, b, fmt.Sprintf(`rec.transports.length > %d`, connects), 30*time.Second)
		t.Logf("restart %d: reconnected over %v", i+1, b.eval(t, `rec.transports.at(-1)`))
	}
	waitRec(t, b, `rec.transports.includes("poll")`, 30*time.Second)
	fellBack := time.Now()
	waitRec(t, b, `rec.transports.lastIndexOf("sse") > rec.transports.lastIndexOf("poll")`, 40*time.Second)
	t.Logf("back on SSE %v after long-poll took over; transports %v", time.Since(fellBack).Round(time.Millisecond), b.eval(t, `rec.transports.join(" → ")`))
	// A few notices more over the probe-turned-stream before the writer stops.
	onSSE := int(b.eval(t, `rec.notices.length`).(float64))
	waitRec(t, b, fmt.Sprintf(`rec.notices.length >= %d`, onSSE+5), 20*time.Second)
	n := stop()
	waitNotices(t, b, "rec.notices", n)
	t.Logf("%d notices, each once, in order; states %v", n, b.eval(t, `rec.states.join(" ")`))
	if tr := b.eval(t, `sub.transport`); tr != "sse" {
		t.Fatalf("transport %v at the end, want sse", tr)
	}
	b.noConsoleErrors(t, true)
}

// TestBrowserEventSourceBehindNginx: a browser's own EventSource behind
// deploy/nginx.conf keeps retrying while herald is down (nginx drops the
// connection instead of answering 502, which would close the EventSource
// for good) and resumes, by Last-Event-ID, with the notice committed while
// herald was away.
func TestBrowserEventSourceBehindNginx(t *testing.T) {
	browser := startChromium(t)
	dbURL := pgtest.URL(t)
	addr := demoFreeAddr(t)
	h := serveAtAddr(t, dbURL, addr)
	px := startNginx(t, addr)
	pool, err := pgxpool.New(context.Background(), dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	insert := func(n int) {
		t.Helper()
		if _, err := pool.Exec(context.Background(), `INSERT INTO herald.events (channel, type, data) VALUES ('es', 'n', jsonb_build_object('n', $1::int))`, n); err != nil {
			t.Fatal(err)
		}
	}
	b := newDemoTab(t, browser)
	b.do(t, chromedp.Navigate(px.URL+"/healthz"))
	b.eval(t, `window.es = new EventSource("/v1/stream?channel=es&events=message");
		window.got = []; window.errors = 0;
		es.onmessage = (e) => got.push(JSON.parse(e.data).data.n);
		es.onerror = () => { errors++; }; true`)
	waitES := func(js string, timeout time.Duration) {
		t.Helper()
		waitJS(t, b, js, timeout, "`readyState ${es.readyState}, errors ${errors}, notices ${JSON.stringify(got)}`")
	}
	waitES(`es.readyState === 1`, 20*time.Second)
	insert(0)
	waitES(`got.length === 1`, 20*time.Second)

	if err := h.stop(t, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	insert(1) // committed while herald is down
	// herald's last words were "retry: ~5s": the EventSource reconnects
	// through nginx while herald is still down, and must survive that.
	waitES(`errors >= 2 || es.readyState === 2`, 30*time.Second)
	if st := b.eval(t, `es.readyState`).(float64); st != 0 {
		t.Fatalf("EventSource readyState %v after a reconnect through nginx with herald down, want 0 (CONNECTING, retrying); 2 means it gave up for good", st)
	}
	serveAtAddr(t, dbURL, addr)
	waitES(`es.readyState === 1 && got.length >= 2 || es.readyState === 2`, 30*time.Second)
	insert(2)
	waitES(`got.length >= 3 || es.readyState === 2`, 20*time.Second)
	if got := b.eval(t, `JSON.stringify(got)`); got != "[0,1,2]" || b.eval(t, `es.readyState`).(float64) != 1 {
		t.Fatalf("notices %v (readyState %v), want [0,1,2] on an open stream", got, b.eval(t, `es.readyState`))
	}
	t.Logf("EventSource retried through nginx %v time(s) while herald was down and resumed with the missed notice", b.eval(t, `errors`))
}
