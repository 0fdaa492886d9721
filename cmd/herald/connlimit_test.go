package main

import (
	"bufio"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
)

// TestOverCapResponse: the answer to a connection over --max-conns is a
// well-formed HTTP response whose status is its code's in the core's error
// table (503 unavailable), with a retry hint and the usual error body.
func TestOverCapResponse(t *testing.T) {
	resp, err := http.ReadResponse(bufio.NewReader(strings.NewReader(overCapResponse)), nil)
	if err != nil {
		t.Fatalf("parse: %v\n%s", err, overCapResponse)
	}
	defer resp.Body.Close()
	var body struct {
		Error struct{ Code, Message string }
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatalf("body: %v", err)
	}
	if resp.StatusCode != http.StatusServiceUnavailable || body.Error.Code != "unavailable" || body.Error.Message == "" {
		t.Errorf("over the cap: %d %+v, want 503 unavailable with a message", resp.StatusCode, body.Error)
	}
	if resp.Header.Get("Retry-After") != "5" || !resp.Close {
		t.Errorf("over the cap: Retry-After %q, close %v; want 5 and a closed connection", resp.Header.Get("Retry-After"), resp.Close)
	}
}
