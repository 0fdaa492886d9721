package stream_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/herald-dev/herald/api/apitest"
	"github.com/herald-dev/herald/client"
	"github.com/herald-dev/herald/store/pgtest"
)

// TestLongTransactionsAndBigBatches: a transaction held open for seconds
// (taking its xid first, so its rows are older than everything committed
// meanwhile), one rolled back, and one batch of 10,000 rows, while short
// writers commit around them. A Go client gets every committed event once,
// in order; the long transaction delays only its own rows; the batch costs
// the client no eviction.
func TestLongTransactionsAndBigBatches(t *testing.T) {
	env := apitest.Start(t, apitest.Options{})
	env.Insert(t, "other", "message", `{}`) // seq 1: the client's cursor
	env.WaitHead(t, 1, wait)
	c := subscribeGo(t, env.URL, []string{"a", "b"}, 1, client.Options{})
	ctx := context.Background()
	want := map[string]bool{}

	long, err := env.Pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := long.Exec(ctx, `SELECT pg_current_xact_id()`); err != nil {
		t.Fatal(err)
	}
	rolledBack, err := env.Pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := rolledBack.Exec(ctx, `INSERT INTO herald.events (channel, data) VALUES ('a', '{"rolled":"back"}')`); err != nil {
		t.Fatal(err)
	}
	// Short writers commit while the long one is open; the client gets
	// them without waiting for it.
	for i := 0; i < 20; i++ {
		p := fmt.Sprintf(`{"short":%d}`, i)
		env.Insert(t, "a", "message", p)
		want[p] = true
	}
	got := c.waitEvents(t, 20, wait)
	if len(got) != 20 {
		t.Fatalf("short writes: %d events while a transaction is open, want 20", len(got))
	}
	if _, err := long.Exec(ctx, `INSERT INTO herald.events (channel, data) VALUES ('b', '{"long":1}')`); err != nil {
		t.Fatal(err)
	}
	want[`{"long":1}`] = true
	// A batch of 10,000 in one transaction, on the client's channel.
	if err := pgx.BeginFunc(ctx, env.Pool, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `INSERT INTO herald.events (channel, data)
			SELECT 'a', jsonb_build_object('batch', g) FROM generate_series(1, 10000) g`)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	for g := 1; g <= 10000; g++ {
		want[fmt.Sprintf(`{"batch":%d}`, g)] = true
	}
	time.Sleep(2 * time.Second) // the long transaction stays open for seconds: the point of the test
	if err := rolledBack.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	if err := long.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	all := c.waitEvents(t, len(want), time.Minute)
	pgtest.CheckExactlyOnce(t, all, want)
	c.checkNoneDropped(t) // nothing replayed that the client hid
	c.mu.Lock()
	defer c.mu.Unlock()
	if n := c.states[client.StateDisconnected]; n != 0 {
		t.Fatalf("the client was disconnected %d times (the batch must not evict it)", n)
	}
}
