package api_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/herald-dev/herald/api"
)

// sseFrames reads a stream's frames ("event" and "data" of each block) on
// a goroutine; the channel closes when the stream ends.
func sseFrames(body io.Reader) <-chan [2]string {
	out := make(chan [2]string, 64)
	go func() {
		defer close(out)
		br := bufio.NewReader(body)
		var ev, data string
		for {
			line, err := br.ReadString('\n')
			if err != nil {
				return
			}
			line = strings.TrimRight(line, "\r\n")
			switch {
			case line == "":
				if ev != "" || data != "" {
					out <- [2]string{ev, data}
				}
				ev, data = "", ""
			case strings.HasPrefix(line, "event: "):
				ev = line[7:]
			case strings.HasPrefix(line, "data: "):
				data = line[6:]
			}
		}
	}()
	return out
}

// openStream opens path and fails t unless it answers 200.
func openStream(t *testing.T, base, path string, mod func(*http.Request)) <-chan [2]string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+path, nil)
	if mod != nil {
		mod(req)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	if resp.StatusCode != 200 {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("open %s: %d %s", path, resp.StatusCode, b)
	}
	return sseFrames(resp.Body)
}

// waitRevoked waits up to within for the revoked frame and the end of the
// stream, skipping other frames, and returns the frame's code.
func waitRevoked(t *testing.T, frames <-chan [2]string, within time.Duration) string {
	t.Helper()
	timeout := time.After(within)
	code := ""
	for {
		select {
		case f, ok := <-frames:
			if !ok {
				if code == "" {
					t.Fatal("stream ended without a revoked frame")
				}
				return code
			}
			if f[0] == "revoked" {
				var body struct{ Code, Message string }
				if err := json.Unmarshal([]byte(f[1]), &body); err != nil || body.Code == "" || body.Message == "" {
					t.Fatalf("revoked frame body %q: want {code, message}", f[1])
				}
				code = body.Code
			}
		case <-timeout:
			t.Fatalf("no revoked frame and end of stream within %v (code so far %q)", within, code)
		}
	}
}

// waitEvent waits for a notice of type typ on frames.
func waitEvent(t *testing.T, frames <-chan [2]string, typ string, within time.Duration) {
	t.Helper()
	timeout := time.After(within)
	for {
		select {
		case f, ok := <-frames:
			if !ok {
				t.Fatalf("stream ended before a %q notice", typ)
			}
			if f[0] == "revoked" {
				t.Fatalf("stream revoked (%s) while waiting for %q", f[1], typ)
			}
			if f[0] == typ {
				return
			}
		case <-timeout:
			t.Fatalf("no %q notice within %v", typ, within)
		}
	}
}

// TestAuthURLRecheck: a stream the app granted is rechecked as the cache
// lapses. Once the app says no, the stream ends within 2 × TTL with a
// revoked frame, and the next poll is refused with 403; another user's
// stream goes on.
func TestAuthURLRecheck(t *testing.T) {
	const ttl = 2 * time.Second
	var locked atomic.Bool
	app := &fakeApp{answer: func(w http.ResponseWriter, r *http.Request) {
		if locked.Load() && strings.Contains(r.Header.Get("Cookie"), "alice") {
			w.WriteHeader(http.StatusForbidden)
		}
	}}
	env, _ := appEnv(t, app, ttl, time.Second)
	alice := openStream(t, env.URL, "/v1/stream?channel=private-team", withCookie("s=alice"))
	bob := openStream(t, env.URL, "/v1/stream?channel=private-team", withCookie("s=bob"))
	locked.Store(true)
	start := time.Now()
	if code := waitRevoked(t, alice, 2*ttl); code != "forbidden" {
		t.Fatalf("revoked code %q, want forbidden", code)
	}
	t.Logf("stream ended %v after the app withdrew the grant (TTL %v)", time.Since(start), ttl)
	if st, code := status(t, env.URL, "/v1/poll?channel=private-team", withCookie("s=alice")); st != 403 || code != "forbidden" {
		t.Fatalf("next poll: %d %q, want 403 forbidden", st, code)
	}
	env.Insert(t, "private-team", "still.here", `{}`)
	waitEvent(t, bob, "still.here", 10*time.Second)
}

