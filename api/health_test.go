package api_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/herald-dev/herald/api/apitest"
	"github.com/herald-dev/herald/migrations"
	"github.com/herald-dev/herald/store"
	"github.com/herald-dev/herald/store/pgtest"
)

type readiness struct {
	Ready  bool              `json:"ready"`
	Checks map[string]string `json:"checks"`
}

// getJSON GETs url and decodes its JSON body into v, returning the status.
func getJSON(t *testing.T, url string, v any) int {
	t.Helper()
	resp, err := errClient.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); mt != "application/json" {
		t.Fatalf("%s: Content-Type %q", url, resp.Header.Get("Content-Type"))
	}
	if cc := resp.Header.Get("Cache-Control"); cc != "no-store" {
		t.Errorf("%s: Cache-Control %q, want no-store (a cached probe answer is a wrong one)", url, cc)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v: %s", url, err, b)
	}
	return resp.StatusCode
}

// waitReadyz polls base/readyz until it answers want, failing t at the
// deadline, and returns the last answer.
func waitReadyz(t *testing.T, base string, want int, timeout time.Duration) readiness {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		var r readiness
		status := getJSON(t, base+"/readyz", &r)
		if status == want {
			if r.Ready != (want == http.StatusOK) {
				t.Fatalf("readyz %d with ready=%v: %+v", status, r.Ready, r)
			}
			return r
		}
		if time.Now().After(deadline) {
			t.Fatalf("readyz still %d %+v after %v, want %d", status, r, timeout, want)
		}
		time.Sleep(20 * time.Millisecond) // polling interval
	}
}

func TestHealthz(t *testing.T) {
	env := apitest.Start(t, apitest.Options{})
	var body map[string]string
	if status := getJSON(t, env.URL+"/healthz", &body); status != 200 || body["status"] != "ok" {
		t.Fatalf("healthz %d %v", status, body)
	}
	env.Server.Drain()
	// The process is alive while it drains: only readiness changes.
	if status := getJSON(t, env.URL+"/healthz", &body); status != 200 {
		t.Fatalf("healthz %d while draining, want 200", status)
	}
}

// TestReadyzDrain: ready with every check ok, then 503 as soon as the
// server drains, so a load balancer stops sending new clients.
func TestReadyzDrain(t *testing.T) {
	env := apitest.Start(t, apitest.Options{})
	r := waitReadyz(t, env.URL, http.StatusOK, 10*time.Second)
	for _, k := range []string{"database", "migrations", "listen"} {
		if r.Checks[k] != "ok" {
			t.Errorf("check %s = %q, want ok (%+v)", k, r.Checks[k], r)
		}
	}
	env.Server.Drain()
	var after readiness
	if status := getJSON(t, env.URL+"/readyz", &after); status != http.StatusServiceUnavailable || after.Ready || after.Checks["server"] != "shutting down" {
		t.Errorf("readyz after Drain: %d %+v, want 503 with server: shutting down", status, after)
	}
	if after.Checks["database"] != "ok" {
		t.Errorf("database check %q after Drain: draining must not disturb the database", after.Checks["database"])
	}
}

// TestReadyzMigrations: a schema that is not the one the code expects
// (dirty, newer, rolled back) makes herald unready, and migrating makes it
// ready again.
func TestReadyzMigrations(t *testing.T) {
	for _, c := range []struct {
		name         string
		break_, heal string // SQL
	}{
		{"dirty", `UPDATE herald.schema_migrations SET dirty = true`, `UPDATE herald.schema_migrations SET dirty = false`},
		{"newer", fmt.Sprintf(`UPDATE herald.schema_migrations SET version = %d`, migrations.Latest+1),
			fmt.Sprintf(`UPDATE herald.schema_migrations SET version = %d`, migrations.Latest)},
		{"rolled back", "down", "up"},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			url := pgtest.URL(t)
			env := apitest.Start(t, apitest.Options{DBURL: url})
			waitReadyz(t, env.URL, http.StatusOK, 10*time.Second)
			apply := func(step string) {
				t.Helper()
				ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
				defer cancel()
				var err error
				switch step {
				case "down":
					_, err = store.Migrate(ctx, url, store.MigrateDown, 0)
				case "up":
					_, err = store.Migrate(ctx, url, store.MigrateUp, 0)
				default:
					_, err = env.Pool.Exec(ctx, step)
				}
				if err != nil {
					t.Fatalf("%s: %v", step, err)
				}
			}
			apply(c.break_)
			r := waitReadyz(t, env.URL, http.StatusServiceUnavailable, 10*time.Second)
			if r.Checks["database"] != "ok" || r.Checks["migrations"] == "ok" || r.Checks["migrations"] == "" {
				t.Errorf("unready for the wrong reason: %+v", r)
			}
			t.Logf("migrations check: %q", r.Checks["migrations"])
			apply(c.heal)
			waitReadyz(t, env.URL, http.StatusOK, 30*time.Second)
		})
	}
}

// TestReadyzDatabaseGone: a database that went away is 503 "unreachable",
// not a hang and not a 500.
func TestReadyzDatabaseGone(t *testing.T) {
	url := pgtest.URL(t)
	env := apitest.Start(t, apitest.Options{DBURL: url})
	waitReadyz(t, env.URL, http.StatusOK, 10*time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	conn, err := pgx.Connect(ctx, pgtest.AdminURL(t))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, `DROP DATABASE `+pgx.Identifier{cfg.Database}.Sanitize()+` WITH (FORCE)`); err != nil {
		t.Fatal(err)
	}
	began := time.Now()
	r := waitReadyz(t, env.URL, http.StatusServiceUnavailable, 10*time.Second)
	if r.Checks["database"] != "unreachable" {
		t.Errorf("database check %q, want unreachable (%+v)", r.Checks["database"], r)
	}
	// The probe itself answers, within its 2 s budget on an idle
	// machine; 20 s (10x) proves it does not hang on the missing
	// database, not a speed.
	start := time.Now()
	getJSON(t, env.URL+"/readyz", &r)
	if d := time.Since(start); d > 20*time.Second {
		t.Errorf("readyz took %v with the database gone", d)
	}
	t.Logf("unready %v after the drop", time.Since(began).Round(time.Millisecond))
}
