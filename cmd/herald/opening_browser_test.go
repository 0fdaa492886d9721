package main

// herald.js in a real headless Chromium across a herald crash before the
// page's first notice (docs/PROTOCOL.md, "The opening block").

import (
	"context"
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/herald-dev/herald/store/pgtest"
)

// TestBrowserNoNoticeYetSurvivesSIGKILL: a page subscribes with herald.js
// and no cursor, and receives no notice. herald is SIGKILLed; notices are
// committed while none runs; herald starts again on the same address. The
// page receives every one of them exactly once, in order, then a live one.
// herald.js cannot read the stream's opening id (EventSource keeps it), so
// it learns the head before it opens the stream; before it did, the page
// reconnected with no cursor, started live and lost all of them.
func TestBrowserNoNoticeYetSurvivesSIGKILL(t *testing.T) {
	browser := startChromium(t)
	dbURL := pgtest.URL(t)
	pool, err := pgxpool.New(context.Background(), dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	insert := func(from, to int) { // {"n": from} .. {"n": to-1} on channel watched
		t.Helper()
		if _, err := pool.Exec(context.Background(), `INSERT INTO herald.events (channel, data)
			SELECT 'watched', jsonb_build_object('n', g) FROM generate_series($1::int, $2::int - 1) g`, from, to); err != nil {
			t.Fatal(err)
		}
	}
	addr := demoFreeAddr(t)
	args := []string{"serve", "--listen", addr}
	p1 := startProc(t, args, "DATABASE_URL="+dbURL)
	insertN(t, pool, "other", 3) // the log is not empty: the head is 3
	waitHead(t, p1.URL, 3)

	b := newDemoTab(t, browser)
	b.do(t, chromedp.Navigate(p1.URL+"/healthz"))
	b.eval(t, `(async () => {
		window.rec = { notices: [], transports: [], states: [] };
		const m = await import("/herald.js");
		rec.t0 = performance.now();
		window.sub = m.subscribe({ url: "", channels: ["watched"],
			onNotice: (n) => rec.notices.push(n.data.n),
			onReset: (r) => rec.states.push("reset:" + r.cursor),
			onStateChange: (s, i) => { rec.states.push(s + ":" + (i.transport || "")); if (s === "connected") { rec.transports.push(i.transport); rec.connectMs ??= performance.now() - rec.t0; } } });
	})(), true`)
	waitRec(t, b, `window.rec && rec.transports.at(-1) === "sse"`, 20*time.Second)
	if n := b.eval(t, `rec.notices.length`).(float64); n != 0 {
		t.Fatalf("%v notices before any was committed on the channel", n)
	}
	t.Logf("connected over SSE with no notice in %.1f ms (head request included); herald.js cursor %v",
		b.eval(t, `rec.connectMs`), b.eval(t, `String(sub.cursor)`))

	p1.signal(t, syscall.SIGKILL, 10*time.Second)
	waitRec(t, b, `rec.states.at(-1).startsWith("unavailable") || rec.states.at(-1).startsWith("connecting")`, 20*time.Second)
	const missed = 7
	insert(0, missed) // committed while no herald runs
	insertN(t, pool, "other", 2)

	connects := int(b.eval(t, `rec.transports.length`).(float64))
	startProc(t, args, "DATABASE_URL="+dbURL)
	waitRec(t, b, fmt.Sprintf(`rec.transports.length > %d`, connects), 30*time.Second)
	insert(missed, missed+1) // live, after the reconnect: it must follow the missed ones
	waitRec(t, b, fmt.Sprintf(`rec.notices.includes(%d)`, missed), 20*time.Second)
	if got, want := b.eval(t, `JSON.stringify(rec.notices)`), "[0,1,2,3,4,5,6,7]"; got != want {
		t.Fatalf("the page received %v, want %s: every notice committed while herald was down once, in order, then the live one; states %v",
			got, want, b.eval(t, `rec.states.join(" ")`))
	}
	t.Logf("%d notices, each once, in order; transports %v; states %v", missed+1,
		b.eval(t, `rec.transports.join(" → ")`), b.eval(t, `rec.states.join(" ")`))
	b.noConsoleErrors(t, true)
}
