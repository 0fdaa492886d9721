package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/herald-dev/herald"
	"github.com/herald-dev/herald/api"
	"github.com/herald-dev/herald/api/apitest"
	"github.com/herald-dev/herald/api/openapitest"
)

// exchange sends req and returns the answer with its body buffered.
func exchange(t *testing.T, req *http.Request) *http.Response {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatalf("%s %s: read body: %v", req.Method, req.URL, err)
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))
	return resp
}

func newReq(t *testing.T, method, url, body string, header ...string) *http.Request {
	t.Helper()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, url, r)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	return req
}

// readStream opens an SSE request and reads until done(frames) holds (or
// 30 s pass), then hangs up; the response's body is the complete frames
// read so far.
func readStream(t *testing.T, req *http.Request, done func(frames []any) bool) *http.Response {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	resp, err := http.DefaultClient.Do(req.WithContext(ctx))
	if err != nil {
		t.Fatalf("stream %s: %v", req.URL, err)
	}
	defer resp.Body.Close()
	var buf bytes.Buffer
	chunk := make([]byte, 4096)
	for !done(openapitest.ParseSSE(buf.Bytes())) {
		n, err := resp.Body.Read(chunk)
		buf.Write(chunk[:n])
		if err != nil && !done(openapitest.ParseSSE(buf.Bytes())) { // the last frames may come with EOF
			t.Fatalf("stream %s ended (%v) before the frames the test waits for; got:\n%.3000s", req.URL, err, buf.String())
		}
	}
	b := buf.Bytes()
	b = b[:bytes.LastIndex(b, []byte("\n\n"))+2]
	resp.Body = io.NopCloser(bytes.NewReader(b))
	return resp
}

// has reports whether frames hold n frames for which match holds.
func has(frames []any, n int, match func(f map[string]any) bool) bool {
	for _, f := range frames {
		if match(f.(map[string]any)) {
			n--
		}
	}
	return n <= 0
}

func isNotice(f map[string]any) bool {
	d, _ := f["data"].(map[string]any)
	_, ok := d["channel"]
	return ok
}
func isPing(f map[string]any) bool  { return f["comment"] == "ping" }
func isReset(f map[string]any) bool { return f["event"] == "reset" }

// untilFree polls url until it is no longer answered 429: the server
// frees a connection slot only once it has noticed the client hang up.
func untilFree(t *testing.T, url string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp := exchange(t, newReq(t, "GET", url, ""))
		if resp.StatusCode != http.StatusTooManyRequests {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET %s: still 429 after 30 s", url)
		}
		time.Sleep(20 * time.Millisecond) // polling a condition, not waiting for readiness blindly
	}
}

