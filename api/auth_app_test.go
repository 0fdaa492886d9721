package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/herald-dev/herald/api"
	"github.com/herald-dev/herald/api/apitest"
)

// fakeApp is the app's auth endpoint: it grants what answer says and
// records what herald sent.
type fakeApp struct {
	calls   atomic.Int64
	mu      sync.Mutex
	cookies []string
	bodies  []map[string]any
	answer  func(w http.ResponseWriter, r *http.Request)
}

func (f *fakeApp) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.calls.Add(1)
	var body map[string]any
	_ = json.NewDecoder(r.Body).Decode(&body)
	f.mu.Lock()
	f.cookies = append(f.cookies, r.Header.Get("Cookie"))
	f.bodies = append(f.bodies, body)
	f.mu.Unlock()
	f.answer(w, r)
}

func appEnv(t *testing.T, app http.Handler, ttl, timeout time.Duration) (*apitest.Env, *httptest.Server) {
	t.Helper()
	srv := httptest.NewServer(app)
	t.Cleanup(srv.Close)
	auth := &api.ChannelAuth{App: &api.AuthURL{URL: srv.URL, TTL: ttl, Timeout: timeout}}
	return apitest.Start(t, apitest.Options{API: api.Config{Authorizer: auth}}), srv
}

func withCookie(v string) func(*http.Request) {
	return func(r *http.Request) { r.Header.Set("Cookie", v) }
}

func TestAuthURL(t *testing.T) {
	const ch = "private-project-9876"
	cases := []struct {
		name   string
		answer func(w http.ResponseWriter, r *http.Request)
		status int
		code   string
	}{
		{"200 grants", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(200) }, 200, ""},
		{"200 with the channel listed", func(w http.ResponseWriter, r *http.Request) {
			w.Write([]byte(`{"channels":["private-project-9876"],"subject":"u7"}`))
		}, 200, ""},
		{"200 listing other channels only", func(w http.ResponseWriter, r *http.Request) {
			w.Write([]byte(`{"channels":["private-project-1"]}`))
		}, 403, "forbidden"},
		{"403", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(403) }, 403, "forbidden"},
		{"401", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(401) }, 401, "unauthenticated"},
		{"500", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(500) }, 503, "auth_unavailable"},
		{"timeout", func(w http.ResponseWriter, r *http.Request) {
			select {
			case <-r.Context().Done():
			case <-time.After(time.Minute): // far past the auth timeout below
			}
		}, 503, "auth_unavailable"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			app := &fakeApp{answer: c.answer}
			// The auth call's timeout: generous, so the quick answers
			// of a loaded machine are not taken for a timeout.
			env, _ := appEnv(t, app, time.Minute, 3*time.Second)
			for _, tr := range transports {
				st, code := status(t, env.URL, tr.path(ch), withCookie("session="+tr.name))
				if st != c.status || code != c.code {
					t.Fatalf("%s: got %d %q, want %d %q", tr.name, st, code, c.status, c.code)
				}
			}
			app.mu.Lock()
			defer app.mu.Unlock()
			if len(app.cookies) == 0 || app.cookies[0] != "session=stream" {
				t.Fatalf("app saw cookies %q, want the user's cookie forwarded", app.cookies)
			}
			if chs, _ := app.bodies[0]["channels"].([]any); len(chs) != 1 || chs[0] != ch {
				t.Fatalf("app was asked about %v", app.bodies[0]["channels"])
			}
		})
	}
}

func TestAuthURLDown(t *testing.T) {
	app := &fakeApp{answer: func(w http.ResponseWriter, r *http.Request) {}}
	env, srv := appEnv(t, app, time.Minute, time.Second)
	srv.Close()
	st, code := status(t, env.URL, "/v1/poll?channel=private-a", nil)
	if st != 503 || code != "auth_unavailable" {
		t.Fatalf("got %d %q, want 503 auth_unavailable", st, code)
	}
}

// TestAuthURLCache: the same user asking again within the TTL costs no
// call; another user's cookie does.
func TestAuthURLCache(t *testing.T) {
	app := &fakeApp{answer: func(w http.ResponseWriter, r *http.Request) {
		if strings.Contains(r.Header.Get("Cookie"), "bad") {
			w.WriteHeader(403)
		}
	}}
	env, _ := appEnv(t, app, time.Minute, time.Second)
	path := "/v1/poll?channel=private-a"
	for i := 0; i < 5; i++ {
		if st, code := status(t, env.URL, path, withCookie("s=good")); st != 200 {
			t.Fatalf("good user: %d %s", st, code)
		}
		if st, _ := status(t, env.URL, path, withCookie("s=bad")); st != 403 {
			t.Fatalf("bad user: %d, want 403 (from cache too)", st)
		}
	}
	if n := app.calls.Load(); n != 2 {
		t.Fatalf("app called %d times for 2 users × 5 requests, want 2 (cached)", n)
	}
	// A short TTL expires.
	app2 := &fakeApp{answer: func(w http.ResponseWriter, r *http.Request) {}}
	env2, _ := appEnv(t, app2, 50*time.Millisecond, time.Second)
	status(t, env2.URL, path, withCookie("s=1"))
	deadline := time.Now().Add(5 * time.Second)
	for app2.calls.Load() < 2 && time.Now().Before(deadline) {
		status(t, env2.URL, path, withCookie("s=1"))
	}
	if app2.calls.Load() < 2 {
		t.Fatal("answer still cached after its TTL")
	}
}

