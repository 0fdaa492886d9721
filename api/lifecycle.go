package api

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"
)

// Lifecycle is one herald node's run, in the order both `herald serve` and
// the test harness (api/apitest) need it, so tests start and stop a node
// exactly as production does:
//
//   - Go starts the background loops (sequencer, feed, leases, ...);
//   - Start serves the API on a listener;
//   - Ready waits until the node can serve (the feed knows the head);
//   - Drain answers new streams and polls 503 shutting_down, ends open
//     streams with their retry hint, answers waiting polls, shuts the HTTP
//     server down and waits for the streams that run outside net/http;
//   - Wait stops the background loops and waits for them. Loops outlive
//     Drain, so streams finish with what the feed has.
type Lifecycle struct {
	log    *slog.Logger
	bg     context.Context
	cancel context.CancelFunc
	loops  sync.WaitGroup

	srv    *Server
	hs     *http.Server
	ready  <-chan struct{}
	failed chan error
}

// NewLifecycle prepares a run. The loops' context keeps ctx's values but
// not its cancellation: a signal starts the drain, and the loops stop only
// at Wait. log reports loops that stop with an error (nil: discarded).
func NewLifecycle(ctx context.Context, log *slog.Logger) *Lifecycle {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	bg, cancel := context.WithCancel(context.WithoutCancel(ctx))
	return &Lifecycle{log: log, bg: bg, cancel: cancel, failed: make(chan error, 1)}
}

// Go runs loop in the background until Wait; an error other than the
// context's end is logged with name.
func (l *Lifecycle) Go(name string, loop func(context.Context) error) {
	l.loops.Go(func() {
		if err := loop(l.bg); err != nil && !errors.Is(err, context.Canceled) {
			l.log.Error("background loop stopped", "loop", name, "err", err)
		}
	})
}

// Context is the loops' context, for background work not started with
// Go: it ends at Wait.
func (l *Lifecycle) Context() context.Context { return l.bg }

// Start serves srv through hs on ln (hs.Handler defaults to srv.Handler).
// ready is closed once the node can serve. If hs stops serving on its own,
// its error arrives on Failed.
func (l *Lifecycle) Start(srv *Server, hs *http.Server, ln net.Listener, ready <-chan struct{}) {
	if hs.Handler == nil {
		hs.Handler = srv.Handler()
	}
	l.srv, l.hs, l.ready = srv, hs, ready
	go func() { l.failed <- hs.Serve(ln) }()
}

// Failed receives the HTTP server's error if it stops serving before Drain.
func (l *Lifecycle) Failed() <-chan error { return l.failed }

// Ready waits until the node can serve, or ctx ends.
func (l *Lifecycle) Ready(ctx context.Context) error {
	select {
	case <-l.ready:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Drain shuts the node's HTTP side down. In-flight requests get grace to
// finish (0: their connections close at once, which tests want), bounded
// by ctx; the streams, which net/http no longer sees, get until ctx ends.
// It returns an error if streams were still running then.
func (l *Lifecycle) Drain(ctx context.Context, grace time.Duration) error {
	l.srv.Drain()
	hctx, cancel := context.WithTimeout(ctx, grace)
	defer cancel()
	if err := l.hs.Shutdown(hctx); err != nil {
		if grace > 0 {
			l.log.Warn("requests still running at shutdown timeout; closing them", "err", err)
		}
		_ = l.hs.Close()
	}
	if err := l.srv.Wait(ctx); err != nil {
		l.log.Warn("streams still running at shutdown timeout", "err", err)
		return err
	}
	return nil
}

// Wait stops the background loops and waits for them to return. Call it
// after Drain, or alone when the run fails before serving; calling it again
// is harmless.
func (l *Lifecycle) Wait() {
	l.cancel()
	l.loops.Wait()
}