// TestRevokeTokens: POST /v1/revocations by jti and by sub ends matching
// streams with a revoked frame and refuses the tokens at connect time; a
// sub revocation spares tokens issued after it.
func TestRevokeTokens(t *testing.T) {
	env := authEnv(t, api.Config{APIKeys: []string{"server-key-0123456789-0123456789ab"}, Heartbeat: time.Hour})
	v, _ := api.NewTokenVerifier(authSecret, nil)
	tok1 := mint(t, "alice", time.Hour, "private-*")
	c1, err := v.Verify(tok1)
	if err != nil {
		t.Fatal(err)
	}
	tok2 := mint(t, "alice", time.Hour, "private-*") // another jti, same user
	tokBob := mint(t, "bob", time.Hour, "private-*")
	s1 := openStream(t, env.URL, "/v1/stream?channel=private-a", bearerHeader(tok1))
	s2 := openStream(t, env.URL, "/v1/stream?channel=private-a", bearerHeader(tok2))
	sBob := openStream(t, env.URL, "/v1/stream?channel=private-a", bearerHeader(tokBob))

	revoke := func(body string) int { return postRevocation(t, env.URL, body) }
	if st := revoke(`{"jti":"` + c1.ID + `"}`); st != 201 {
		t.Fatalf("revoke jti: %d", st)
	}
	if code := waitRevoked(t, s1, 10*time.Second); code != "token_revoked" {
		t.Fatalf("code %q, want token_revoked", code)
	}
	for _, tr := range transports {
		if st, code := status(t, env.URL, tr.path("private-a"), bearerHeader(tok1)); st != 401 || code != "token_revoked" {
			t.Fatalf("%s with the revoked token: %d %q, want 401 token_revoked", tr.name, st, code)
		}
	}
	if st, _ := status(t, env.URL, "/v1/poll?channel=private-a", bearerHeader(tok2)); st != 200 {
		t.Fatalf("alice's other token after a jti revocation: %d, want 200", st)
	}

	if st := revoke(`{"sub":"alice","ttl":"2h"}`); st != 201 {
		t.Fatalf("revoke sub: %d", st)
	}
	if code := waitRevoked(t, s2, 10*time.Second); code != "token_revoked" {
		t.Fatalf("code %q, want token_revoked", code)
	}
	if st, code := status(t, env.URL, "/v1/poll?channel=private-a", bearerHeader(tok2)); st != 401 || code != "token_revoked" {
		t.Fatalf("alice's token after a sub revocation: %d %q", st, code)
	}
	// A token the app issues after the revocation (iat later) works.
	later := signed(t, jwt.SigningMethodHS256, authSecret, jwt.MapClaims{"sub": "alice", "iat": time.Now().Add(2 * time.Second).Unix(),
		"exp": time.Now().Add(time.Hour).Unix(), "channels": []string{"private-*"}})
	if st, code := status(t, env.URL, "/v1/poll?channel=private-a", bearerHeader(later)); st != 200 {
		t.Fatalf("alice's token issued after the revocation: %d %s, want 200", st, code)
	}
	env.Insert(t, "private-a", "still.here", `{}`)
	waitEvent(t, sBob, "still.here", 10*time.Second)
}

