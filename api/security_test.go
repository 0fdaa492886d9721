package api_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/herald-dev/herald/api"
	"github.com/herald-dev/herald/api/apitest"
)

// TestPublishDecodesStrictly: field names are matched exactly and once;
// a case variant such as "Channel" (which encoding/json would take as
// "channel", last one winning) is a 400, and nothing is published.
func TestPublishDecodesStrictly(t *testing.T) {
	env := apitest.Start(t, apitest.Options{API: api.Config{APIKeys: []string{serverKey}}})
	for _, c := range []struct{ name, body, code string }{
		{"case variant", `{"channel":"a","Channel":"private-x"}`, "unknown_field"},
		{"case variant alone", `{"Channel":"private-x","data":{}}`, "unknown_field"},
		{"duplicate", `{"channel":"a","channel":"private-x"}`, "duplicate_field"},
		{"unknown", `{"channel":"a","chanel":"b"}`, "unknown_field"},
		{"in a batch", `[{"channel":"a"},{"channel":"a","DATA":{}}]`, "unknown_field"},
		{"wrapper case", `{"Events":[{"channel":"private-x"}]}`, "unknown_field"},
		{"wrapper mixed", `{"events":[{"channel":"a"}],"channel":"private-x"}`, "invalid_body"},
		{"channel not a string", `{"channel":7}`, "invalid_body"},
	} {
		if st, code, raw := post(t, env.URL, serverKey, c.body); st != 400 || code != c.code {
			t.Errorf("%s: %s -> %d %q (%s), want 400 %q", c.name, c.body, st, code, raw, c.code)
		}
	}
	// One good event after them: it must be seq 1, so none of the above
	// reached the log.
	if st, _, raw := post(t, env.URL, serverKey, `{"channel":"a","type":"t","data":{}}`); st != 201 {
		t.Fatalf("good event: %d %s", st, raw)
	}
	env.WaitHead(t, 1, 10*time.Second)
	var n int
	if err := env.Pool.QueryRow(context.Background(), `SELECT count(*) FROM herald.event_log`).Scan(&n); err != nil || n != 1 {
		t.Fatalf("event_log holds %d events (%v), want only the good one", n, err)
	}
}

// TestAPIKeyScopes: a key "KEY:PATTERN|PATTERN" publishes only to the
// channels its patterns cover (a batch with one outside is refused whole);
// an unscoped key publishes anywhere.
func TestAPIKeyScopes(t *testing.T) {
	scoped := strings.Repeat("s", 32)
	env := apitest.Start(t, apitest.Options{API: api.Config{APIKeys: []string{serverKey, scoped + ":builds-*|deploys"}}})
	for _, c := range []struct {
		key, body string
		status    int
	}{
		{scoped, `{"channel":"builds-1"}`, 201},
		{scoped, `{"channel":"deploys"}`, 201},
		{scoped, `{"channel":"deploys-2"}`, 403},
		{scoped, `{"channel":"builds"}`, 403},
		{scoped, `{"channel":"private-builds-1"}`, 403},
		{scoped, `[{"channel":"builds-2"},{"channel":"private-x"}]`, 403},
		{serverKey, `{"channel":"private-x"}`, 201},
	} {
		st, code, raw := post(t, env.URL, c.key, c.body)
		if st != c.status || (st == 403 && code != "channel_not_allowed") {
			t.Errorf("key %.4s… %s: %d %s, want %d", c.key, c.body, st, raw, c.status)
		}
	}
	for _, bad := range []string{"short", strings.Repeat("k", 31), strings.Repeat("k", 32) + ":a b", strings.Repeat("k", 32) + ":build1*"} {
		if err := api.ValidateAPIKey(bad); err == nil {
			t.Errorf("ValidateAPIKey(%q) accepted it", bad)
		}
	}
	if err := api.ValidateAPIKey(scoped + ":builds-*|deploys"); err != nil {
		t.Errorf("valid scoped key refused: %v", err)
	}
}

