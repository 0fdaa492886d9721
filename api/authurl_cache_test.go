package api_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"github.com/herald-dev/herald/api"
	"github.com/herald-dev/herald/api/apitest"
)

// TestAuthURLCacheKeyUnambiguous: the app grants the one channel named
// "private-team-1,private-team-3" and nothing else. That yes must not be
// reused for the two channels private-team-1 and private-team-3: herald
// asks the app about them, and the app refuses.
func TestAuthURLCacheKeyUnambiguous(t *testing.T) {
	const joined = "private-team-1,private-team-3"
	app := &fakeApp{answer: func(w http.ResponseWriter, r *http.Request) {}}
	app.answer = func(w http.ResponseWriter, r *http.Request) {
		app.mu.Lock()
		body := app.bodies[len(app.bodies)-1]
		app.mu.Unlock()
		chs, _ := body["channels"].([]any)
		if len(chs) == 1 && chs[0] == joined {
			return // 200: granted
		}
		w.WriteHeader(http.StatusForbidden)
	}
	env, _ := appEnv(t, app, time.Minute, time.Second)
	if st, code := status(t, env.URL, "/v1/poll?channel=private-team-1%2Cprivate-team-3", withCookie("s=1")); st != 200 {
		t.Fatalf("the granted channel %q: %d %s", joined, st, code)
	}
	st, code := status(t, env.URL, "/v1/poll?channel=private-team-1&channel=private-team-3", withCookie("s=1"))
	if st != 403 || code != "forbidden" {
		t.Fatalf("channels private-team-1 and private-team-3: %d %q, want 403 forbidden (the app's yes for %q reused)", st, code, joined)
	}
	if n := app.calls.Load(); n != 2 {
		t.Fatalf("app called %d times, want 2: it must be asked about the two channels", n)
	}
	// Per channel: a channel already decided is not asked about again.
	status(t, env.URL, "/v1/poll?channel=private-team-1%2Cprivate-team-3&channel=private-team-1", withCookie("s=1"))
	if n := app.calls.Load(); n != 2 {
		t.Fatalf("app called %d times, want still 2: both channels' decisions are cached", n)
	}
}

// TestAuthURLCacheLRU: a full cache evicts its least recently used
// decision, not everything. Users 0..size-1 fill it; user 0 is used again;
// one more user evicts user 1 only.
func TestAuthURLCacheLRU(t *testing.T) {
	const size = 20
	app := &fakeApp{answer: func(w http.ResponseWriter, r *http.Request) {}}
	srv := httptest.NewServer(app)
	t.Cleanup(srv.Close)
	auth := &api.ChannelAuth{App: &api.AuthURL{URL: srv.URL, TTL: time.Hour, Timeout: time.Second, CacheSize: size}}
	env := apitest.Start(t, apitest.Options{API: api.Config{Authorizer: auth}})
	ask := func(user int) {
		t.Helper()
		if st, code := status(t, env.URL, "/v1/poll?channel=private-a", withCookie(fmt.Sprintf("u=%d", user))); st != 200 {
			t.Fatalf("user %d: %d %s", user, st, code)
		}
	}
	for u := 0; u < size; u++ {
		ask(u)
	}
	ask(0) // hit: user 0 is now the most recently used
	if n := app.calls.Load(); n != size {
		t.Fatalf("app called %d times for %d users, want %d", n, size, size)
	}
	ask(size) // the cache is full: evicts one entry (user 1's)
	ask(0)
	for u := 2; u < size; u++ {
		ask(u)
	}
	if n := app.calls.Load(); n != size+1 {
		t.Fatalf("app called %d times, want %d: a full cache must evict one decision, not all", n, size+1)
	}
	ask(1)
	if n := app.calls.Load(); n != size+2 {
		t.Fatalf("app called %d times, want %d: user 1 was the least recently used and evicted", n, size+2)
	}
}

// TestAuthURLMissRateLimit: cache misses (calls to the app) are limited
// per client address with a 429 and Retry-After; cached answers and other
// addresses are not affected.
func TestAuthURLMissRateLimit(t *testing.T) {
	app := &fakeApp{answer: func(w http.ResponseWriter, r *http.Request) {}}
	srv := httptest.NewServer(app)
	t.Cleanup(srv.Close)
	auth := &api.ChannelAuth{App: &api.AuthURL{URL: srv.URL, TTL: time.Hour, Timeout: time.Second, MissRate: 0.1, MissBurst: 3}}
	env := apitest.Start(t, apitest.Options{API: api.Config{Authorizer: auth, TrustedProxies: []string{"127.0.0.1"}}})
	from := func(ip, cookie string) func(*http.Request) {
		return func(r *http.Request) {
			r.Header.Set("X-Forwarded-For", ip)
			r.Header.Set("Cookie", cookie)
		}
	}
	for i := 0; i < 3; i++ {
		if st, code := status(t, env.URL, "/v1/poll?channel=private-a", from("203.0.113.7", "u="+strconv.Itoa(i))); st != 200 {
			t.Fatalf("miss %d within the burst: %d %s", i, st, code)
		}
	}
	req, _ := http.NewRequest(http.MethodGet, env.URL+"/v1/poll?channel=private-a", nil)
	from("203.0.113.7", "u=99")(req)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var body struct {
		Error struct{ Code string } `json:"error"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&body)
	resp.Body.Close()
	ra, _ := strconv.Atoi(resp.Header.Get("Retry-After"))
	if resp.StatusCode != 429 || body.Error.Code != "auth_rate_limited" || ra < 1 {
		t.Fatalf("fourth miss: %d %q Retry-After %q, want 429 auth_rate_limited with Retry-After >= 1", resp.StatusCode, body.Error.Code, resp.Header.Get("Retry-After"))
	}
	if n := app.calls.Load(); n != 3 {
		t.Fatalf("app called %d times, want 3 (the refused miss must not reach it)", n)
	}
	if st, _ := status(t, env.URL, "/v1/poll?channel=private-a", from("203.0.113.7", "u=0")); st != 200 {
		t.Fatalf("a cached answer from the limited address: %d, want 200", st)
	}
	if st, _ := status(t, env.URL, "/v1/poll?channel=private-a", from("198.51.100.1", "u=50")); st != 200 {
		t.Fatalf("another address: %d, want 200", st)
	}
}
