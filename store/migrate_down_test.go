package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/herald-dev/herald/migrations"
	"github.com/herald-dev/herald/store/pgtest"
)

// TestMigrateDownBesideARunningStep: 0001's down (the last step of
// `migrate down`) while a herald still runs. A statement that holds the
// inbox and then wants the log (as the sequencer's step does) must not
// deadlock with it: dropping the tables one by one took the log and waited
// for the inbox, and Postgres aborted the migration as a deadlock (seen in
// TestReadyzMigrations). Now it takes all three tables at once or none, so
// the step goes first. The file runs as golang-migrate runs it: one
// multi-statement Exec, one implicit transaction.
func TestMigrateDownBesideARunningStep(t *testing.T) {
	url := pgtest.URL(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	step, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer step.Close(context.Background())
	watch, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer watch.Close(context.Background())

	// The step's first lock, held.
	tx, err := step.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(context.Background())
	if _, err := tx.Exec(ctx, `LOCK TABLE herald.events IN ACCESS SHARE MODE`); err != nil {
		t.Fatal(err)
	}
	var stepPID int
	if err := tx.QueryRow(ctx, `SELECT pg_backend_pid()`).Scan(&stepPID); err != nil {
		t.Fatal(err)
	}

	sql, err := migrations.FS.ReadFile("0001_init.down.sql")
	if err != nil {
		t.Fatal(err)
	}
	mig, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer mig.Close(context.Background())
	down := make(chan error, 1)
	go func() {
		_, err := mig.Exec(ctx, string(sql))
		down <- err
	}()
	// Wait until the migration is blocked on a lock (the old order) or
	// between its tries (pg_sleep).
	waitFor(t, 30*time.Second, "the migration to reach the tables", func() bool {
		select {
		case err := <-down:
			t.Fatalf("the migration ended (%v) while the inbox was locked", err)
		default:
		}
		var n int
		err := watch.QueryRow(ctx, `
			SELECT count(*) FROM pg_stat_activity
			WHERE datname = current_database() AND pid NOT IN (pg_backend_pid(), $1)
			  AND state = 'active' AND query LIKE '%herald.sequencer_state%'
			  AND (wait_event_type = 'Lock' OR wait_event = 'PgSleep')`, stepPID).Scan(&n)
		if err != nil {
			t.Fatal(err)
		}
		return n > 0
	})
	// The step's second lock: with the migration holding the log it would
	// wait for the migration, which waits for this transaction.
	if _, err := tx.Exec(ctx, `SET LOCAL lock_timeout = '10s'`); err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, `LOCK TABLE herald.event_log IN ROW EXCLUSIVE MODE`); err != nil {
		t.Fatalf("the step could not take the log beside the migration: %v", err)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-down; err != nil {
		t.Fatalf("0001's down beside the step: %v", err)
	}
}
