package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/herald-dev/herald"
	"github.com/herald-dev/herald/store/pgtest"
)

// runOnce runs one short command (publish, migrate) to completion.
func runOnce(t *testing.T, args []string, getenv func(string) string) (stdout, stderr string, err error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var out, errOut bytes.Buffer
	err = run(ctx, args, getenv, &out, &errOut)
	return out.String(), errOut.String(), err
}

// startServe runs `herald serve` on a fresh pgtest database and waits until
// /readyz says 200. It returns the base URL, the getenv it used and the
// running command.
func startServe(t *testing.T) (string, func(string) string, *running) {
	t.Helper()
	getenv := env(
		"DATABASE_URL", pgtest.URL(t),
		// Must never be used: DATABASE_URL wins.
		"HERALD_DATA_DIR", filepath.Join(tempDir(t), "unused"),
		"HERALD_LOG_LEVEL", "warn",
	)
	srv := start(t, []string{"serve", "--listen", "127.0.0.1:0"}, getenv)
	base := srv.serveURL(t, 60*time.Second)
	ready := waitReady(t, base, 30*time.Second)
	checks, _ := ready["checks"].(map[string]any)
	for _, k := range []string{"database", "migrations", "listen"} {
		if checks[k] != "ok" {
			t.Errorf("readyz check %s = %v, want ok (%v)", k, checks[k], ready)
		}
	}
	t.Cleanup(func() {
		if _, err := os.Stat(getenv("HERALD_DATA_DIR")); err == nil {
			t.Errorf("serve with DATABASE_URL set created the data dir %s", getenv("HERALD_DATA_DIR"))
		}
	})
	return base, getenv, srv
}

// TestServeEndToEnd: serve on a real database; an app's INSERT and
// `herald publish` both reach /v1/poll; /herald.js is served; cancelling
// ends open streams and run returns nil promptly.
func TestServeEndToEnd(t *testing.T) {
	t.Parallel()
	base, getenv, srv := startServe(t)

	head := poll(t, base, "channel=builds").Cursor
	if c, err := herald.ParseCursor(head); err != nil || c.Epoch == "" || c.Seq != 0 {
		t.Fatalf("fresh database head %q, want \"<epoch>.0\"", head)
	}

	// An app writes with SQL, inside its own transaction.
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, getenv("DATABASE_URL"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, `INSERT INTO herald.events (channel, type, data) VALUES ('builds', 'build.status', '{"id": 0}')`); err != nil {
		t.Fatal(err)
	}
	p := poll(t, base, "channel=builds&timeout=20&cursor="+head)
	if len(p.Events) != 1 || p.Events[0].Type != "build.status" || string(p.Events[0].Data) != `{"id":0}` || p.Cursor != p.Events[0].ID {
		t.Fatalf("poll after INSERT: %+v", p)
	}

	out, _, err := runOnce(t, []string{"publish", "builds", "build.status", `{"id":1}`}, getenv)
	if err != nil {
		t.Fatalf("publish: %v", err)
	}
	if !strings.HasPrefix(out, "published to builds (inbox id ") {
		t.Errorf("publish printed %q", out)
	}
	p2 := poll(t, base, "channel=builds&timeout=20&cursor="+p.Cursor)
	if len(p2.Events) != 1 || string(p2.Events[0].Data) != `{"id":1}` || p2.Events[0].Channel != "builds" {
		t.Fatalf("poll after publish: %+v", p2)
	}

	resp, err := http.Get(base + "/herald.js")
	if err != nil {
		t.Fatal(err)
	}
	js, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	if resp.StatusCode != 200 || mt != "text/javascript" || !bytes.Contains(js, []byte("export function subscribe(")) {
		t.Errorf("/herald.js: %s %q, %d bytes", resp.Status, resp.Header.Get("Content-Type"), len(js))
	}

	// A stream open at shutdown is told when to come back and ended;
	// it does not hold the shutdown up.
	stream, err := http.Get(base + "/v1/stream?channel=builds")
	if err != nil {
		t.Fatal(err)
	}
	defer stream.Body.Close()
	sr := bufio.NewReader(stream.Body)
	if first, err := sr.ReadString('\n'); err != nil || !strings.HasPrefix(first, "retry: ") {
		t.Fatalf("stream's first line %q, %v", first, err)
	}
	began := time.Now()
	if err := srv.stop(t, 15*time.Second); err != nil {
		t.Fatalf("serve returned %v after cancel, want nil", err)
	}
	t.Logf("serve stopped %v after cancel", time.Since(began).Round(time.Millisecond))
	rest, err := io.ReadAll(sr)
	if err != nil {
		t.Errorf("stream ended with %v, want a clean end", err)
	}
	if !strings.Contains(string(rest), "retry: ") {
		t.Errorf("stream's last words %q, want a retry: hint", rest)
	}
	if _, err := http.Get(base + "/healthz"); err == nil {
		t.Error("server still answers after run returned")
	}
}

