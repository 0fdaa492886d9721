package main

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/herald-dev/herald/api"
	"github.com/herald-dev/herald/store/pgtest"
)

// TestMaxConnsPerIPBehindTrustedProxy: --max-conns-per-ip limits anonymous
// streams and polls per client address, and with --trusted-proxies the
// address is the one X-Forwarded-For gives when (and only when) the
// request comes from a configured proxy. The test client on 127.0.0.1
// plays the proxy.
func TestMaxConnsPerIPBehindTrustedProxy(t *testing.T) {
	dbURL := pgtest.URL(t)
	secret := "per-ip-test-secret-0123456789abcdefghij"
	base, _ := serveOn(t, dbURL, "HERALD_MAX_CONNS_PER_IP", "1", "HERALD_TRUSTED_PROXIES", "127.0.0.1",
		"HERALD_JWT_SECRET", secret)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	const stream = "/v1/stream?channel=ip"
	xff := func(v string) []string { return []string{"X-Forwarded-For", v} }

	// Client 203.0.113.5 holds its one stream.
	c5ctx, closeC5 := context.WithCancel(ctx)
	if r := openSSE(t, c5ctx, base+stream, xff("203.0.113.5")...); r.StatusCode != 200 {
		t.Fatalf("first stream of 203.0.113.5: %s", r.Status)
	}
	// A second stream or a poll of the same client is refused.
	tooMany := func(what string, a answer) {
		t.Helper()
		a.wantError(t, what, http.StatusTooManyRequests, "too_many_connections")
		if a.header.Get("Retry-After") == "" {
			t.Fatalf("%s: 429 without Retry-After", what)
		}
	}
	r := openSSE(t, ctx, base+stream, xff("203.0.113.5")...)
	tooMany("second stream of 203.0.113.5", answerOf(t, r))
	tooMany("poll of 203.0.113.5", do(t, "GET", base+"/v1/poll?channel=ip&cursor=0&timeout=1", "", xff("203.0.113.5")...))
	// The proxy appends the address it saw: a client claiming another
	// address is still counted by its real one.
	r = openSSE(t, ctx, base+stream, xff("198.51.100.9, 203.0.113.5")...)
	tooMany("spoofed X-Forwarded-For from 203.0.113.5", answerOf(t, r))
	// Another client behind the same proxy has its own count.
	if r := openSSE(t, ctx, base+stream, xff("203.0.113.6")...); r.StatusCode != 200 {
		t.Fatalf("first stream of 203.0.113.6 behind the same proxy: %s %s", r.Status, answerOf(t, r).body)
	}
	// Token holders are not anonymous: the per-IP limit does not apply.
	tok, err := api.MintToken([]byte(secret), "user-1", []string{"ip"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if r := openSSE(t, ctx, base+stream, append(xff("203.0.113.5"), "Authorization", "Bearer "+tok)...); r.StatusCode != 200 {
		t.Fatalf("stream of a token holder at 203.0.113.5: %s %s", r.Status, answerOf(t, r).body)
	}
	// Closing the stream frees the address's connection.
	closeC5()
	deadline := time.Now().Add(30 * time.Second)
	for {
		a := do(t, "GET", base+"/v1/poll?channel=ip&cursor=0&timeout=1", "", xff("203.0.113.5")...)
		if a.status == 200 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("203.0.113.5 still refused 30 s after closing its stream: %d %s", a.status, a.body)
		}
		time.Sleep(20 * time.Millisecond) // polling interval
	}
}

// TestMaxConnsPerIPUntrustedXFF: X-Forwarded-For from an address that is
// not a configured proxy is not believed: every request from 127.0.0.1
// counts against 127.0.0.1 whatever it claims.
func TestMaxConnsPerIPUntrustedXFF(t *testing.T) {
	for _, proxies := range []string{"", "10.0.0.1"} {
		t.Run("trusted="+proxies, func(t *testing.T) {
			base, _ := serveOn(t, pgtest.URL(t), "HERALD_MAX_CONNS_PER_IP", "1", "HERALD_TRUSTED_PROXIES", proxies)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			if r := openSSE(t, ctx, base+"/v1/stream?channel=ip", "X-Forwarded-For", "203.0.113.5"); r.StatusCode != 200 {
				t.Fatalf("first stream: %s", r.Status)
			}
			r := openSSE(t, ctx, base+"/v1/stream?channel=ip", "X-Forwarded-For", "203.0.113.6")
			answerOf(t, r).wantError(t, "second stream from 127.0.0.1 claiming another address", http.StatusTooManyRequests, "too_many_connections")
		})
	}
}