// TestOpenAPIResponses runs herald and checks every endpoint's real
// answers, successes and each documented error status, against
// api/openapi.json: the document cannot drift from the handlers.
func TestOpenAPIResponses(t *testing.T) {
	v := openapitest.Load(t)
	secret := []byte("openapi-test-secret-of-at-least-32-bytes")
	tokens, err := api.NewTokenVerifier(secret, nil)
	if err != nil {
		t.Fatal(err)
	}
	// The app's auth URL: 401 for private-app401, no answer in time for
	// private-slow, 403 for everything else.
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body struct{ Channels []string }
		_ = json.NewDecoder(r.Body).Decode(&body)
		switch {
		case slices.Contains(body.Channels, "private-app401"):
			w.WriteHeader(http.StatusUnauthorized)
		case slices.Contains(body.Channels, "private-slow"):
			select {
			case <-r.Context().Done():
			case <-time.After(10 * time.Second):
			}
		default:
			w.WriteHeader(http.StatusForbidden)
		}
	}))
	t.Cleanup(app.Close)
	a := apitest.Start(t, apitest.Options{API: api.Config{
		Heartbeat: 50 * time.Millisecond, MaxChannels: 3, APIKeys: []string{"key1", "key2:builds"}, CORSOrigins: []string{"https://ok.example"},
		Metrics:    api.NewMetrics(),
		Authorizer: &api.ChannelAuth{Tokens: tokens, App: &api.AuthURL{URL: app.URL, Timeout: 300 * time.Millisecond}},
	}})
	// b: no auth URL, no API keys, one anonymous connection per address.
	b := apitest.Start(t, apitest.Options{API: api.Config{Heartbeat: 50 * time.Millisecond, MaxConnsPerIP: 1, Authorizer: &api.ChannelAuth{Tokens: tokens}}})

	a.Insert(t, "builds", "build.status", `{"build":1,"state":"STARTED"}`)
	a.Insert(t, "builds", "build.status", `{"build":1,"state":"PASSED"}`)
	a.Insert(t, "other", "message", `{"n":1}`)
	a.WaitHead(t, 3, 30*time.Second)

	ok := func(req *http.Request, want int) *http.Response {
		t.Helper()
		v.Request(t, req)
		resp := exchange(t, req)
		if resp.StatusCode != want {
			body, _ := io.ReadAll(resp.Body)
			t.Fatalf("%s %s: %d %s, want %d", req.Method, req.URL.RequestURI(), resp.StatusCode, body, want)
		}
		v.Response(t, req, resp)
		return resp
	}
	t.Run("success", func(t *testing.T) {
		ok(newReq(t, "GET", a.URL+"/v1/poll?channel=builds", ""), 200)
		ok(newReq(t, "GET", a.URL+"/v1/poll?channel=builds&channel=other&cursor=0&timeout=1&_=1", ""), 200)
		ok(newReq(t, "GET", a.URL+"/v1/poll?channels=builds,other&cursor=3&timeout=1", ""), 200) // empty at timeout
		ok(newReq(t, "GET", a.URL+"/v1/channels/builds/events?after=0&limit=1", ""), 200)
		ok(newReq(t, "GET", a.URL+"/v1/channels/builds/events", ""), 200)
		tok, err := api.MintToken(secret, "u1", []string{"private-*"}, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		ok(newReq(t, "GET", a.URL+"/v1/poll?channel=private-x&token="+tok, ""), 200)
		ok(newReq(t, "GET", a.URL+"/v1/channels/private-x/events", "", "Authorization", "Bearer "+tok), 200)
		ok(newReq(t, "POST", a.URL+"/v1/events", `{"channel":"builds","type":"build.status","data":{"build":2}}`, "Authorization", "Bearer key1", "Content-Type", "application/json"), 201)
		ok(newReq(t, "POST", a.URL+"/v1/events", `[{"channel":"builds"},{"channel":"other","data":{"n":2}}]`, "Authorization", "Bearer key1", "Content-Type", "application/json"), 201)
		ok(newReq(t, "POST", a.URL+"/v1/events", `{"events":[{"channel":"builds","type":"x"}]}`, "Authorization", "Bearer key1", "Content-Type", "application/json"), 201)
		ok(newReq(t, "GET", a.URL+"/healthz", ""), 200)
		ok(newReq(t, "GET", a.URL+"/readyz", ""), 200)
		ok(newReq(t, "GET", a.URL+"/metrics", ""), 200)
		ok(newReq(t, "POST", a.URL+"/v1/revocations", `{"sub":"nobody","ttl":"1h"}`, "Authorization", "Bearer key1", "Content-Type", "application/json"), 201)
		resp := ok(newReq(t, "GET", a.URL+"/v1/openapi.json", ""), 200)
		if body, _ := io.ReadAll(resp.Body); !bytes.Equal(body, api.OpenAPI) {
			t.Error("GET /v1/openapi.json is not the embedded document")
		}
		ok(newReq(t, "OPTIONS", a.URL+"/v1/stream", "", "Origin", "https://ok.example", "Access-Control-Request-Method", "GET"), 204)
	})

	t.Run("stream", func(t *testing.T) {
		// Typed events, replayed from cursor 0, then heartbeats.
		req := newReq(t, "GET", a.URL+"/v1/stream?channel=builds&channel=other", "", "Last-Event-ID", "0")
		v.Request(t, req)
		resp := readStream(t, req, func(f []any) bool { return has(f, 3, isNotice) && has(f, 1, isPing) })
		if resp.StatusCode != 200 {
			t.Fatalf("stream: %d", resp.StatusCode)
		}
		v.Response(t, req, resp)
		// ?events=message on a quiet channel while another moves: a
		// heartbeat carrying id.
		req = newReq(t, "GET", a.URL+"/v1/stream?channels=quiet&events=message&lastEventId=0", "")
		v.Request(t, req)
		go a.Insert(t, "loud", "message", `{}`)
		resp = readStream(t, req, func(f []any) bool {
			return has(f, 1, func(f map[string]any) bool { return isPing(f) && f["id"] != nil })
		})
		v.Response(t, req, resp)
		// Untyped notices.
		req = newReq(t, "GET", a.URL+"/v1/stream?channel=builds&events=message&lastEventId=0", "")
		resp = readStream(t, req, func(f []any) bool { return has(f, 2, isNotice) })
		v.Response(t, req, resp)
	})

	t.Run("reset", func(t *testing.T) {
		// A cursor ahead of the log (a restored database) resets the
		// stream and the poll; retention that dropped everything up to
		// seq 3 (as the sequencer's would) resets history after 0.
		b.Insert(t, "builds", "message", `{}`)
		b.Insert(t, "builds", "message", `{}`)
		b.Insert(t, "builds", "message", `{}`)
		b.WaitHead(t, 3, 30*time.Second)
		if _, err := b.Pool.Exec(context.Background(), `UPDATE herald.sequencer_state SET floor_seq = 3`); err != nil {
			t.Fatal(err)
		}
		req := newReq(t, "GET", b.URL+"/v1/stream?channel=builds", "", "Last-Event-ID", "999999")
		resp := readStream(t, req, func(f []any) bool { return has(f, 1, isReset) && has(f, 1, isPing) })
		v.Response(t, req, resp)
		untilFree(t, b.URL+"/v1/poll?channel=builds&timeout=1")
		errorCase(t, v, newReq(t, "GET", b.URL+"/v1/poll?channel=builds&cursor=999999", ""), 410, "reset")
		errorCase(t, v, newReq(t, "GET", b.URL+"/v1/channels/builds/events?after=0", ""), 410, "reset")
	})

	t.Run("errors", func(t *testing.T) {
		expired := signedToken(t, secret, jwt.MapClaims{"sub": "u1", "exp": time.Now().Add(-time.Minute).Unix(), "channels": []string{"private-x"}})
		long := strings.Repeat("x", api.MaxQueryBytes+1)
		pub := func(body string, header ...string) *http.Request {
			return newReq(t, "POST", a.URL+"/v1/events", body, append([]string{"Authorization", "Bearer key1", "Content-Type", "application/json"}, header...)...)
		}
		tooMany := "[" + strings.TrimSuffix(strings.Repeat(`{"channel":"a"},`, api.MaxPublishBatch+1), ",") + "]"
		for _, c := range []struct {
			req    *http.Request
			status int
			code   string
		}{
			{newReq(t, "GET", a.URL+"/v1/poll", ""), 400, "no_channels"},
			{newReq(t, "GET", a.URL+"/v1/stream?channel=bad!", ""), 400, "invalid_channel"},
			{newReq(t, "GET", a.URL+"/v1/channels/bad!/events", ""), 400, "invalid_channel"},
			{newReq(t, "GET", a.URL+"/v1/poll?chanel=builds", ""), 400, "unknown_parameter"},
			{newReq(t, "GET", a.URL+"/v1/stream?channel=%zz", ""), 400, "invalid_query"},
			{newReq(t, "GET", a.URL+"/v1/poll?channels=a,b,c,d", ""), 400, "too_many_channels"},
			{newReq(t, "GET", a.URL+"/v1/stream?channel=builds", "", "Last-Event-ID", "x"), 400, "invalid_cursor"},
			{newReq(t, "GET", a.URL+"/v1/poll?channel=builds&cursor=-1", ""), 400, "invalid_cursor"},
			{newReq(t, "GET", a.URL+"/v1/channels/builds/events?after=x.y", ""), 400, "invalid_cursor"},
			{newReq(t, "GET", a.URL+"/v1/poll?channel=builds&timeout=0", ""), 400, "invalid_timeout"},
			{newReq(t, "GET", a.URL+"/v1/channels/builds/events?limit=0", ""), 400, "invalid_limit"},
			{pub(`{"channel":`), 400, "invalid_body"},
			{pub(`{"channel":"a","data":[1]}`), 400, "invalid_data"},
			{pub(`{"channel":"a","type":"no spaces"}`), 400, "invalid_type"},
			{pub(`{"channel":"a b"}`), 400, "invalid_channel"},
			{newReq(t, "GET", a.URL+"/v1/poll?channel=private-x&token=garbage", ""), 401, "invalid_token"},
			{newReq(t, "GET", a.URL+"/v1/stream?channel=private-x", "", "Authorization", "Bearer "+expired), 401, "token_expired"},
			{newReq(t, "GET", a.URL+"/v1/channels/private-app401/events", ""), 401, "unauthenticated"},
			{newReq(t, "GET", b.URL+"/v1/poll?channel=private-x", ""), 401, "token_required"},
			{pub(`{"channel":"a"}`, "Authorization", ""), 401, "api_key_required"},
			{pub(`{"channel":"a"}`, "Authorization", "Bearer nope"), 401, "invalid_api_key"},
			{newReq(t, "GET", a.URL+"/v1/poll?channel=private-x", ""), 403, "forbidden"},
			{newReq(t, "GET", a.URL+"/v1/stream?channel=private-x", ""), 403, "forbidden"},
			{newReq(t, "GET", a.URL+"/v1/channels/private-x/events", ""), 403, "forbidden"},
			{newReq(t, "OPTIONS", a.URL+"/v1/poll", "", "Origin", "https://evil.example", "Access-Control-Request-Method", "GET"), 403, "origin_not_allowed"},
			{newReq(t, "POST", b.URL+"/v1/events", `{"channel":"a"}`, "Content-Type", "application/json"), 404, "publish_disabled"},
			{pub(`{"channel":"a","data":{"x":"` + strings.Repeat("y", 9000) + `"}}`), 413, "payload_too_large"},
			{pub(`{"channel":"a","data":{"x":"` + strings.Repeat("y", 3<<20) + `"}}`), 413, "payload_too_large"},
			{pub(tooMany), 413, "too_many_events"},
			{pub(`{"channel":"a"}`, "Content-Type", "text/plain"), 415, "unsupported_media_type"},
			{pub(`{"channel":"a","chanel":"b"}`), 400, "unknown_field"},
			{pub(`{"channel":"a","channel":"b"}`), 400, "duplicate_field"},
			{pub(`{"channel":"other"}`, "Authorization", "Bearer key2"), 403, "channel_not_allowed"},
			{newReq(t, "POST", a.URL+"/v1/revocations", `{"sub":"u"}`, "Authorization", "Bearer key2"), 403, "key_scope"},
			{newReq(t, "POST", a.URL+"/v1/revocations", `{"jti":"a","sub":"b"}`, "Authorization", "Bearer key1"), 400, "invalid_body"},
			{newReq(t, "POST", a.URL+"/v1/revocations", `{"sub":"u","ttl":"forever"}`, "Authorization", "Bearer key1"), 400, "invalid_ttl"},
			{newReq(t, "POST", a.URL+"/v1/revocations", `{"sub":"u"}`), 401, "api_key_required"},
			{newReq(t, "POST", b.URL+"/v1/revocations", `{"sub":"u"}`), 404, "revocations_disabled"},
			{newReq(t, "POST", a.URL+"/v1/revocations", `{"sub":"u"}`, "Authorization", "Bearer key1", "Content-Type", "text/plain"), 415, "unsupported_media_type"},
			{newReq(t, "GET", a.URL+"/v1/poll?channel=private-slow", ""), 503, "auth_unavailable"},
			{newReq(t, "GET", a.URL+"/v1/stream?channel=private-slow", ""), 503, "auth_unavailable"},
			{newReq(t, "GET", a.URL+"/v1/channels/private-slow/events", ""), 503, "auth_unavailable"},
		} {
			errorCase(t, v, c.req, c.status, c.code)
		}
		// 414 on every endpoint: the query limit applies before routing.
		for _, p := range []string{"/v1/stream", "/v1/poll", "/v1/channels/builds/events", "/v1/openapi.json", "/metrics", "/healthz", "/readyz"} {
			errorCase(t, v, newReq(t, "GET", a.URL+p+"?channel="+long, ""), 414, "query_too_long")
		}
		errorCase(t, v, newReq(t, "POST", a.URL+"/v1/events?"+long, `{}`), 414, "query_too_long")
		// Not on any path, so checked against the Error schema's codes:
		// unknown paths and methods.
		for _, c := range []struct {
			req  *http.Request
			code string
		}{{newReq(t, "GET", a.URL+"/v1/nope", ""), "not_found"}, {newReq(t, "DELETE", a.URL+"/v1/poll", ""), "method_not_allowed"}} {
			resp := exchange(t, c.req)
			if got := errorCode(t, resp); got != c.code {
				t.Errorf("%s %s: code %q, want %q", c.req.Method, c.req.URL.Path, got, c.code)
			}
		}
	})

	t.Run("limits", func(t *testing.T) {
		// b allows one anonymous connection per address: hold a stream.
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, "GET", b.URL+"/v1/stream?channel=builds", nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("first stream: %v %v", resp, err)
		}
		defer resp.Body.Close()
		errorCase(t, v, newReq(t, "GET", b.URL+"/v1/poll?channel=builds", ""), 429, "too_many_connections")
		errorCase(t, v, newReq(t, "GET", b.URL+"/v1/stream?channel=builds", ""), 429, "too_many_connections")
		// An EventSource-style request gets the 429 in band: 200, retry:,
		// event: unavailable, end.
		req = newReq(t, "GET", b.URL+"/v1/stream?channel=builds", "", "Accept", "text/event-stream")
		v.Request(t, req)
		un := exchange(t, req)
		body, _ := io.ReadAll(un.Body)
		un.Body = io.NopCloser(bytes.NewReader(body))
		frames := openapitest.ParseSSE(body)
		if un.StatusCode != 200 || !has(frames, 1, func(f map[string]any) bool { return f["event"] == api.UnavailableEvent }) {
			t.Fatalf("in-band 429: %d %q, want 200 with an unavailable event", un.StatusCode, body)
		}
		v.Response(t, req, un)
	})

	t.Run("revoked", func(t *testing.T) {
		// A stream whose token is revoked over HTTP ends with event: revoked.
		tok, err := api.MintTokenWith(secret, "u-revoked", []string{"private-*"}, time.Hour, api.MintOptions{})
		if err != nil {
			t.Fatal(err)
		}
		claims := jwt.MapClaims{}
		if _, _, err := jwt.NewParser().ParseUnverified(tok, claims); err != nil || claims["jti"] == nil {
			t.Fatalf("minted token has no jti: %v %v", claims, err)
		}
		req := newReq(t, "GET", a.URL+"/v1/stream?channel=private-r", "", "Authorization", "Bearer "+tok)
		v.Request(t, req)
		revoke := newReq(t, "POST", a.URL+"/v1/revocations", `{"jti":"`+claims["jti"].(string)+`"}`, "Authorization", "Bearer key1", "Content-Type", "application/json")
		revoked := false
		resp := readStream(t, req, func(f []any) bool {
			if !revoked && len(f) > 0 { // the stream is open: revoke its token
				revoked = true
				if r := exchange(t, revoke); r.StatusCode != 201 {
					t.Fatalf("POST /v1/revocations: %d", r.StatusCode)
				}
			}
			return has(f, 1, func(f map[string]any) bool { return f["event"] == "revoked" })
		})
		v.Response(t, req, resp)
	})

	t.Run("database down", func(t *testing.T) {
		b.DB.Close()
		errorCase(t, v, newReq(t, "GET", b.URL+"/v1/channels/builds/events?after=3", ""), 503, "unavailable")
		req := newReq(t, "GET", b.URL+"/readyz", "")
		resp := exchange(t, req)
		if resp.StatusCode != 503 {
			t.Errorf("readyz with the database closed: %d", resp.StatusCode)
		}
		v.Response(t, req, resp)
	})
}

