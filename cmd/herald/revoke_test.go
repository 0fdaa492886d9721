package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/herald-dev/herald/api"
	"github.com/herald-dev/herald/store/pgtest"
)

// streamSeen is one frame a test stream saw, and when.
type streamSeen struct {
	event string
	data  string
	at    time.Time
}

// openRawStream opens /v1/stream on base with tok and reports each frame.
func openRawStream(t *testing.T, base, channel, tok string) <-chan streamSeen {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/v1/stream?channel="+channel, nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		t.Fatalf("stream on %s: %d %s", base, resp.StatusCode, b)
	}
	out := make(chan streamSeen, 16)
	go func() {
		defer close(out)
		defer resp.Body.Close()
		br := bufio.NewReader(resp.Body)
		var s streamSeen
		for {
			line, err := br.ReadString('\n')
			if err != nil {
				return
			}
			line = strings.TrimRight(line, "\r\n")
			switch {
			case line == "" && s.event != "":
				s.at = time.Now()
				out <- s
				s = streamSeen{}
			case strings.HasPrefix(line, "event: "):
				s.event = line[7:]
			case strings.HasPrefix(line, "data: "):
				s.data = line[6:]
			}
		}
	}()
	return out
}

func pollStatus(t *testing.T, base, channel, tok string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, base+"/v1/poll?channel="+channel, nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct {
		Error struct{ Code string } `json:"error"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&body)
	return resp.StatusCode, body.Error.Code
}

// TestRevokeAcrossReplicas: two herald processes on one database. A token
// revoked with `herald revoke --jti` (the CLI, writing to the database),
// then a user revoked with POST /v1/revocations on one replica: the
// matching streams on both replicas end with a revoked frame within 1 s
// (NOTIFY reaches each replica in milliseconds; 1 s is the promise), the
// tokens are refused on both, and another user's streams go on.
func TestRevokeAcrossReplicas(t *testing.T) {
	if testing.Short() {
		t.Skip("-short")
	}
	const secret = "test-secret-that-is-at-least-32-bytes-long"
	dbURL := pgtest.URL(t)
	env := []string{"DATABASE_URL=" + dbURL, "HERALD_JWT_SECRET=" + secret, "HERALD_API_KEYS=server-key-0123456789-0123456789ab", "HERALD_HEARTBEAT=1h"}
	args := []string{"serve", "--listen", "127.0.0.1:0"}
	a := startProc(t, args, env...)
	b := startProc(t, args, env...)
	replicas := []*proc{a, b}

	mintTok := func(sub string) (string, string) {
		tok, err := api.MintToken([]byte(secret), sub, []string{"private-*"}, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		v, _ := api.NewTokenVerifier([]byte(secret), nil)
		c, err := v.Verify(tok)
		if err != nil {
			t.Fatal(err)
		}
		return tok, c.ID
	}
	tokA, jtiA := mintTok("alice")
	tokA2, _ := mintTok("alice")
	tokB, _ := mintTok("bob")
	type open struct {
		p      *proc
		frames <-chan streamSeen
	}
	var alice1, alice2, bob []open
	for _, p := range replicas {
		alice1 = append(alice1, open{p, openRawStream(t, p.URL, "private-a", tokA)})
		alice2 = append(alice2, open{p, openRawStream(t, p.URL, "private-a", tokA2)})
		bob = append(bob, open{p, openRawStream(t, p.URL, "private-a", tokB)})
	}
	// The streams are registered (their preamble came) before revoking: a
	// token revoked before its stream opened is refused at connect instead.
	waitEnded := func(what string, streams []open, since time.Time) {
		t.Helper()
		for _, s := range streams {
			timeout := time.After(10 * time.Second)
			for done := false; !done; {
				select {
				case f, ok := <-s.frames:
					if !ok {
						t.Fatalf("%s on %s: stream ended without a revoked frame", what, s.p.URL)
					}
					if f.event != "revoked" {
						continue
					}
					if !strings.Contains(f.data, `"code":"token_revoked"`) {
						t.Fatalf("%s on %s: revoked frame %s", what, s.p.URL, f.data)
					}
					took := f.at.Sub(since)
					t.Logf("%s on %s: revoked frame %v after the revocation was sent", what, s.p.URL, took)
					if took > time.Second {
						t.Fatalf("%s on %s: revoked frame after %v, want within 1 s", what, s.p.URL, took)
					}
					done = true
				case <-timeout:
					t.Fatalf("%s on %s: no revoked frame within 10 s", what, s.p.URL)
				}
			}
			if _, ok := <-s.frames; ok {
				t.Fatalf("%s on %s: the stream went on after the revoked frame", what, s.p.URL)
			}
		}
	}

	var out, errOut bytes.Buffer
	getenv := func(k string) string {
		if k == "DATABASE_URL" {
			return dbURL
		}
		return ""
	}
	// Timed from before the revocation is sent: an upper bound.
	sent := time.Now()
	if err := run(context.Background(), []string{"revoke", "--jti", jtiA}, getenv, &out, &errOut); err != nil {
		t.Fatalf("herald revoke: %v\n%s", err, errOut.String())
	}
	if !strings.Contains(out.String(), "revoked jti "+jtiA) {
		t.Fatalf("herald revoke printed %q", out.String())
	}
	waitEnded("alice's revoked token", alice1, sent)
	for _, p := range replicas {
		if st, code := pollStatus(t, p.URL, "private-a", tokA); st != 401 || code != "token_revoked" {
			t.Fatalf("revoked token on %s: %d %q, want 401 token_revoked", p.URL, st, code)
		}
	}

	sent = time.Now()
	req, _ := http.NewRequest(http.MethodPost, a.URL+"/v1/revocations", strings.NewReader(`{"sub":"alice"}`))
	req.Header.Set("Authorization", "Bearer server-key-0123456789-0123456789ab")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 201 {
		t.Fatalf("POST /v1/revocations: %d", resp.StatusCode)
	}
	waitEnded("alice's other token, by sub", alice2, sent)
	for _, p := range replicas {
		if st, code := pollStatus(t, p.URL, "private-a", tokA2); st != 401 || code != "token_revoked" {
			t.Fatalf("token of a revoked sub on %s: %d %q, want 401 token_revoked", p.URL, st, code)
		}
	}

	// Bob's streams on both replicas still deliver.
	pool, err := pgxpool.New(context.Background(), dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	if _, err := pool.Exec(context.Background(), `INSERT INTO herald.events (channel, type, data) VALUES ('private-a', 'still.here', '{}')`); err != nil {
		t.Fatal(err)
	}
	for _, s := range bob {
		timeout := time.After(10 * time.Second)
		for got := false; !got; {
			select {
			case f, ok := <-s.frames:
				if !ok || f.event == "revoked" {
					t.Fatalf("bob's stream on %s ended (%q)", s.p.URL, f.data)
				}
				got = f.event == "still.here"
			case <-timeout:
				t.Fatalf("bob's stream on %s: no notice within 10 s", s.p.URL)
			}
		}
	}
}