// TestGrantsMatchBySegment: a wildcard grant covers whole segments only,
// for tokens as for key scopes: private-build-1-* does not cover
// private-build-10, and private-build-1* covers nothing.
func TestGrantsMatchBySegment(t *testing.T) {
	for _, c := range []struct {
		pattern, channel string
		want             bool
	}{
		{"private-build-1-*", "private-build-1-linux", true},
		{"private-build-1-*", "private-build-10", false},
		{"private-build-1-*", "private-build-1-", false},
		{"private-build-1*", "private-build-10", false},
		{"private-build-1*", "private-build-1", false},
		{"private-build-*", "private-build-10", true},
		{"private-build-1", "private-build-1", true},
		{"private-build-1", "private-build-10", false},
		{"*", "anything", true},
		{"a.*", "a.b", true},
	} {
		if got := api.MatchGrant(c.pattern, c.channel); got != c.want {
			t.Errorf("MatchGrant(%q, %q) = %v, want %v", c.pattern, c.channel, got, c.want)
		}
	}
	env := authEnv(t, api.Config{})
	tok := mint(t, "u", time.Hour, "private-build-1*", "private-build-2-*")
	for ch, want := range map[string]int{"private-build-10": 403, "private-build-1": 403, "private-build-2-a": 200, "private-build-20": 403} {
		if st, _ := status(t, env.URL, "/v1/channels/"+ch+"/events", bearerHeader(tok)); st != want {
			t.Errorf("history of %s: %d, want %d", ch, st, want)
		}
	}
}

