package main

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/herald-dev/herald/store/pgtest"
)

// TestMaxLifetime: with --max-lifetime, herald ends each SSE stream after
// a jittered lifetime (never before 3/4 of it: the jitter spreads
// reconnects, it does not shorten streams arbitrarily), and the client
// resumes from its last id on a new stream with nothing lost or repeated.
func TestMaxLifetime(t *testing.T) {
	const lifetime = 2 * time.Second
	dbURL := pgtest.URL(t)
	pool, err := pgxpool.New(context.Background(), dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	base, _ := serveOn(t, dbURL, "HERALD_MAX_LIFETIME", lifetime.String())
	insertN(t, pool, "life", 3)
	waitHead(t, base, 3)

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	opened := time.Now()
	resp := openSSE(t, ctx, base+"/v1/stream?channel=life", "Last-Event-ID", "0")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("stream: %s", resp.Status)
	}
	var first rawStream
	err = first.read(resp.Body, 0) // until herald ends the stream
	took := time.Since(opened)
	if !errors.Is(err, io.EOF) {
		t.Fatalf("stream ended with %v after %v, want herald to end it cleanly (EOF)", err, took)
	}
	t.Logf("stream ended by herald after %v (--max-lifetime %v)", took.Round(time.Millisecond), lifetime)
	if took < lifetime*3/4 {
		t.Fatalf("stream ended after %v, before 3/4 of --max-lifetime %v", took, lifetime)
	}
	if took > lifetime+20*time.Second {
		t.Fatalf("stream ended after %v, long after --max-lifetime %v", took, lifetime)
	}
	if len(first.ids) != 3 || first.cursor != 3 {
		t.Fatalf("first stream delivered %v (cursor %d), want 1-3", first.ids, first.cursor)
	}
	// Written after the stream ended: the resumed stream brings them.
	insertN(t, pool, "life", 2)
	waitHead(t, base, 5)
	resp = openSSE(t, ctx, base+"/v1/stream?channel=life", "Last-Event-ID", strconv.FormatInt(first.cursor, 10))
	var second rawStream
	if err := second.read(resp.Body, 5); err != nil {
		t.Fatalf("resumed stream: %v (got %v)", err, second.ids)
	}
	if len(second.ids) != 2 || second.ids[0] != 4 || second.ids[1] != 5 {
		t.Fatalf("resumed stream delivered %v, want 4, 5", second.ids)
	}
}
