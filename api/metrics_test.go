package api_test

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/herald-dev/herald/api"
	"github.com/herald-dev/herald/api/apitest"
)

// scrape returns /metrics as name{labels} → value.
func scrape(t *testing.T, base string) map[string]float64 {
	t.Helper()
	out, err := apitest.Metrics(base)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestMetricsAfterTraffic drives a stream, a waiting poll, a replay, a
// reset and an auth failure, then checks each family says so.
func TestMetricsAfterTraffic(t *testing.T) {
	v, _ := api.NewTokenVerifier(authSecret, nil)
	env := apitest.Start(t, apitest.Options{API: api.Config{Metrics: api.NewMetrics(), Authorizer: &api.ChannelAuth{Tokens: v}}})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	// One live stream and one long-poll that will be answered by a notice.
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, env.URL+"/v1/stream?channel=a", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	br := bufio.NewReader(resp.Body)
	pollDone := make(chan error, 1)
	go func() {
		r, err := http.Get(env.URL + "/v1/poll?channel=a&cursor=0&timeout=20")
		if err == nil {
			io.Copy(io.Discard, r.Body)
			r.Body.Close()
		}
		pollDone <- err
	}()
	waitMetric(t, env.URL, "herald_polls_waiting", 1)
	waitMetric(t, env.URL, `herald_connections{transport="sse"}`, 1)
	env.Insert(t, "a", "message", `{"n":1}`)
	for line := ""; !strings.HasPrefix(line, "data:"); {
		if line, err = br.ReadString('\n'); err != nil {
			t.Fatal(err)
		}
	}
	if err := <-pollDone; err != nil {
		t.Fatal(err)
	}
	// A replay (cursor 0 → ring), a reset (cursor ahead), an auth failure.
	for _, q := range []string{"channel=a&cursor=0", "channel=a&cursor=999", "channel=private-x"} {
		r, err := http.Get(env.URL + "/v1/poll?" + q)
		if err != nil {
			t.Fatal(err)
		}
		r.Body.Close()
	}
	// Idle again, the leader sleeps until an INSERT notifies it.
	waitMetric(t, env.URL, "herald_sequencer_asleep", 1)
	m := scrape(t, env.URL)
	for name, check := range map[string]func(float64) bool{
		`herald_notices_delivered_total{transport="sse"}`:           eq(1),
		`herald_notices_delivered_total{transport="poll"}`:          func(v float64) bool { return v >= 2 },
		`herald_delivery_latency_seconds_count{transport="sse"}`:    eq(1),
		`herald_resets_total{transport="poll"}`:                     eq(1),
		`herald_replays_total{source="ring"}`:                       func(v float64) bool { return v >= 1 },
		`herald_auth_failures_total{code="token_required"}`:         eq(1),
		`herald_sequencer_leader`:                                   eq(1),
		`herald_sequencer_events_total`:                             eq(1),
		`herald_sequencer_batches_total`:                            eq(1),
		`herald_sequencer_mode_changes_total{mode="asleep"}`:        func(v float64) bool { return v >= 1 },
		`herald_log_head`:                                           eq(1),
		`herald_feed_reconnects_total`:                              eq(0),
		`herald_feed_lag_seconds_count`:                             eq(1),
		`herald_fanout_deliveries_total`:                            eq(2),
		`herald_polls_waiting`:                                      eq(0),
		`herald_connections{transport="sse"}`:                       eq(1),
		`herald_connections{transport="poll"}`:                      eq(0),
		`herald_http_requests_total{route="/v1/poll",status="200"}`: func(v float64) bool { return v >= 2 },
		`herald_http_requests_total{route="/v1/poll",status="401"}`: eq(1),
		`herald_http_requests_total{route="/v1/poll",status="410"}`: eq(1),
		`herald_evictions_total`:                                    eq(0),
		`go_goroutines`:                                             func(v float64) bool { return v > 0 },
	} {
		v, ok := m[name]
		if !ok {
			t.Errorf("metric %s missing", name)
			continue
		}
		if !check(v) {
			t.Errorf("metric %s = %v", name, v)
		}
	}
	for name := range m {
		if strings.Contains(name, `"a"`) || strings.Contains(name, "private-x") {
			t.Errorf("a channel name leaked into labels: %s", name)
		}
	}
}

func eq(want float64) func(float64) bool { return func(v float64) bool { return v == want } }

func waitMetric(t *testing.T, base, name string, want float64) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for scrape(t, base)[name] != want {
		if time.Now().After(deadline) {
			t.Fatalf("%s never reached %v", name, want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
