package api_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/herald-dev/herald/api/apitest"
	"github.com/herald-dev/herald/store/pgtest"
)

// TestReadOnlyDatabase: the database stops taking writes (read-only, as a
// full disk or a failover to a replica would leave it). Writers get
// Postgres's own error; herald keeps serving history and polls, and
// /readyz says the sequencer is failing; when writes return, so does the
// log, with nothing lost.
func TestReadOnlyDatabase(t *testing.T) {
	env := apitest.Start(t, apitest.Options{})
	for i := 0; i < 3; i++ {
		env.Insert(t, "a", "message", `{}`)
	}
	env.WaitHead(t, 3, 10*time.Second)
	ctx := context.Background()
	admin, err := pgx.Connect(ctx, pgtest.AdminURL(t))
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(ctx)
	u, _ := url.Parse(env.DBURL)
	name := pgx.Identifier{strings.TrimPrefix(u.Path, "/")}.Sanitize()
	setReadOnly := func(on bool) {
		t.Helper()
		v := "off"
		if on {
			v = "on"
		}
		if _, err := admin.Exec(ctx, `ALTER DATABASE `+name+` SET default_transaction_read_only = `+v); err != nil {
			t.Fatal(err)
		}
		// Sessions pick it up when they start: end herald's and the pool's.
		if _, err := admin.Exec(ctx, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()`,
			strings.TrimPrefix(u.Path, "/")); err != nil {
			t.Fatal(err)
		}
	}
	setReadOnly(true)
	t.Cleanup(func() {
		admin.Exec(context.Background(), `ALTER DATABASE `+name+` RESET default_transaction_read_only`)
	})

	// Writers get Postgres's error (once past connections it terminated:
	// such a connection fails with 57P01, or, if the socket is already
	// gone, with a write error).
	for range 10 {
		_, err = env.Pool.Exec(ctx, `INSERT INTO herald.events (channel, data) VALUES ('a', '{"during":1}')`)
		if err == nil || !(strings.Contains(err.Error(), "57P01") || strings.Contains(err.Error(), "write failed")) {
			break
		}
	}
	if err == nil || !strings.Contains(err.Error(), "read-only") {
		t.Fatalf("insert into a read-only database: %v, want Postgres's read-only error", err)
	}
	// /readyz says the sequencer is failing, and still serves.
	deadline := time.Now().Add(30 * time.Second)
	var body struct {
		Ready    bool              `json:"ready"`
		Degraded bool              `json:"degraded"`
		Checks   map[string]string `json:"checks"`
	}
	for {
		resp, err := http.Get(env.URL + "/readyz")
		if err != nil {
			t.Fatal(err)
		}
		json.NewDecoder(resp.Body).Decode(&body)
		resp.Body.Close()
		if body.Degraded && strings.Contains(body.Checks["sequencer"], "read-only") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/readyz never reported the failing sequencer: %+v", body)
		}
		time.Sleep(50 * time.Millisecond)
	}
	// History and polls still answer from what is stored.
	for _, path := range []string{"/v1/channels/a/events?after=0", "/v1/poll?channel=a&cursor=0"} {
		resp, err := http.Get(env.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		var page struct{ Events []json.RawMessage }
		json.NewDecoder(resp.Body).Decode(&page)
		resp.Body.Close()
		if resp.StatusCode != 200 || len(page.Events) != 3 {
			t.Fatalf("%s with a read-only database: %d, %d events, want 200 and 3", path, resp.StatusCode, len(page.Events))
		}
	}
	// Writes come back; so does the log.
	setReadOnly(false)
	deadline = time.Now().Add(30 * time.Second)
	for {
		if _, err = env.Pool.Exec(ctx, `INSERT INTO herald.events (channel, data) VALUES ('a', '{"after":1}')`); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("insert after read-only ended: %v", err)
		}
		time.Sleep(50 * time.Millisecond) // the pool's connections were just terminated
	}
	env.WaitHead(t, 4, 30*time.Second)
	// Readiness recovers too (connections the terminations left dead in
	// the pools are replaced as they are found, so allow it a moment).
	deadline = time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(env.URL + "/readyz")
		if err != nil {
			t.Fatal(err)
		}
		body.Degraded, body.Checks = false, nil
		json.NewDecoder(resp.Body).Decode(&body)
		resp.Body.Close()
		if resp.StatusCode == 200 && !body.Degraded && body.Checks["sequencer"] == "leader" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("30 s after recovery /readyz %d %+v, want ready with the leader check ok", resp.StatusCode, body)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
