package stream_test

import (
	"context"
	"math/rand/v2"
	"net"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/herald-dev/herald/api"
	"github.com/herald-dev/herald/api/apitest"
	"github.com/herald-dev/herald/client"
	"github.com/herald-dev/herald/store/pgtest"
)

// cutConn is a client connection that fails after a byte budget: the cut
// lands anywhere, in the response headers, between events or inside one.
type cutConn struct {
	net.Conn
	left int // read by the transport's one read goroutine only
}

func (c *cutConn) Read(p []byte) (int, error) {
	if c.left <= 0 {
		c.Conn.Close()
		return 0, errCut
	}
	if len(p) > c.left {
		p = p[:c.left]
	}
	n, err := c.Conn.Read(p)
	c.left -= n
	return n, err
}

// cuttingClient is an HTTP client whose every connection is cut after a
// random number of bytes in [min, max).
func cuttingClient(t testing.TB, min, max int, dials *atomic.Int64) *http.Client {
	t.Helper()
	var d net.Dialer
	tr := &http.Transport{
		DisableCompression: true,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			conn, err := d.DialContext(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			dials.Add(1)
			return &cutConn{Conn: conn, left: min + rand.IntN(max-min)}, nil
		},
	}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr}
}

// The Go client, cut off over and over while 16 writers commit more than
// 50,000 events with the patterns that break naive cursors (early xids,
// transactions held open, rollbacks), ends with every committed event once,
// in order, and nothing else.
func TestStreamSoakExactlyOnceAcrossReconnects(t *testing.T) {
	if testing.Short() {
		t.Skip("soak test")
	}
	const (
		writers    = 16
		rounds     = 1900 // about 1.75 committed rows a round: ~53,000 events
		minEvents  = 50_000
		minReconns = 100
	)
	env := apitest.Start(t, apitest.Options{API: api.Config{Retry: 5 * time.Millisecond}})
	channels := []string{"soak-a", "soak-b", "soak-c", "soak-d", "soak-e", "soak-f"}

	// The client starts from a real cursor: with none it would resume live
	// from now after a cut before its first event.
	from := insertN(t, env, "elsewhere", "seed", 0, 1)[0]
	var dials atomic.Int64
	gc := subscribeGo(t, env.URL, channels, from, client.Options{
		HTTPClient: cuttingClient(t, 256, 48<<10, &dials),
		MinBackoff: time.Millisecond,
		MaxBackoff: 20 * time.Millisecond,
	})

	// apitest's pool has max(4, GOMAXPROCS) connections: too few for 16
	// concurrent writers.
	cfg, err := pgxpool.ParseConfig(env.DBURL)
	if err != nil {
		t.Fatal(err)
	}
	cfg.MaxConns = writers + 2
	pool, err := pgxpool.NewWithConfig(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()

	start := time.Now()
	want := pgtest.WriteLoad(t, t.Context(), pool, writers, rounds, channels)
	wrote := time.Since(start)
	if len(want) < minEvents {
		t.Fatalf("only %d events committed; want at least %d", len(want), minEvents)
	}
	want = compactKeys(t, want)
	if got, ok := gc.tryWaitEvents(len(want), 30*time.Second); !ok {
		pgtest.CheckExactlyOnce(t, got, want) // says what is missing
		t.Fatalf("%d of %d events after 30s", len(got), len(want))
	}
	// The end marker is sequenced after every written event: once it is
	// in, a duplicate or stray event would be in too.
	insertN(t, env, channels[0], "end", -1, 1)
	got := gc.waitEvents(t, len(want)+1, wait)
	if end := got[len(got)-1]; end.Type != "end" {
		t.Fatalf("last event is %d %s, want the end marker", end.Seq, end.Type)
	}
	pgtest.CheckExactlyOnce(t, got[:len(got)-1], want)
	// The client drops a seq it already delivered, so the handler's
	// exactly-once alone cannot see a server that replays: its drop count
	// must be 0 too.
	gc.checkNoneDropped(t)

	reconnects := gc.state(client.StateConnected) - 1
	t.Logf("%d events from %d writers in %v (all received %v after start); %d connections, %d reconnects, %d disconnects",
		len(want), writers, wrote.Round(time.Millisecond), time.Since(start).Round(time.Millisecond),
		dials.Load(), reconnects, gc.state(client.StateDisconnected))
	if reconnects < minReconns {
		t.Errorf("%d reconnects, want at least %d", reconnects, minReconns)
	}
	if gc.state(client.StateFailed) > 0 {
		t.Error("the client reported a permanent failure")
	}
}
