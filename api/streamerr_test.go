package api_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/herald-dev/herald/api"
	"github.com/herald-dev/herald/api/apitest"
)

// getStream GETs base+path with the Accept header (none when empty) and
// returns the status, the Content-Type and the whole body: the answers
// checked here all end.
func getStream(t *testing.T, base, path, accept string) (int, string, string, http.Header) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+path, nil)
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: reading the body: %v", path, err)
	}
	return resp.StatusCode, resp.Header.Get("Content-Type"), string(b), resp.Header
}

// checkUnavailable checks an in-band answer: 200 text/event-stream whose
// whole body is "retry: <ms>", then one "unavailable" event carrying the
// status, the error code and Retry-After, and no id: (so the client's
// Last-Event-ID stays what it was).
func checkUnavailable(t *testing.T, status int, ct, body string, hdr http.Header, wantStatus int, wantCode string, wantRetry time.Duration) {
	t.Helper()
	if status != 200 || !strings.HasPrefix(ct, "text/event-stream") {
		t.Fatalf("got %d %q %q, want 200 text/event-stream (any other status is fatal to EventSource)", status, ct, body)
	}
	prefix := "retry: " + itoa(wantRetry.Milliseconds()) + "\n\nevent: " + api.UnavailableEvent + "\ndata: "
	if !strings.HasPrefix(body, prefix) || !strings.HasSuffix(body, "\n\n") || strings.Count(body, "\n") != 5 {
		t.Fatalf("body %q, want %q + one JSON line + blank line", body, prefix)
	}
	if strings.Contains(body, "\nid:") {
		t.Fatalf("body %q carries an id: it would move the client's Last-Event-ID", body)
	}
	var d struct {
		Status int `json:"status"`
		Error  struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
		RetryAfter int `json:"retryAfter"`
	}
	if err := json.Unmarshal([]byte(strings.TrimSuffix(strings.TrimPrefix(body, prefix), "\n\n")), &d); err != nil {
		t.Fatalf("event data: %v in %q", err, body)
	}
	if d.Status != wantStatus || d.Error.Code != wantCode || d.Error.Message == "" || d.RetryAfter != int(wantRetry/time.Second) {
		t.Fatalf("event data %+v, want status %d code %s retryAfter %v", d, wantStatus, wantCode, wantRetry)
	}
	if ra := hdr.Get("Retry-After"); ra != itoa(int64(wantRetry/time.Second)) {
		t.Fatalf("Retry-After %q, want %v", ra, wantRetry)
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// TestStreamPassingErrorsInBand: a stream request from an event-stream
// client (Accept: text/event-stream, as every EventSource sends) that hits
// a passing condition gets a 200 stream with retry: and an "unavailable"
// event instead of 429/503, which would close an EventSource for good; a
// client that does not ask for text/event-stream gets the JSON status as
// before, and permanent errors stay permanent for everyone.
func TestStreamPassingErrorsInBand(t *testing.T) {
	t.Run("429 at the connection limit", func(t *testing.T) {
		env := apitest.Start(t, apitest.Options{API: api.Config{MaxConnsPerIP: 1, Heartbeat: time.Hour}})
		// Hold the one allowed connection open.
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, env.URL+"/v1/stream?channel=a", nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("first stream: %v %v", resp, err)
		}
		defer resp.Body.Close()

		st, ct, body, hdr := getStream(t, env.URL, "/v1/stream?channel=a", "text/event-stream")
		checkUnavailable(t, st, ct, body, hdr, 429, "too_many_connections", 5*time.Second)
		st, ct, body, hdr = getStream(t, env.URL, "/v1/stream?channel=a", "application/json, text/event-stream;q=0.5")
		checkUnavailable(t, st, ct, body, hdr, 429, "too_many_connections", 5*time.Second)
		for _, accept := range []string{"", "*/*", "application/json", "text/event-stream;q=0"} {
			if st, ct, body, _ := getStream(t, env.URL, "/v1/stream?channel=a", accept); st != 429 || !strings.Contains(body, `"too_many_connections"`) {
				t.Fatalf("Accept %q: got %d %q %q, want the 429 JSON error", accept, st, ct, body)
			}
		}
		// Permanent errors keep their status, even for EventSource.
		if st, _, body, _ := getStream(t, env.URL, "/v1/stream?channel=private-a", "text/event-stream"); st != 401 && st != 403 {
			t.Fatalf("private channel without a token: %d %q, want 401/403", st, body)
		}
		if st, _, body, _ := getStream(t, env.URL, "/v1/stream?chanel=a", "text/event-stream"); st != 400 {
			t.Fatalf("misspelt parameter: %d %q, want 400", st, body)
		}
		// The limit frees up: the next request streams.
		cancel()
		resp.Body.Close()
		deadline := time.Now().Add(10 * time.Second)
		for {
			st, ct, _ := openStatus(t, env.URL+"/v1/stream?channel=a")
			if st == 200 && ct == "text/event-stream" {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("stream still refused 10 s after the first one closed: %d %s", st, ct)
			}
			time.Sleep(20 * time.Millisecond) // polling interval
		}
	})

	t.Run("503 auth app down", func(t *testing.T) {
		app := &fakeApp{answer: func(w http.ResponseWriter, r *http.Request) {}}
		env, srv := appEnv(t, app, time.Minute, time.Second)
		srv.Close()
		st, ct, body, hdr := getStream(t, env.URL, "/v1/stream?channel=private-a", "text/event-stream")
		checkUnavailable(t, st, ct, body, hdr, 503, "auth_unavailable", 2*time.Second)
		if st, _, body, _ := getStream(t, env.URL, "/v1/stream?channel=private-a", ""); st != 503 || !strings.Contains(body, `"auth_unavailable"`) {
			t.Fatalf("without Accept: %d %q, want the 503 JSON error", st, body)
		}
	})
}

// openStatus opens a stream, reads its status and type, and closes it.
func openStatus(t *testing.T, url string) (int, string, error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	req.Header.Set("Accept", "text/event-stream")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, "", err
	}
	resp.Body.Close()
	return resp.StatusCode, resp.Header.Get("Content-Type"), nil
}
