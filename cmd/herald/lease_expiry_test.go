package main

import (
	"context"
	"net/http"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/herald-dev/herald/api"
	"github.com/herald-dev/herald/store/pgtest"
)

// TestLeaseExpiryAfterSIGKILL: the per-subject limit counts across
// replicas through leases that a replica renews while it runs. Two herald
// processes share a database with --max-conns-per-subject 2 and a short
// --lease-ttl. The subject's two streams on replica A fill the limit on B;
// past several TTLs they still do (A renews them). When A is SIGKILLed
// (no clean release), B keeps refusing until A's leases expire, one TTL
// after A's last renewal and not before, and then admits the subject.
func TestLeaseExpiryAfterSIGKILL(t *testing.T) {
	const ttl = 3 * time.Second
	dbURL := pgtest.URL(t)
	secret := "lease-expiry-test-secret-0123456789abcdef"
	envs := []string{"DATABASE_URL=" + dbURL, "HERALD_JWT_SECRET=" + secret,
		"HERALD_MAX_CONNS_PER_SUBJECT=2", "HERALD_LEASE_TTL=" + ttl.String(), "HERALD_LOG_LEVEL=warn"}
	args := []string{"serve", "--listen", "127.0.0.1:0"}
	a := startProc(t, args, envs...)
	b := startProc(t, args, envs...)
	pool, err := pgxpool.New(context.Background(), dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()

	tok, err := api.MintToken([]byte(secret), "user-7", []string{"private-lease-*"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	auth := []string{"Authorization", "Bearer " + tok}
	streamURL := "/v1/stream?channel=private-lease-1"
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	for i := range 2 {
		if r := openSSE(t, ctx, a.URL+streamURL, auth...); r.StatusCode != http.StatusOK {
			t.Fatalf("stream %d on A: %s", i, r.Status)
		}
	}
	// try opens a third stream on B; 200 means the limit freed up.
	try := func() int {
		t.Helper()
		rctx, rcancel := context.WithCancel(ctx)
		r := openSSE(t, rctx, b.URL+streamURL, auth...)
		if r.StatusCode != http.StatusOK {
			answerOf(t, r).wantError(t, "third stream on B", http.StatusTooManyRequests, "too_many_connections")
			if r.Header.Get("Retry-After") == "" {
				t.Fatal("429 without Retry-After")
			}
		}
		rcancel()
		return r.StatusCode
	}
	if s := try(); s != http.StatusTooManyRequests {
		t.Fatalf("third stream on B with two open on A: %d, want 429", s)
	}
	// Renewal: three TTLs later A's leases still count.
	held := time.Now()
	for time.Since(held) < 3*ttl {
		time.Sleep(100 * time.Millisecond) // holding the streams open; not a readiness wait
	}
	if s := try(); s != http.StatusTooManyRequests {
		t.Fatalf("after 3 TTLs with A alive: %d, want 429 (A renews its leases)", s)
	}

	a.signal(t, syscall.SIGKILL, 10*time.Second)
	killed := time.Now()
	// A is dead: its rows can no longer be renewed; the first of them to
	// expire frees one connection.
	var expires time.Time
	if err := pool.QueryRow(context.Background(),
		`SELECT min(expires_at) FROM herald.leases WHERE subject = 'user-7'`).Scan(&expires); err != nil {
		t.Fatalf("A's leases after SIGKILL: %v", err)
	}
	if d := expires.Sub(killed); d > ttl || d < -time.Second {
		t.Fatalf("A's lease expires %v after the kill, want within the TTL %v", d, ttl)
	}
	deadline := killed.Add(ttl + 30*time.Second)
	refused := 0
	for {
		s := try()
		now := time.Now()
		if s == http.StatusOK {
			if now.Before(expires) {
				t.Fatalf("B admitted the subject at %v, before A's lease expired at %v", now, expires)
			}
			t.Logf("the killed replica's leases freed %v after SIGKILL (expiry %v after; %d refusals before)",
				now.Sub(killed).Round(10*time.Millisecond), expires.Sub(killed).Round(10*time.Millisecond), refused)
			break
		}
		refused++
		if now.After(deadline) {
			t.Fatalf("B still refuses %v after SIGKILL; A's leases expired %v after it", now.Sub(killed), expires.Sub(killed))
		}
		time.Sleep(50 * time.Millisecond) // polling interval
	}
	if refused == 0 {
		t.Fatal("B admitted at once after the SIGKILL: the killed replica's leases did not count until they expired")
	}
}