// errorCase sends req, wants status and code, and validates the answer.
func errorCase(t *testing.T, v *openapitest.Validator, req *http.Request, status int, code string) {
	t.Helper()
	resp := exchange(t, req)
	if resp.StatusCode != status {
		body, _ := io.ReadAll(resp.Body)
		t.Errorf("%s %s: %d %.200s, want %d %s", req.Method, req.URL.Path, resp.StatusCode, body, status, code)
		return
	}
	if got := errorCode(t, resp); got != code {
		t.Errorf("%s %s: code %q, want %q", req.Method, req.URL.Path, got, code)
	}
	v.Response(t, req, resp)
}

func errorCode(t *testing.T, resp *http.Response) string {
	t.Helper()
	body, _ := io.ReadAll(resp.Body)
	resp.Body = io.NopCloser(bytes.NewReader(body))
	var e struct{ Error struct{ Code string } }
	if err := json.Unmarshal(body, &e); err != nil {
		t.Errorf("error body %q: %v", body, err)
	}
	return e.Error.Code
}

func signedToken(t *testing.T, secret []byte, claims jwt.MapClaims) string {
	t.Helper()
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString(secret)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestOpenAPIErrorCodes: every error code the api package can answer with
// is in the core's code table (so it has its status, not a 500) and in the
// document's ErrorCode enum, and the enum names no code the table does not
// have. The core's own codes (reset, unavailable, ...) come from the table.
func TestOpenAPIErrorCodes(t *testing.T) {
	var doc struct {
		Components struct {
			Schemas map[string]struct{ Enum []string }
		}
	}
	if err := json.Unmarshal(api.OpenAPI, &doc); err != nil {
		t.Fatal(err)
	}
	enum := doc.Components.Schemas["ErrorCode"].Enum
	files, _ := filepath.Glob("*.go")
	re := regexp.MustCompile(`(?:Code: +|badRequest\()"([a-z_]+)"`)
	inSource := map[string]bool{}
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range re.FindAllStringSubmatch(string(src), -1) {
			inSource[m[1]] = true
		}
	}
	// Built from a field name ("invalid_" + field) in the error table.
	for _, field := range []string{"channel", "type", "data", "jti", "sub"} {
		inSource["invalid_"+field] = true
	}
	delete(inSource, "invalid_") // the prefix of those, not a code
	if len(inSource) < 25 {
		t.Fatalf("found only %d codes in the api sources; the pattern is broken", len(inSource))
	}
	table := herald.Codes()
	for c := range inSource {
		if !slices.Contains(table, c) {
			t.Errorf("error code %q is answered by the api but missing from the core's table (it would answer 500)", c)
		}
	}
	for _, c := range table {
		if c == "client_closed" { // the client has gone: never sent
			continue
		}
		if !slices.Contains(enum, c) {
			t.Errorf("error code %q is in the core's table but missing from api/openapi.json's ErrorCode", c)
		}
	}
	for _, c := range enum {
		if !slices.Contains(table, c) {
			t.Errorf("api/openapi.json's ErrorCode lists %q, which the core's table does not have", c)
		}
	}
}

