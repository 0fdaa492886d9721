package main

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/herald-dev/herald/api/apitest"
)

// TestPollDefaultsBelowProxyTimeouts: with nothing configured, the longest
// long-poll herald accepts, plus herald.js's 10 s grace, ends before the
// tightest common proxy timeout (30 s: Heroku's router, Google Cloud's load
// balancer; nginx and AWS ALB allow 60 s), so a poll is answered by herald,
// never cut by the proxy at the same instant; a longer timeout is refused
// with a message naming the limit.
func TestPollDefaultsBelowProxyTimeouts(t *testing.T) {
	cfg, _, err := parseServeFlags("serve", nil, env(), io.Discard, nil)
	if err != nil {
		t.Fatal(err)
	}
	const tightestProxy = 30 * time.Second
	if cfg.api.PollTimeout != 20*time.Second || cfg.api.PollMaxTimeout != 25*time.Second {
		t.Fatalf("defaults: poll timeout %v, max %v; want 20s and 25s (README, docs/RECONNECTING.md)", cfg.api.PollTimeout, cfg.api.PollMaxTimeout)
	}
	if cfg.api.PollMaxTimeout > tightestProxy-5*time.Second {
		t.Fatalf("max poll timeout %v leaves less than 5 s below a 30 s proxy", cfg.api.PollMaxTimeout)
	}
	// The api applies the same defaults when the caller leaves them zero.
	e := apitest.Start(t, apitest.Options{})
	resp, err := http.Get(e.URL + "/v1/poll?channel=a&cursor=0&timeout=26")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 400 || !strings.Contains(string(b), "invalid_timeout") || !strings.Contains(string(b), "from 1 to 25") {
		t.Fatalf("timeout=26: %d %s, want 400 invalid_timeout naming 25", resp.StatusCode, b)
	}
}
