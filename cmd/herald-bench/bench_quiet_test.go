package main

import (
	"bytes"
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/herald-dev/herald/store/pgtest"
)

// TestBenchQuietSplitsHeraldsSessions: `herald-bench quiet` counts a
// backend of another application as the rest of Postgres, not as herald's
// sessions. A connection named "not-herald" burns CPU in a loop across the
// window; herald, idle, costs a few ms/s at most, so the burn must land in
// the rest and herald's sessions must stay below it.
func TestBenchQuietSplitsHeraldsSessions(t *testing.T) {
	dbURL := pgtest.URL(t)
	srv := startProc(t, []string{"serve", "--listen", "127.0.0.1:0", "--log-level", "warn"}, "DATABASE_URL="+dbURL)
	waitReady(t, srv.URL, 30*time.Second)

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cfg, err := pgx.ParseConfig(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	cfg.RuntimeParams["application_name"] = "not-herald"
	burner, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer burner.Close(context.Background())
	burnCtx, stopBurn := context.WithCancel(ctx)
	burned := make(chan error, 1)
	go func() {
		for burnCtx.Err() == nil {
			// About 20-50 ms of CPU each; the loop outlasts the window.
			if _, err := burner.Exec(burnCtx, `SELECT count(*) FROM generate_series(1, 300000)`); err != nil && burnCtx.Err() == nil {
				burned <- err
				return
			}
		}
		burned <- nil
	}()

	var out, errb bytes.Buffer
	err = run(ctx, []string{"quiet", "--url", srv.URL, "--duration", "2s", "--runs", "1", "--json"},
		env("DATABASE_URL", dbURL), &out, &errb)
	stopBurn()
	if berr := <-burned; berr != nil {
		t.Fatalf("burner: %v", berr)
	}
	if err != nil {
		t.Fatalf("bench: %v\n%s", err, errb.String())
	}
	var rs []benchResult
	if err := json.Unmarshal(out.Bytes(), &rs); err != nil || len(rs) != 1 || len(rs[0].Runs) != 1 {
		t.Fatalf("output %s: %v", out.String(), err)
	}
	m := rs[0].Runs[0]
	// herald holds at least its sequencer's and its feed's sessions.
	if m["sessions"] < 2 {
		t.Fatalf("%v herald sessions listed, want at least 2: %v", m["sessions"], m)
	}
	sessions, rest := m["sessions_cpu_ms_per_s"], m["pg_rest_cpu_ms_per_s"]
	if rest < 50 {
		t.Errorf("rest of Postgres %.2f ms/s while another application burned CPU throughout: the burn was not counted there (%v)", rest, m)
	}
	if sessions >= rest {
		t.Errorf("herald's sessions %.2f ms/s >= the rest %.2f: the burner was counted as herald's (%v)", sessions, rest, m)
	}
	if got, want := m["herald_cpu_ms_per_s"], m["server_cpu_ms_per_s"]+sessions; got != want {
		t.Errorf("herald + sessions %.3f, want server %.3f + sessions %.3f", got, m["server_cpu_ms_per_s"], sessions)
	}
}
