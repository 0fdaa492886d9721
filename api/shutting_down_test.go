package api_test

import (
	"bufio"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/herald-dev/herald/api/apitest"
)

// TestShuttingDown503: once the server drains (SIGTERM), an open stream
// gets its retry hint and ends, and a stream or poll that arrives before
// the listener closes is told 503 shutting_down with Retry-After, the
// README's answer, so the client goes to another replica instead of
// getting a stream that ends at once.
func TestShuttingDown503(t *testing.T) {
	e := apitest.Start(t, apitest.Options{})
	client := &http.Client{Timeout: 30 * time.Second}
	resp, err := client.Get(e.URL + "/v1/stream?channel=sd")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("stream before drain: %s", resp.Status)
	}
	e.Server.Drain()
	b, err := io.ReadAll(bufio.NewReader(resp.Body))
	if err != nil {
		t.Fatalf("open stream at drain: %v", err)
	}
	if !strings.Contains(string(b), "retry:") {
		t.Fatalf("open stream at drain ended without a retry hint: %q", b)
	}
	for _, path := range []string{"/v1/stream?channel=sd", "/v1/poll?channel=sd&cursor=0&timeout=5", "/v1/poll?channel=sd"} {
		r, err := client.Get(e.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(r.Body)
		r.Body.Close()
		var eb struct {
			Error struct{ Code, Message string } `json:"error"`
		}
		if r.StatusCode != http.StatusServiceUnavailable || json.Unmarshal(body, &eb) != nil || eb.Error.Code != "shutting_down" {
			t.Fatalf("%s while draining: %d %s, want 503 shutting_down", path, r.StatusCode, body)
		}
		if r.Header.Get("Retry-After") == "" {
			t.Fatalf("%s: 503 shutting_down without Retry-After", path)
		}
	}
}
