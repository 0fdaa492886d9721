package main

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/herald-dev/herald/api"
	"github.com/herald-dev/herald/store/pgtest"
)

// renewPage subscribes to a private channel with herald.js; authorize()
// fetches a short-lived token from the app (/token). EventSource cannot
// tell a stream ended at the token's exp from a network drop, so each
// expiry costs the SSE transport a life until it has been up stableAfter;
// with 3 s tokens the page sets stableAfter to 1 s, as the README says an
// app with tokens shorter than 30 s must (else herald.js falls back to
// long-poll after two expiries, which this test would catch).
const renewPage = `<!doctype html><meta charset="utf-8"><title>renew</title>
<script type="module">
import { subscribe } from "/herald.js";
window.got = []; window.states = []; window.authCalls = 0; window.resets = 0;
window.sub = subscribe({
  url: "", channels: ["private-renew"], storage: null, stableAfter: 1000,
  authorize: async () => { window.authCalls++; return (await fetch("/token")).text(); },
  onNotice: (n) => window.got.push(Number(n.id.split(".").pop())), // ids are <epoch>.<seq>
  onReset: () => { window.resets++; },
  onStateChange: (s, info) => window.states.push(s + ":" + (info && info.transport)),
});
</script>`

// streamReq is one /v1/stream request seen by the app's proxy.
type streamReq struct {
	token, lastEventID string
	status             int
	start, end         time.Time
}

// TestHeraldJSTokenRenewBrowser: herald.js in headless Chromium with a
// token that lives 3 s. herald ends the stream at the token's exp; the
// page calls authorize() for a new token and resumes over SSE from its
// cursor, repeatedly, while notices are written the whole time (also in
// the gaps between streams): the page gets every notice exactly once, in
// order, never resets and never falls back to long-poll.
func TestHeraldJSTokenRenewBrowser(t *testing.T) {
	browser := startChromium(t)
	const ttl = 3 * time.Second
	secret := "renew-browser-test-secret-0123456789ab"
	dbURL := pgtest.URL(t)
	base, _ := serveOn(t, dbURL, "HERALD_JWT_SECRET", secret)
	pool, err := pgxpool.New(context.Background(), dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()

	// The app: the page, its token endpoint, and herald behind it on the
	// same origin.
	target, _ := url.Parse(base)
	rp := httputil.NewSingleHostReverseProxy(target)
	rp.FlushInterval = -1
	var mu sync.Mutex
	var streams []*streamReq
	var tokens atomic.Int64
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/":
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			fmt.Fprint(w, renewPage)
		case "/favicon.ico":
			w.WriteHeader(http.StatusNoContent)
		case "/token":
			if tokens.Load() > 0 {
				// A renewal takes the app a moment: notices committed
				// meanwhile reach the page only through the resume.
				time.Sleep(300 * time.Millisecond)
			}
			tok, err := api.MintToken([]byte(secret), "user-renew", []string{"private-renew"}, ttl)
			if err != nil {
				http.Error(w, err.Error(), 500)
				return
			}
			tokens.Add(1)
			fmt.Fprint(w, tok)
		case "/v1/stream":
			s := &streamReq{token: r.URL.Query().Get("token"), lastEventID: r.URL.Query().Get("lastEventId"), start: time.Now()}
			sw := &statusWriter{ResponseWriter: w}
			rp.ServeHTTP(sw, r)
			s.status, s.end = sw.status, time.Now()
			mu.Lock()
			streams = append(streams, s)
			mu.Unlock()
		default:
			rp.ServeHTTP(w, r)
		}
	}))
	defer app.Close()
	okStreams := func() []*streamReq {
		mu.Lock()
		defer mu.Unlock()
		var out []*streamReq
		for _, s := range streams {
			if s.status == http.StatusOK {
				out = append(out, s)
			}
		}
		return out
	}

	b := newDemoTab(t, browser)
	b.do(t, chromedp.Navigate(app.URL+"/"))
	b.poll(t, `window.states && window.states.includes("connected:sse")`, 30*time.Second)

	// Write a notice every 50 ms until three streams ended at their
	// token's exp (three renewals), remembering when each was committed.
	var commits []time.Time
	deadline := time.Now().Add(90 * time.Second)
	for len(okStreams()) < 3 {
		if time.Now().After(deadline) {
			mu.Lock()
			for i, s := range streams {
				t.Logf("stream %d: %d lastEventId=%q %v..%v", i, s.status, s.lastEventID, s.start.Format("15:04:05.000"), s.end.Format("15:04:05.000"))
			}
			mu.Unlock()
			t.Fatalf("after 90 s, %d streams ended (tokens minted: %d); want 3 renewals; page states: %v", len(okStreams()), tokens.Load(), b.eval(t, `window.states.join(" ")`))
		}
		insertN(t, pool, "private-renew", 1)
		commits = append(commits, time.Now())
		if len(commits)%20 == 0 && b.eval(t, `window.states.some((s) => s.endsWith(":poll"))`).(bool) {
			t.Fatalf("the page fell back to long-poll after %d streams: %v", len(okStreams()), b.eval(t, `window.states.join(" ")`))
		}
		time.Sleep(50 * time.Millisecond) // the pace of the writer
	}
	total := len(commits)
	b.poll(t, fmt.Sprintf(`window.got.length >= %d`, total), 30*time.Second)
	got, _ := b.eval(t, `window.got`).([]any)
	for i, seq := range got {
		if v, _ := seq.(float64); int(v) != i+1 {
			t.Fatalf("page got %v, want 1..%d each once in order", got, total)
		}
	}
	if len(got) != total {
		t.Fatalf("page got %d notices, want %d", len(got), total)
	}
	if r := b.eval(t, `window.resets`).(float64); r != 0 {
		t.Fatalf("%v resets", r)
	}
	states := b.eval(t, `window.states.join(" ")`).(string)
	if b.eval(t, `window.states.some((s) => s.endsWith(":poll"))`).(bool) {
		t.Fatalf("the page fell back to long-poll: %s", states)
	}

	// Each ended stream carried a token of its own and lasted until about
	// its exp; the next one resumed by cursor after authorize().
	ended := okStreams()
	gapCommits := 0
	seen := map[string]bool{}
	for i, s := range ended {
		if seen[s.token] {
			t.Fatalf("stream %d reused a token: authorize() was not called for it", i)
		}
		seen[s.token] = true
		if d := s.end.Sub(s.start); d > ttl+10*time.Second {
			t.Fatalf("stream %d lasted %v with a %v token", i, d, ttl)
		}
		if i > 0 && (s.lastEventID == "" || s.lastEventID == "0") {
			t.Fatalf("stream %d did not resume from a cursor (lastEventId %q)", i, s.lastEventID)
		}
		if i+1 < len(ended) {
			next := ended[i+1].start
			gapCommits += len(slices.DeleteFunc(slices.Clone(commits), func(c time.Time) bool { return c.Before(s.end) || c.After(next) }))
		}
	}
	if n := b.eval(t, `window.authCalls`).(float64); int(n) < len(ended)+1 {
		t.Fatalf("authorize() called %v times for %d streams", n, len(ended)+1)
	}
	if gapCommits == 0 {
		t.Fatal("no notice was committed between two streams: the resume was not exercised")
	}
	t.Logf("%d notices over %d renewed streams, %d committed while no stream was open; states: %s", total, len(ended), gapCommits, states)
	b.noConsoleErrors(t, false)
}

// statusWriter records the status a proxied response started with.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Flush() {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}