func TestCORS(t *testing.T) {
	env := apitest.Start(t, apitest.Options{API: api.Config{CORSOrigins: []string{"https://dash.example"}}})
	do := func(method, origin string) *http.Response {
		req, _ := http.NewRequest(method, env.URL+"/v1/poll?channel=a", nil)
		req.Header.Set("Origin", origin)
		if method == http.MethodOptions {
			req.Header.Set("Access-Control-Request-Method", "GET")
			req.Header.Set("Access-Control-Request-Headers", "authorization")
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	r := do(http.MethodGet, "https://dash.example")
	if r.Header.Get("Access-Control-Allow-Origin") != "https://dash.example" || r.Header.Get("Access-Control-Allow-Credentials") != "true" {
		t.Fatalf("allowed origin: headers %v", r.Header)
	}
	if r := do(http.MethodGet, "https://evil.example"); r.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Fatalf("refused origin got Access-Control-Allow-Origin %q", r.Header.Get("Access-Control-Allow-Origin"))
	}
	if r := do(http.MethodOptions, "https://dash.example"); r.StatusCode != 204 ||
		!strings.Contains(r.Header.Get("Access-Control-Allow-Headers"), "Authorization") {
		t.Fatalf("allowed preflight: %d %v", r.StatusCode, r.Header)
	}
	if r := do(http.MethodOptions, "https://evil.example"); r.StatusCode != 403 {
		t.Fatalf("refused preflight: %d, want 403", r.StatusCode)
	}
	// Nothing configured: nothing allowed.
	env2 := apitest.Start(t, apitest.Options{})
	req, _ := http.NewRequest(http.MethodGet, env2.URL+"/v1/poll?channel=a", nil)
	req.Header.Set("Origin", "https://dash.example")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Fatal("CORS allowed with no origins configured")
	}
}

// TestConnectionLimitAcrossReplicas: two herald processes on one database
// share a subject's connection limit.
func TestConnectionLimitAcrossReplicas(t *testing.T) {
	v, _ := api.NewTokenVerifier(authSecret, nil)
	cfg := api.Config{Authorizer: &api.ChannelAuth{Tokens: v}, MaxConnsPerSubject: 2, Heartbeat: time.Hour}
	a := apitest.Start(t, apitest.Options{API: cfg})
	b := apitest.Start(t, apitest.Options{API: cfg, DBURL: a.DBURL})
	tok := mint(t, "user-1", time.Hour, "private-*")
	open := func(base string) (*http.Response, context.CancelFunc) {
		ctx, cancel := context.WithCancel(context.Background())
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/v1/stream?channel=private-a", nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			cancel()
			t.Fatal(err)
		}
		return resp, cancel
	}
	r1, c1 := open(a.URL)
	defer c1()
	r2, c2 := open(b.URL)
	defer c2()
	if r1.StatusCode != 200 || r2.StatusCode != 200 {
		t.Fatalf("first two connections: %d, %d", r1.StatusCode, r2.StatusCode)
	}
	readSSEStart(t, r1.Body)
	for _, base := range []string{a.URL, b.URL} {
		if st, code := status(t, base, "/v1/poll?channel=private-a", bearerHeader(tok)); st != 429 || code != "too_many_connections" {
			t.Fatalf("third connection: %d %q, want 429 too_many_connections", st, code)
		}
	}
	if st, _ := status(t, a.URL, "/v1/poll?channel=private-a", bearerHeader(mint(t, "user-2", time.Hour, "private-*"))); st != 200 {
		t.Fatalf("another user: %d", st)
	}
	// Closing one frees a slot (the lease is released when the stream ends).
	c1()
	r1.Body.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		st, _ := status(t, b.URL, "/v1/poll?channel=private-a", bearerHeader(tok))
		if st == 200 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("still %d 10 s after closing a connection", st)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestNoSecretsInLogs drives every auth path with logging at debug and
// checks no token, secret or cookie appears in the output.
func TestNoSecretsInLogs(t *testing.T) {
	var buf safeBuffer
	log := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	app := &fakeApp{answer: func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(500) }}
	srv := httptest.NewServer(app)
	defer srv.Close()
	v, _ := api.NewTokenVerifier(authSecret, nil)
	auth := &api.ChannelAuth{Tokens: v, App: &api.AuthURL{URL: srv.URL, Log: log, Timeout: time.Second}}
	env := apitest.Start(t, apitest.Options{API: api.Config{Log: log, Authorizer: auth, APIKeys: []string{"server-key-0123456789-0123456789ab"}}})
	good := mint(t, "u", time.Hour, "private-a")
	secrets := []string{string(authSecret), good, "session=s3cr3t", "server-key-0123456789-0123456789ab", "wrong-key-xyz"}
	status(t, env.URL, "/v1/poll?channel=private-a&token="+good, nil)
	status(t, env.URL, "/v1/poll?channel=private-b", func(r *http.Request) {
		r.Header.Set("Authorization", "Bearer "+good)
		r.Header.Set("Cookie", "session=s3cr3t")
	})
	status(t, env.URL, "/v1/poll?channel=private-a", bearerHeader(good[:len(good)-2]))
	for _, key := range []string{"server-key-0123456789-0123456789ab", "wrong-key-xyz"} {
		req, _ := http.NewRequest(http.MethodPost, env.URL+"/v1/events", strings.NewReader(`{"channel":"a","data":{}}`))
		req.Header.Set("Authorization", "Bearer "+key)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	out := buf.String()
	if !strings.Contains(out, "auth URL") {
		t.Fatalf("expected the auth URL failure to be logged; log was:\n%s", out)
	}
	for _, s := range secrets {
		if strings.Contains(out, s) {
			t.Fatalf("log contains a secret %q:\n%s", s, out)
		}
	}
}

type safeBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *safeBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *safeBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