// TestVaryOriginAlways: every answer varies on Origin, with or without an
// Origin header, so a shared cache cannot serve one origin's answer to
// another.
func TestVaryOriginAlways(t *testing.T) {
	env := apitest.Start(t, apitest.Options{API: api.Config{CORSOrigins: []string{"https://a.example"}}})
	for _, origin := range []string{"", "https://a.example", "https://b.example"} {
		for _, path := range []string{"/healthz", "/v1/channels/a/events", "/nope"} {
			req, _ := http.NewRequest(http.MethodGet, env.URL+path, nil)
			if origin != "" {
				req.Header.Set("Origin", origin)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if !strings.Contains(strings.Join(resp.Header.Values("Vary"), ","), "Origin") {
				t.Errorf("GET %s with Origin %q: Vary %q, want Origin", path, origin, resp.Header.Values("Vary"))
			}
		}
	}
}

// streamStatus opens an anonymous stream with headers and returns its
// status; a 200 stays open until t ends.
func streamStatus(t *testing.T, base string, headers map[string]string) int {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/v1/stream?channel=a", nil)
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 {
		resp.Body.Close()
	} else {
		t.Cleanup(func() { resp.Body.Close() })
	}
	return resp.StatusCode
}

// TestClientIPOnlyFromForwardedFor: the per-IP limit (1 here) sees the
// address from X-Forwarded-For when the peer is a trusted proxy, and
// never from X-Real-IP: a client behind the proxy cannot pick a new
// address per connection with a junk X-Forwarded-For entry and X-Real-IP.
// From an untrusted peer neither header counts.
func TestClientIPOnlyFromForwardedFor(t *testing.T) {
	trusted := apitest.Start(t, apitest.Options{API: api.Config{MaxConnsPerIP: 1, TrustedProxies: []string{"127.0.0.1", "::1"}}})
	if st := streamStatus(t, trusted.URL, map[string]string{"X-Forwarded-For": "junk", "X-Real-IP": "203.0.113.1"}); st != 200 {
		t.Fatalf("first stream: %d", st)
	}
	if st := streamStatus(t, trusted.URL, map[string]string{"X-Forwarded-For": "junk", "X-Real-IP": "203.0.113.2"}); st != 429 {
		t.Errorf("second stream with another X-Real-IP: %d, want 429 (X-Real-IP must not count)", st)
	}
	if st := streamStatus(t, trusted.URL, map[string]string{"X-Real-IP": "203.0.113.3"}); st != 429 {
		t.Errorf("stream with only X-Real-IP: %d, want 429", st)
	}
	// X-Forwarded-For from the trusted proxy does count: two clients.
	if st := streamStatus(t, trusted.URL, map[string]string{"X-Forwarded-For": "198.51.100.1"}); st != 200 {
		t.Errorf("stream for client 198.51.100.1: %d, want 200", st)
	}
	untrusted := apitest.Start(t, apitest.Options{API: api.Config{MaxConnsPerIP: 1}})
	if st := streamStatus(t, untrusted.URL, map[string]string{"X-Forwarded-For": "198.51.100.1"}); st != 200 {
		t.Fatalf("first stream: %d", st)
	}
	if st := streamStatus(t, untrusted.URL, map[string]string{"X-Forwarded-For": "198.51.100.2"}); st != 429 {
		t.Errorf("X-Forwarded-For from an untrusted peer counted: %d, want 429", st)
	}
}

// TestSlowBodyCut: a POST body trickled a byte at a time is cut once the
// body deadline (300 ms here) has passed: a 408 or a closed connection,
// well before the client would have finished (it would take 60 s).
func TestSlowBodyCut(t *testing.T) {
	env := apitest.Start(t, apitest.Options{API: api.Config{APIKeys: []string{serverKey}, BodyTimeout: 300 * time.Millisecond}})
	conn, err := net.Dial("tcp", strings.TrimPrefix(env.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	body := `{"channel":"a","data":{"pad":"` + strings.Repeat("x", 200) + `"}}`
	fmt.Fprintf(conn, "POST /v1/events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n", serverKey, len(body))
	start := time.Now()
	answered := make(chan string, 1)
	go func() {
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			answered <- "closed: " + err.Error()
			return
		}
		b, _ := io.ReadAll(resp.Body)
		answered <- fmt.Sprintf("%d %s", resp.StatusCode, b)
	}()
	tick := time.NewTicker(200 * time.Millisecond) // 300 bytes: 60 s
	defer tick.Stop()
	for i := 0; ; i++ {
		select {
		case got := <-answered:
			took := time.Since(start)
			if !strings.HasPrefix(got, "408") && !strings.HasPrefix(got, "closed") {
				t.Fatalf("trickled body: %s, want 408 or a closed connection", got)
			}
			if took > 10*time.Second {
				t.Fatalf("cut after %v; the deadline is 300 ms", took)
			}
			t.Logf("after %v: %s", took, got)
			return
		case <-tick.C:
		}
		if i >= len(body) {
			t.Fatalf("the whole body went through at one byte per 200 ms without a cut")
		}
		if _, err := conn.Write([]byte{body[i]}); err != nil && !errors.Is(err, net.ErrClosed) {
			// The server closed: the answer (or EOF) is on its way.
			continue
		}
	}
}

// TestAdminHandlerSeparate: with SeparateAdmin, /metrics and /readyz are
// not on the main handler, and the admin handler serves them.
func TestAdminHandlerSeparate(t *testing.T) {
	env := apitest.Start(t, apitest.Options{API: api.Config{Metrics: api.NewMetrics(), SeparateAdmin: true}})
	admin := httptest.NewServer(env.Server.AdminHandler())
	defer admin.Close()
	get := func(url string) int {
		resp, err := http.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	// Readiness may take a moment after start (the sequencer's first
	// round); wait for it on the admin handler.
	for deadline := time.Now().Add(30 * time.Second); get(admin.URL+"/readyz") != 200; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("admin /readyz not 200 after 30 s")
		}
	}
	for path, want := range map[string][2]int{"/metrics": {404, 200}, "/readyz": {404, 200}, "/healthz": {200, 200}, "/v1/channels/a/events": {200, 404}} {
		if got := [2]int{get(env.URL + path), get(admin.URL + path)}; got != want {
			t.Errorf("%s: main %d admin %d, want %d %d", path, got[0], got[1], want[0], want[1])
		}
	}
}
