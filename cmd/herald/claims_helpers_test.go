package main

// Helpers for the end-to-end tests of the README's claims (limits, tokens,
// retention, errors): a herald serve in-process on a fresh database, raw
// HTTP requests and the error body.

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// serveOn runs `herald serve` on dbURL with the extra environment kv
// (name, value, ...) and returns its base URL once /readyz says 200.
func serveOn(t *testing.T, dbURL string, kv ...string) (string, *running) {
	t.Helper()
	getenv := env(append([]string{
		"DATABASE_URL", dbURL,
		"HERALD_DATA_DIR", filepath.Join(tempDir(t), "unused"),
		"HERALD_LOG_LEVEL", "warn",
	}, kv...)...)
	srv := start(t, []string{"serve", "--listen", "127.0.0.1:0"}, getenv)
	base := srv.serveURL(t, 60*time.Second)
	waitReady(t, base, 30*time.Second)
	return base, srv
}

// answer is one HTTP answer, read whole.
type answer struct {
	status int
	header http.Header
	body   []byte
}

// apiError is the error body of the README's error table, with the cursor
// of a 410.
type apiError struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
	Cursor *string `json:"cursor"`
}

// do sends one request and reads the whole answer; headers are name,
// value pairs.
func do(t *testing.T, method, url, body string, headers ...string) answer {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, r)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read body: %v", method, url, err)
	}
	return answer{status: resp.StatusCode, header: resp.Header, body: b}
}

// errorOf decodes a's error body, failing t unless it is the README's
// {"error":{"code","message"}} with a JSON content type.
func (a answer) errorOf(t *testing.T) apiError {
	t.Helper()
	var e apiError
	if !strings.HasPrefix(a.header.Get("Content-Type"), "application/json") {
		t.Fatalf("error answer %d has Content-Type %q, want JSON: %s", a.status, a.header.Get("Content-Type"), a.body)
	}
	if err := json.Unmarshal(a.body, &e); err != nil || e.Error.Code == "" || e.Error.Message == "" {
		t.Fatalf("error answer %d is not {error:{code,message}}: %s (%v)", a.status, a.body, err)
	}
	return e
}

// wantError fails t unless a is status with the error code.
func (a answer) wantError(t *testing.T, what string, status int, code string) apiError {
	t.Helper()
	if a.status != status {
		t.Fatalf("%s: %d %.300s, want %d %s", what, a.status, a.body, status, code)
	}
	e := a.errorOf(t)
	if e.Error.Code != code {
		t.Fatalf("%s: code %q (%.300s), want %q", what, e.Error.Code, a.body, code)
	}
	return e
}

// openSSE opens a stream and returns the response whatever its status;
// the body stays open until ctx ends or the caller closes it.
func openSSE(t *testing.T, ctx context.Context, url string, headers ...string) *http.Response {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

// answerOf reads a response opened with openSSE whole, unless it is an
// open stream (200), whose body would not end.
func answerOf(t *testing.T, r *http.Response) answer {
	t.Helper()
	if r.StatusCode == http.StatusOK {
		return answer{status: r.StatusCode, header: r.Header, body: []byte("(an open stream)")}
	}
	b, err := io.ReadAll(r.Body)
	if err != nil {
		t.Fatalf("read body: %v", err)
	}
	return answer{status: r.StatusCode, header: r.Header, body: b}
}
