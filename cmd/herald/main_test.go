package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/herald-dev/herald/store/pgtest"
)

func TestMain(m *testing.M) {
	if os.Getenv(asHerald) != "" { // a child started by startProc
		main()
		os.Exit(0)
	}
	pgtest.Main(m)
}

// lines is an io.Writer for run's stdout or stderr that tests can wait on:
// every complete line is kept and announced, so a test waits for "herald
// listening on ..." without sleeping.
type lines struct {
	mu      sync.Mutex
	partial []byte
	all     []string
	changed chan struct{} // closed and replaced on every new line
}

func newLines() *lines { return &lines{changed: make(chan struct{})} }

func (l *lines) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.partial = append(l.partial, p...)
	for {
		i := bytes.IndexByte(l.partial, '\n')
		if i < 0 {
			break
		}
		l.all = append(l.all, string(l.partial[:i]))
		l.partial = l.partial[i+1:]
		close(l.changed)
		l.changed = make(chan struct{})
	}
	return len(p), nil
}

// String is everything written so far.
func (l *lines) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.all, "\n") + "\n" + string(l.partial)
}

// wait returns the lines from index from on that satisfy match, once there
// are n of them, or fails t at the deadline (or when stop is closed first:
// the command ended).
func (l *lines) wait(t *testing.T, from, n int, match func(string) bool, timeout time.Duration, stop <-chan struct{}) []string {
	t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		l.mu.Lock()
		var got []string
		for _, s := range l.all[min(from, len(l.all)):] {
			if match(s) {
				got = append(got, s)
			}
		}
		changed := l.changed
		l.mu.Unlock()
		if len(got) >= n {
			return got[:n]
		}
		select {
		case <-changed:
		case <-stop:
			t.Fatalf("command ended before %d matching lines; output so far:\n%s", n, l.String())
		case <-deadline.C:
			t.Fatalf("no %d matching lines after %v; output so far:\n%s", n, timeout, l.String())
		}
	}
}

// count is the number of complete lines so far.
func (l *lines) count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.all)
}

// env is a getenv over a fixed map: the tests never read the real
// environment, so a developer's DATABASE_URL cannot leak in.
func env(kv ...string) func(string) string {
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return func(k string) string { return m[k] }
}

// running is one `run` call in a goroutine.
type running struct {
	stdout, stderr *lines
	done           chan struct{}
	err            error
	cancel         context.CancelFunc
}

// start calls run(ctx, args, getenv, ...) in a goroutine. t's cleanup
// cancels it and waits for it.
func start(t *testing.T, args []string, getenv func(string) string) *running {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{stdout: newLines(), stderr: newLines(), done: make(chan struct{}), cancel: cancel}
	go func() {
		defer close(r.done)
		r.err = run(ctx, args, getenv, r.stdout, r.stderr)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-r.done:
		case <-time.After(60 * time.Second):
			t.Errorf("herald %v did not return within 60s of cancel", args)
		}
	})
	return r
}

// stop cancels the command and returns run's result, failing t if it takes
// longer than within.
func (r *running) stop(t *testing.T, within time.Duration) error {
	t.Helper()
	r.cancel()
	select {
	case <-r.done:
		return r.err
	case <-time.After(within):
		t.Fatalf("run did not return within %v of cancel; stderr:\n%s", within, r.stderr.String())
		return nil
	}
}

// serveURL waits for serve's "herald listening on http://ADDR" line.
func (r *running) serveURL(t *testing.T, timeout time.Duration) string {
	t.Helper()
	const prefix = "herald listening on "
	l := r.stdout.wait(t, 0, 1, func(s string) bool { return strings.HasPrefix(s, prefix) }, timeout, r.done)
	return strings.TrimPrefix(l[0], prefix)
}

// waitReady polls base/readyz until 200, failing t at the deadline.
func waitReady(t *testing.T, base string, timeout time.Duration) map[string]any {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var last string
	for {
		resp, err := http.Get(base + "/readyz")
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				var body map[string]any
				if err := json.Unmarshal(b, &body); err != nil {
					t.Fatalf("readyz body %s: %v", b, err)
				}
				return body
			}
			last = resp.Status + " " + string(b)
		} else {
			last = err.Error()
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s/readyz not 200 after %v: %s", base, timeout, last)
		}
		time.Sleep(20 * time.Millisecond) // polling interval, not a readiness guess
	}
}

// pollResult is the long-poll answer.
type pollResult struct {
	Events []struct {
		ID      string          `json:"id"`
		Channel string          `json:"channel"`
		Type    string          `json:"type"`
		Data    json.RawMessage `json:"data"`
	} `json:"events"`
	Cursor string `json:"cursor"`
}

// poll GETs base/v1/poll?query and decodes a 200 answer.
func poll(t *testing.T, base, query string) pollResult {
	t.Helper()
	resp, err := http.Get(base + "/v1/poll?" + query)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("poll %s: %s %s", query, resp.Status, b)
	}
	var p pollResult
	if err := json.Unmarshal(b, &p); err != nil {
		t.Fatalf("poll body %s: %v", b, err)
	}
	return p
}

// tempDir is a fresh directory the postgres OS user can reach when the
// tests run as root (t.TempDir's parent is 0700), removed when t ends.
func tempDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "herald-cmd-test-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}
