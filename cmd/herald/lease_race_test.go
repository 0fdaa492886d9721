package main

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/herald-dev/herald/api"
	"github.com/herald-dev/herald/store/pgtest"
)

// TestSubjectLimitAcrossProcesses: 100 streams for one subject, opened at
// once and spread over two herald processes on one database, with a limit
// of 1 per subject: at most one is admitted, every other gets 429. It
// proves the lease check and insert are serialised per subject across
// replicas (an unserialised check admits several).
func TestSubjectLimitAcrossProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("-short")
	}
	secret := strings.Repeat("k", 32)
	// A pool as large as the burst, so the 50 requests each process gets
	// reach the database at the same time rather than 4 at a time.
	dbURL := withParam(pgtest.URL(t), "pool_max_conns=60")
	// --no-migrate: the test database is migrated already (and migrate
	// would pass pool_max_conns on to the server).
	args := []string{"serve", "--listen", "127.0.0.1:0", "--no-migrate", "--max-conns-per-subject", "1"}
	a := startProc(t, args, "DATABASE_URL="+dbURL, "HERALD_JWT_SECRET="+secret)
	b := startProc(t, args, "DATABASE_URL="+dbURL, "HERALD_JWT_SECRET="+secret)
	waitReady(t, a.URL, 60*time.Second)
	waitReady(t, b.URL, 60*time.Second)
	// The race window is narrow: ten bursts, each for a new subject.
	for round := 0; round < 10; round++ {
		sub := fmt.Sprintf("user-%d", round)
		tok, err := api.MintToken([]byte(secret), sub, []string{"builds"}, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		count := streamBurst(t, tok, 100, a.URL, b.URL)
		if count[http.StatusOK] > 1 {
			t.Fatalf("round %d: %d streams admitted for one subject with a limit of 1 (statuses %v)", round, count[http.StatusOK], count)
		}
		if count[http.StatusOK]+count[http.StatusTooManyRequests] != 100 {
			t.Fatalf("round %d: statuses %v: want only 200 and 429", round, count)
		}
	}
}

// streamBurst opens n streams with tok at once, alternating between the
// bases, holds the admitted ones open until all have answered, and counts
// the answers by status.
func streamBurst(t *testing.T, tok string, n int, bases ...string) map[int]int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 2 * n, DisableCompression: true}}
	defer client.CloseIdleConnections()
	statuses := make([]int, n)
	var wg sync.WaitGroup
	startGate := make(chan struct{})
	answered := make(chan struct{}, n)
	hold := make(chan struct{})
	for i := 0; i < n; i++ {
		base := bases[i%len(bases)]
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/v1/stream?channel=builds", nil)
			req.Header.Set("Authorization", "Bearer "+tok)
			<-startGate
			resp, err := client.Do(req)
			if err != nil {
				t.Errorf("stream %d: %v", i, err)
				answered <- struct{}{}
				return
			}
			statuses[i] = resp.StatusCode
			answered <- struct{}{}
			if resp.StatusCode == http.StatusOK {
				<-hold
			}
			resp.Body.Close()
		}()
	}
	close(startGate)
	for i := 0; i < n; i++ {
		select {
		case <-answered:
		case <-ctx.Done():
			t.Fatalf("only %d of %d streams answered", i, n)
		}
	}
	close(hold)
	wg.Wait()
	count := map[int]int{}
	for _, s := range statuses {
		count[s]++
	}
	return count
}

// withParam adds a query parameter to a database URL.
func withParam(dbURL, kv string) string {
	u, err := url.Parse(dbURL)
	if err != nil || u.RawQuery == "" {
		return dbURL + "?" + kv
	}
	return dbURL + "&" + kv
}