// TestRevokeEndpointErrors: bad requests get a 4xx with a code, never a
// 500, and nothing is revoked.
func TestRevokeEndpointErrors(t *testing.T) {
	const scoped = "scoped-key-0123456789-0123456789ab"
	env := authEnv(t, api.Config{APIKeys: []string{"server-key-0123456789-0123456789ab", scoped + ":builds-*"}})
	cases := []struct {
		name, key, ctype, body string
		status                 int
		code                   string
	}{
		{"no key", "", "application/json", `{"jti":"x"}`, 401, "api_key_required"},
		{"wrong key", "wrong-key-0123456789", "application/json", `{"jti":"x"}`, 401, "invalid_api_key"},
		{"key scoped to channels", scoped, "application/json", `{"sub":"y"}`, 403, "key_scope"},
		{"not JSON", "server-key-0123456789-0123456789ab", "application/json", `{jti`, 400, "invalid_body"},
		{"empty", "server-key-0123456789-0123456789ab", "application/json", ``, 400, "invalid_body"},
		{"array", "server-key-0123456789-0123456789ab", "application/json", `[{"jti":"x"}]`, 400, "invalid_body"},
		{"neither", "server-key-0123456789-0123456789ab", "application/json", `{}`, 400, "invalid_body"},
		{"both", "server-key-0123456789-0123456789ab", "application/json", `{"jti":"x","sub":"y"}`, 400, "invalid_body"},
		{"unknown field", "server-key-0123456789-0123456789ab", "application/json", `{"jti":"x","until":"y"}`, 400, "invalid_body"},
		{"case-folded field", "server-key-0123456789-0123456789ab", "application/json", `{"JTI":"x"}`, 400, "invalid_body"},
		{"two objects", "server-key-0123456789-0123456789ab", "application/json", `{"jti":"x"}{"sub":"y"}`, 400, "invalid_body"},
		{"jti a number", "server-key-0123456789-0123456789ab", "application/json", `{"jti":5}`, 400, "invalid_body"},
		{"empty jti", "server-key-0123456789-0123456789ab", "application/json", `{"jti":""}`, 400, "invalid_jti"},
		{"long sub", "server-key-0123456789-0123456789ab", "application/json", `{"sub":"` + strings.Repeat("u", 257) + `"}`, 400, "invalid_sub"},
		{"control character", "server-key-0123456789-0123456789ab", "application/json", `{"sub":"a\u0000b"}`, 400, "invalid_sub"},
		{"bad ttl", "server-key-0123456789-0123456789ab", "application/json", `{"jti":"x","ttl":"soon"}`, 400, "invalid_ttl"},
		{"negative ttl", "server-key-0123456789-0123456789ab", "application/json", `{"jti":"x","ttl":"-1h"}`, 400, "invalid_ttl"},
		{"ttl too long", "server-key-0123456789-0123456789ab", "application/json", `{"jti":"x","ttl":"10000h"}`, 400, "invalid_ttl"},
		{"too large", "server-key-0123456789-0123456789ab", "application/json", `{"jti":"` + strings.Repeat("x", 5000) + `"}`, 413, "payload_too_large"},
		{"not JSON content type", "server-key-0123456789-0123456789ab", "text/plain", `{"jti":"x"}`, 415, "unsupported_media_type"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodPost, env.URL+"/v1/revocations", strings.NewReader(c.body))
			if c.key != "" {
				req.Header.Set("Authorization", "Bearer "+c.key)
			}
			req.Header.Set("Content-Type", c.ctype)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var body struct {
				Error struct{ Code, Message string } `json:"error"`
			}
			_ = json.NewDecoder(resp.Body).Decode(&body)
			if resp.StatusCode != c.status || body.Error.Code != c.code || body.Error.Message == "" {
				t.Fatalf("got %d %+v, want %d %s", resp.StatusCode, body.Error, c.status, c.code)
			}
		})
	}
	var n int
	if err := env.Pool.QueryRow(context.Background(), `SELECT count(*) FROM herald.revocations`).Scan(&n); err != nil || n != 0 {
		t.Fatalf("%d revocations stored (err %v), want 0", n, err)
	}
	// No API keys: the endpoint is off.
	off := authEnv(t, api.Config{})
	if st, _ := status(t, off.URL, "/v1/revocations", nil); st != 405 {
		t.Fatalf("GET /v1/revocations: %d, want 405", st)
	}
	resp, err := http.Post(off.URL+"/v1/revocations", "application/json", strings.NewReader(`{"jti":"x"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 404 {
		t.Fatalf("without API keys: %d, want 404", resp.StatusCode)
	}
}

// postRevocation posts body to /v1/revocations with the tests' server key
// and returns the status.
func postRevocation(t *testing.T, base, body string) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, base+"/v1/revocations", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer server-key-0123456789-0123456789ab")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestRevokeWaitingPoll: a poll parked when its token is revoked answers
// 401 token_revoked at once, not after its timeout, and hands out nothing
// committed after the revocation; a poll on another token waits on and
// gets the event.
func TestRevokeWaitingPoll(t *testing.T) {
	env := authEnv(t, api.Config{APIKeys: []string{"server-key-0123456789-0123456789ab"}, Metrics: api.NewMetrics()})
	v, _ := api.NewTokenVerifier(authSecret, nil)
	tok := mint(t, "alice", time.Hour, "private-*")
	claims, err := v.Verify(tok)
	if err != nil {
		t.Fatal(err)
	}
	tokBob := mint(t, "bob", time.Hour, "private-*")
	path := fmt.Sprintf("/v1/poll?channel=private-w&cursor=%s&timeout=20", env.Feed.Position())
	type answer struct {
		status int
		code   string
		took   time.Duration
	}
	poll := func(token string) <-chan answer {
		out := make(chan answer, 1)
		go func() {
			start := time.Now()
			req, _ := http.NewRequest(http.MethodGet, env.URL+path, nil)
			req.Header.Set("Authorization", "Bearer "+token)
			resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
			if err != nil {
				out <- answer{code: err.Error()}
				return
			}
			defer resp.Body.Close()
			var body struct {
				Error  struct{ Code string }
				Events []json.RawMessage
			}
			_ = json.NewDecoder(resp.Body).Decode(&body)
			code := body.Error.Code
			if resp.StatusCode == 200 {
				code = fmt.Sprintf("%d events", len(body.Events))
			}
			out <- answer{resp.StatusCode, code, time.Since(start)}
		}()
		return out
	}
	alice, bob := poll(tok), poll(tokBob)
	waitMetric(t, env.URL, "herald_polls_waiting", 2)

	if st := postRevocation(t, env.URL, `{"jti":"`+claims.ID+`"}`); st != 201 {
		t.Fatalf("revoke: %d", st)
	}
	select {
	case a := <-alice:
		if a.status != 401 || a.code != "token_revoked" {
			t.Fatalf("the revoked token's waiting poll answered %d %q, want 401 token_revoked", a.status, a.code)
		}
		t.Logf("the waiting poll answered %v after it was sent (timeout 20 s)", a.took.Round(time.Millisecond))
	case <-time.After(10 * time.Second):
		t.Fatal("the revoked token's waiting poll was still waiting 10 s after the revocation")
	}
	env.Insert(t, "private-w", "after.revoke", `{}`)
	if b := <-bob; b.status != 200 || b.code != "1 events" {
		t.Fatalf("bob's poll answered %d %q, want the one event", b.status, b.code)
	}
}