// TestOpenAPIDetectsDrift shows the validation has teeth: real answers
// from herald fail against documents changed the way drift would change
// them (a cursor's type, an error code, an SSE frame, a status), and a
// real answer with a field the document does not know fails too.
func TestOpenAPIDetectsDrift(t *testing.T) {
	e := apitest.Start(t, apitest.Options{API: api.Config{Heartbeat: 50 * time.Millisecond}})
	e.Insert(t, "d", "message", `{}`)
	e.WaitHead(t, 1, 30*time.Second)
	mutate := func(change func(doc map[string]any)) *openapitest.Validator {
		var doc map[string]any
		if err := json.Unmarshal(api.OpenAPI, &doc); err != nil {
			t.Fatal(err)
		}
		change(doc)
		b, _ := json.Marshal(doc)
		return openapitest.LoadBytes(t, b)
	}
	obj := func(m any, keys ...string) map[string]any {
		for _, k := range keys {
			m = m.(map[string]any)[k]
		}
		return m.(map[string]any)
	}
	schemas := func(doc map[string]any) map[string]any { return obj(doc, "components", "schemas") }
	stream := func() (*http.Request, *http.Response) {
		req := newReq(t, "GET", e.URL+"/v1/stream?channel=d&lastEventId=0", "")
		return req, readStream(t, req, func(f []any) bool { return has(f, 1, isNotice) && has(f, 1, isPing) })
	}
	for _, c := range []struct {
		name   string
		change func(doc map[string]any)
		send   func() (*http.Request, *http.Response)
	}{
		{"cursor as a number", func(doc map[string]any) {
			obj(schemas(doc), "Page", "properties")["cursor"] = map[string]any{"type": "integer"}
		},
			func() (*http.Request, *http.Response) {
				req := newReq(t, "GET", e.URL+"/v1/poll?channel=d", "")
				return req, exchange(t, req)
			}},
		{"error code dropped", func(doc map[string]any) {
			s := obj(schemas(doc), "ErrorCode")
			s["enum"] = slices.DeleteFunc(s["enum"].([]any), func(v any) bool { return v == "no_channels" })
		}, func() (*http.Request, *http.Response) {
			req := newReq(t, "GET", e.URL+"/v1/poll", "")
			return req, exchange(t, req)
		}},
		{"status undocumented", func(doc map[string]any) { delete(obj(doc, "paths", "/v1/poll", "get", "responses"), "400") },
			func() (*http.Request, *http.Response) {
				req := newReq(t, "GET", e.URL+"/v1/poll?channel=bad!", "")
				return req, exchange(t, req)
			}},
		{"heartbeat frame dropped", func(doc map[string]any) {
			s := obj(schemas(doc), "SseFrame")
			s["oneOf"] = slices.DeleteFunc(s["oneOf"].([]any), func(v any) bool { return strings.HasSuffix(v.(map[string]any)["$ref"].(string), "/HeartbeatFrame") })
		}, stream},
		{"notice field dropped", func(doc map[string]any) { delete(obj(schemas(doc), "Notice", "properties"), "at") }, stream},
	} {
		v := mutate(c.change)
		req, resp := c.send()
		if errs := v.ResponseErrors(req, resp); len(errs) == 0 {
			t.Errorf("%s: %s %s -> %d passed against the changed document", c.name, req.Method, req.URL.RequestURI(), resp.StatusCode)
		}
	}
	// A field herald does not send today.
	v := openapitest.Load(t)
	req := newReq(t, "GET", e.URL+"/v1/poll?channel=d", "")
	resp := exchange(t, req)
	body, _ := io.ReadAll(resp.Body)
	resp.Body = io.NopCloser(bytes.NewReader(bytes.Replace(body, []byte(`"cursor"`), []byte(`"epoch":"x","cursor"`), 1)))
	if errs := v.ResponseErrors(req, resp); len(errs) == 0 {
		t.Error("a poll answer with an undocumented field passed")
	}
}
