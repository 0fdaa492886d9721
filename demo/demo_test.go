package demo_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/herald-dev/herald/api"
	"github.com/herald-dev/herald/demo"
	"github.com/herald-dev/herald/store/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

var testSecret = []byte("demo-test-secret-0123456789abcdef0123456789")

func setup(t *testing.T, url string, opts demo.Options) *demo.Demo {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	d, err := demo.Setup(ctx, url, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(d.Close)
	return d
}

func connect(t *testing.T, url string) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

func count(t *testing.T, conn *pgx.Conn, sql string, args ...any) int {
	t.Helper()
	var n int
	if err := conn.QueryRow(context.Background(), sql, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return n
}

// TestSetupIdempotent: Setup creates and seeds the schema once; a second
// Setup (a restarted demo) keeps what is there.
func TestSetupIdempotent(t *testing.T) {
	t.Parallel()
	url := pgtest.URL(t)
	d := setup(t, url, demo.Options{Seed: 1})
	conn := connect(t, url)
	projects := count(t, conn, `SELECT count(*) FROM demo.projects`)
	builds := count(t, conn, `SELECT count(*) FROM demo.builds`)
	if projects < 3 || builds < 3*projects {
		t.Fatalf("seeded %d projects and %d builds, want a few projects with recent builds", projects, builds)
	}
	if n := count(t, conn, `SELECT count(*) FROM demo.builds WHERE state IN ('QUEUED', 'STARTED')`); n < 1 {
		t.Errorf("%d builds running or queued after seeding, want some: the page should be alive at once", n)
	}
	if n := count(t, conn, `SELECT count(*) FROM herald.events`); n != 0 {
		t.Errorf("seeding wrote %d notices, want none", n)
	}
	if _, err := d.Step(context.Background()); err != nil {
		t.Fatal(err)
	}
	setup(t, url, demo.Options{Seed: 2})
	if p, b := count(t, conn, `SELECT count(*) FROM demo.projects`), count(t, conn, `SELECT count(*) FROM demo.builds`); p != projects || b < builds {
		t.Errorf("after a second Setup: %d projects, %d builds; want %d and at least %d", p, b, projects, builds)
	}
}

// TestChangeAndNoticeTogether: each change bumps the build's version and
// writes exactly one minimal notice, on the project's private channel, in
// the same transaction; a refused change writes neither.
func TestChangeAndNoticeTogether(t *testing.T) {
	t.Parallel()
	url := pgtest.URL(t)
	d := setup(t, url, demo.Options{Seed: 3})
	conn := connect(t, url)
	ctx := context.Background()

	c, err := d.Queue(ctx, 2)
	if err != nil {
		t.Fatal(err)
	}
	if !c.New || c.State != demo.Queued || c.Project != 2 || c.Version != 1 {
		t.Fatalf("Queue: %+v", c)
	}
	states := []string{c.State}
	for c.State != demo.Passed && c.State != demo.Failed {
		prev := c
		if c, err = d.Advance(ctx, c.Build); err != nil {
			t.Fatal(err)
		}
		if c.Version != prev.Version+1 || c.Build != prev.Build {
			t.Fatalf("Advance %+v after %+v", c, prev)
		}
		states = append(states, c.State)
		if len(states) > 20 {
			t.Fatalf("build never finished: %v", states)
		}
	}
	if states[1] != demo.Started {
		t.Errorf("states %v: want QUEUED then STARTED", states)
	}
	rows, err := conn.Query(ctx, `SELECT channel, type, data::text FROM herald.events ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	type ev struct{ channel, typ, data string }
	got, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (ev, error) {
		var e ev
		return e, r.Scan(&e.channel, &e.typ, &e.data)
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(states) {
		t.Fatalf("%d notices for %d changes: %v", len(got), len(states), got)
	}
	for i, e := range got {
		var data map[string]any
		if err := json.Unmarshal([]byte(e.data), &data); err != nil {
			t.Fatal(err)
		}
		if e.channel != "private-project-2" || e.typ != demo.NoticeType || len(data) != 3 ||
			data["build"] != float64(c.Build) || data["project"] != float64(2) || data["state"] != states[i] {
			t.Errorf("notice %d: %+v, want a minimal notice of build %d in state %s", i, e, c.Build, states[i])
		}
	}
	b, err := d.Build(ctx, c.Build)
	if err != nil {
		t.Fatal(err)
	}
	if b.State != c.State || b.Version != c.Version || b.Progress != 100 || b.StartedAt == nil || b.FinishedAt == nil {
		t.Errorf("finished build %+v, last change %+v", b, c)
	}

	// A refused change leaves no trace.
	if _, err := d.Advance(ctx, c.Build); !errors.Is(err, demo.ErrFinished) {
		t.Errorf("Advance of a finished build: %v, want ErrFinished", err)
	}
	if _, err := d.Advance(ctx, 1); err == nil {
		t.Error("Advance of a build that does not exist: no error")
	}
	if _, err := d.Queue(ctx, 99); err == nil {
		t.Error("Queue on a project that does not exist: no error")
	}
	if n := count(t, conn, `SELECT count(*) FROM herald.events`); n != len(states) {
		t.Errorf("%d notices after refused changes, want %d", n, len(states))
	}
}

// TestSimulator: Run at a fast pace keeps the invariant "one notice per
// version step" across many random changes, and stops with its context.
func TestSimulator(t *testing.T) {
	t.Parallel()
	url := pgtest.URL(t)
	d := setup(t, url, demo.Options{Seed: 4, Pace: time.Millisecond})
	conn := connect(t, url)
	versions := count(t, conn, `SELECT sum(version) FROM demo.builds`)

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	deadline := time.Now().Add(20 * time.Second)
	for count(t, conn, `SELECT count(*) FROM herald.events`) < 60 {
		if time.Now().After(deadline) {
			t.Fatal("the simulator made fewer than 60 changes in 20 s")
		}
		time.Sleep(10 * time.Millisecond) // polling the database, not guessing
	}
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("Run returned %v, want context.Canceled", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
	events := count(t, conn, `SELECT count(*) FROM herald.events`)
	if now := count(t, conn, `SELECT sum(version) FROM demo.builds`); now-versions != events {
		t.Errorf("versions grew by %d, notices %d: want one notice per change", now-versions, events)
	}
	// Every build's newest notice names its current state.
	bad := count(t, conn, `
		SELECT count(*) FROM demo.builds b
		  JOIN LATERAL (SELECT data FROM herald.events e WHERE (e.data->>'build')::bigint = b.id ORDER BY e.id DESC LIMIT 1) last ON true
		 WHERE last.data->>'state' <> b.state OR (last.data->>'project')::bigint <> b.project_id`)
	if bad != 0 {
		t.Errorf("%d builds whose last notice disagrees with the row", bad)
	}
	for _, s := range []string{demo.Started, demo.Passed} {
		if count(t, conn, `SELECT count(*) FROM herald.events WHERE data->>'state' = $1`, s) == 0 {
			t.Errorf("no %s notice in %d changes", s, events)
		}
	}
}

// TestHandler: the page, its files, the JSON API and the token endpoint.
func TestHandler(t *testing.T) {
	t.Parallel()
	url := pgtest.URL(t)
	d := setup(t, url, demo.Options{Seed: 5, Secret: testSecret, TokenTTL: time.Minute})
	srv := httptest.NewServer(d.Handler())
	t.Cleanup(srv.Close)

	get := func(path string) (int, string, string) {
		t.Helper()
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, resp.Header.Get("Content-Type"), string(b)
	}
	for _, c := range []struct{ path, ctype, contains string }{
		{"/", "text/html", `<script type="module" src="/demo/app.js">`},
		{"/demo/", "text/html", `id="conn-state"`},
		{"/demo/app.js", "text/javascript", `from "/herald.js"`},
		{"/demo/style.css", "text/css", "--passed"},
	} {
		status, ctype, body := get(c.path)
		if status != 200 || !strings.HasPrefix(ctype, c.ctype) || !strings.Contains(body, c.contains) {
			t.Errorf("GET %s: %d %q, body contains %q: %v", c.path, status, ctype, c.contains, strings.Contains(body, c.contains))
		}
	}

	var projects struct{ Projects []demo.Project }
	status, _, body := get("/demo/api/projects")
	if err := json.Unmarshal([]byte(body), &projects); status != 200 || err != nil || len(projects.Projects) == 0 {
		t.Fatalf("projects: %d %s %v", status, body, err)
	}
	var builds struct{ Builds []demo.Build }
	status, _, body = get("/demo/api/projects/1/builds?limit=3")
	if err := json.Unmarshal([]byte(body), &builds); status != 200 || err != nil || len(builds.Builds) != 3 {
		t.Fatalf("builds: %d %s %v", status, body, err)
	}
	if b := builds.Builds; b[0].ID < b[1].ID || b[0].Project != 1 {
		t.Errorf("builds not newest first: %+v", b)
	}
	var one demo.Build
	status, _, body = get("/demo/api/builds/" + itoa(builds.Builds[0].ID))
	if err := json.Unmarshal([]byte(body), &one); status != 200 || err != nil || one.ID != builds.Builds[0].ID || one.Version < 1 {
		t.Fatalf("build: %d %s %v", status, body, err)
	}
	for path, want := range map[string]int{
		"/demo/api/builds/1":                  404,
		"/demo/api/builds/x":                  400,
		"/demo/api/projects/99/builds":        404,
		"/demo/api/projects/1/builds?limit=0": 400,
		"/demo/api/nothing":                   404,
		"/demo/missing.js":                    404,
	} {
		if status, _, body := get(path); status != want {
			t.Errorf("GET %s: %d %s, want %d", path, status, body, want)
		}
	}

	var tok struct {
		Token     string   `json:"token"`
		ExpiresAt string   `json:"expires_at"`
		Channels  []string `json:"channels"`
	}
	status, _, body = get("/demo/token")
	if err := json.Unmarshal([]byte(body), &tok); status != 200 || err != nil {
		t.Fatalf("token: %d %s %v", status, body, err)
	}
	v, err := api.NewTokenVerifier(testSecret, nil)
	if err != nil {
		t.Fatal(err)
	}
	claims, err := v.Verify(tok.Token)
	if err != nil {
		t.Fatal(err)
	}
	if !claims.Grants("private-project-3") || claims.Grants("private-build-3") {
		t.Errorf("token grants %v", claims.Channels)
	}
	if ttl := time.Until(claims.ExpiresAt.Time); ttl <= 0 || ttl > time.Minute+time.Second {
		t.Errorf("token lives %v, want the configured minute", ttl)
	}

	noSecret := httptest.NewServer(setup(t, url, demo.Options{}).Handler())
	t.Cleanup(noSecret.Close)
	resp, err := http.Get(noSecret.URL + "/demo/token")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("token without a secret: %s, want 503", resp.Status)
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