// TestTail: `herald tail` prints each notice as one JSON line and returns
// nil on cancel; a bad channel is a prompt, clear error, not a retry loop.
func TestTail(t *testing.T) {
	t.Parallel()
	base, getenv, _ := startServe(t)
	tailEnv := func(k string) string {
		if k == "HERALD_URL" {
			return base
		}
		return getenv(k)
	}
	tl := start(t, []string{"tail", "builds", "deploys"}, tailEnv)
	// Live from now: publish only once it is connected.
	tl.stderr.wait(t, 0, 1, func(s string) bool { return s == "herald tail: connected" }, 20*time.Second, tl.done)
	for _, a := range [][]string{
		{"publish", "builds", "build.status", `{"id":1}`},
		{"publish", "other", `{"id":2}`},
		{"publish", "deploys", `{"id":3}`},
	} {
		if _, _, err := runOnce(t, a, getenv); err != nil {
			t.Fatalf("%v: %v", a, err)
		}
	}
	got := tl.stdout.wait(t, 0, 2, func(string) bool { return true }, 20*time.Second, tl.done)
	var evs []herald.Event
	for _, l := range got {
		var ev herald.Event
		if err := json.Unmarshal([]byte(l), &ev); err != nil {
			t.Fatalf("tail line %q: %v", l, err)
		}
		evs = append(evs, ev)
	}
	if evs[0].Channel != "builds" || evs[0].Type != "build.status" || string(evs[0].Data) != `{"id":1}` ||
		evs[1].Channel != "deploys" || evs[1].Type != "message" || string(evs[1].Data) != `{"id":3}` ||
		evs[1].Seq <= evs[0].Seq {
		t.Errorf("tail printed %q", got)
	}
	if err := tl.stop(t, 10*time.Second); err != nil {
		t.Errorf("tail returned %v after cancel, want nil", err)
	}
	if n := tl.stdout.count(); n != 2 {
		t.Errorf("tail printed %d lines, want 2 (the other channel's event leaked?):\n%s", n, tl.stdout.String())
	}

	// A channel the server rejects: tail gives up at once with the
	// server's reason.
	began := time.Now()
	_, _, err := runOnce(t, []string{"tail", "--url", base, "no spaces"}, getenv)
	if err == nil || !strings.Contains(err.Error(), "invalid_channel") || exitCode(err) != 1 {
		t.Errorf("tail of a bad channel: %v (exit %d)", err, exitCode(err))
	}
	// At once, not after retries: a tail that retried would run until
	// runOnce's context ends. 30 s is far above "at once" even on a loaded
	// machine and proves only that it did not retry.
	if d := time.Since(began); d > 30*time.Second {
		t.Errorf("tail of a bad channel took %v", d)
	}
}

// TestServePortInUse: the most common mistake fails fast, names the
// address, and costs no database start.
func TestServePortInUse(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	addr := ln.Addr().String()
	dataDir := filepath.Join(tempDir(t), "data")
	began := time.Now()
	_, _, err = runOnce(t, []string{"serve", "--listen", addr}, env("HERALD_DATA_DIR", dataDir))
	if err == nil {
		t.Fatal("serve on a port in use returned nil")
	}
	// Fails rather than waits: 30 s is far above the expected
	// milliseconds even on a loaded machine; that no database was started
	// is checked below.
	if d := time.Since(began); d > 30*time.Second {
		t.Errorf("took %v to fail", d)
	}
	if !strings.Contains(err.Error(), addr) || !strings.Contains(err.Error(), "address already in use") {
		t.Errorf("error %q does not name the address and the cause", err)
	}
	if exitCode(err) != 1 {
		t.Errorf("exit code %d, want 1", exitCode(err))
	}
	if _, err := os.Stat(dataDir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("data dir %s exists (%v): a database was started", dataDir, err)
	}
}
