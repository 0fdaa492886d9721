package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/herald-dev/herald/api"
	"github.com/herald-dev/herald/store"
)

type serveConfig struct {
	commonFlags
	auth            authFlags
	listen          string
	noMigrate       bool
	api             api.Config
	shutdownTimeout time.Duration
	headerTimeout   time.Duration
	pprof           string // loopback address for net/http/pprof, "" for none
	adminAddr       string // address for /metrics and /readyz alone, "" for the main listener
	maxConns        int    // open connections on the main listener, 0 for no cap
	retention       store.Retention
	leaseTTL        time.Duration // how long a dead replica's connection leases keep counting
	sequencerTick   time.Duration // the sequencer's step interval while rows flow
	// extend, if set, adds routes and background loops once the database
	// is ready (herald demo uses it). The loops stop with the server.
	extend func(ctx context.Context, srv *api.Server, dbURL string) ([]func(context.Context) error, error)
	// announce, if set, prints more once the server is listening (herald
	// demo: the page to open).
	announce func(w io.Writer, addr net.Addr)
}

func serve(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	cfg, log, err := parseServeFlags("serve", args, getenv, stderr, nil)
	if err != nil {
		return err
	}
	if err := cfg.auth.apply(&cfg.api, log); err != nil {
		return err
	}
	return serveWith(ctx, cfg, log, stdout)
}

// parseServeFlags parses serve's flags, and those more adds (herald demo
// shares them), and makes the logger. The caller applies cfg.auth.
func parseServeFlags(name string, args []string, getenv func(string) string, stderr io.Writer, more func(*envFlags)) (serveConfig, *slog.Logger, error) {
	var cfg serveConfig
	e := &envFlags{fs: newFlags(name, stderr), getenv: getenv}
	cfg.bind(e)
	e.String(&cfg.listen, "listen", "HERALD_LISTEN", "127.0.0.1:8080", "address to listen on")
	e.Bool(&cfg.noMigrate, "no-migrate", "HERALD_NO_MIGRATE", "do not apply migrations at start (run `herald migrate up` yourself)")
	e.Duration(&cfg.api.Heartbeat, "heartbeat", "HERALD_HEARTBEAT", 15*time.Second, "SSE heartbeat interval")
	e.Duration(&cfg.api.Retry, "retry", "HERALD_RETRY", 2*time.Second, "reconnect delay sent to SSE clients")
	e.Duration(&cfg.api.MaxLifetime, "max-lifetime", "HERALD_MAX_LIFETIME", 0, "end SSE streams after this long, jittered (0: never)")
	e.Duration(&cfg.api.PollTimeout, "poll-timeout", "HERALD_POLL_TIMEOUT", api.DefaultPollTimeout, "default long-poll timeout")
	e.Duration(&cfg.api.PollMaxTimeout, "poll-max-timeout", "HERALD_POLL_MAX_TIMEOUT", api.DefaultPollMaxTimeout, "longest long-poll timeout a client may ask for; keep it below your proxy's timeout")
	e.Int(&cfg.api.MaxChannels, "max-channels", "HERALD_MAX_CHANNELS", 100, "channels per connection")
	cfg.auth.bind(e)
	e.Duration(&cfg.retention.MaxAge, "retention", "HERALD_RETENTION", 24*time.Hour, "keep history this long (0: forever); older cursors get a reset")
	e.Int64(&cfg.retention.MaxEvents, "retention-events", "HERALD_RETENTION_EVENTS", 0, "keep at most this many events (0: no count limit)")
	e.Duration(&cfg.sequencerTick, "sequencer-tick", "HERALD_SEQUENCER_TICK", store.DefaultSequencerTick, "while rows flow faster than notices are worth, the sequencer steps this often: shorter is lower latency at more Postgres CPU and commits (1ms-1s; docs/WAKE.md)")
	e.Duration(&cfg.leaseTTL, "lease-ttl", "HERALD_LEASE_TTL", 30*time.Second, "how long a replica's per-subject connection leases outlive it if it dies (renewed every third of it)")
	e.Duration(&cfg.shutdownTimeout, "shutdown-timeout", "HERALD_SHUTDOWN_TIMEOUT", 10*time.Second, "how long to wait for requests at shutdown")
	e.Duration(&cfg.headerTimeout, "read-header-timeout", "HERALD_READ_HEADER_TIMEOUT", 10*time.Second, "time a client has to send its request headers (slowloris guard)")
	e.Duration(&cfg.api.BodyTimeout, "body-timeout", "HERALD_BODY_TIMEOUT", 10*time.Second, "time a client has to send a request body once its headers are in (slow-body guard)")
	e.Int(&cfg.maxConns, "max-conns", "HERALD_MAX_CONNS", 0, "open connections on --listen, all clients together; above it new ones get a 503 and are closed (0: no cap)")
	e.String(&cfg.adminAddr, "admin-addr", "HERALD_ADMIN_ADDR", "", "serve /metrics and /readyz on this address only, not on --listen (off when empty)")
	e.String(&cfg.pprof, "pprof", "HERALD_PPROF", "", "serve net/http/pprof on this loopback address, e.g. 127.0.0.1:6060 (off when empty)")
	if more != nil {
		more(e)
	}
	if err := e.parse(args); err != nil {
		return cfg, nil, err
	}
	if e.fs.NArg() > 0 {
		return cfg, nil, &usageError{fmt.Sprintf("%s takes no arguments, got %q", name, e.fs.Args())}
	}
	if cfg.sequencerTick < time.Millisecond || cfg.sequencerTick > time.Second {
		return cfg, nil, &usageError{fmt.Sprintf("sequencer tick %v (--sequencer-tick or HERALD_SEQUENCER_TICK): want 1ms to 1s", cfg.sequencerTick)}
	}
	log, err := newLogger(stderr, cfg.logLevel, cfg.logFormat)
	if err != nil {
		return cfg, nil, err
	}
	cfg.api.Log = log
	return cfg, log, nil
}

func serveWith(ctx context.Context, cfg serveConfig, log *slog.Logger, stdout io.Writer) (err error) {
	// Listen first: a port in use is the most common mistake, and should
	// not cost a database start.
	ln, err := net.Listen("tcp", cfg.listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.listen, err)
	}
	defer ln.Close()
	var adminLn net.Listener
	if cfg.adminAddr != "" {
		if adminLn, err = net.Listen("tcp", cfg.adminAddr); err != nil {
			return fmt.Errorf("listen on %s (--admin-addr): %w", cfg.adminAddr, err)
		}
		defer adminLn.Close()
		cfg.api.SeparateAdmin = true
	}
	if cfg.maxConns > 0 {
		ln = limitConns(ln, cfg.maxConns, log)
	}
	stopPprof, err := startPprof(cfg.pprof, log)
	if err != nil {
		return err
	}
	defer stopPprof()

	dbase, err := openDatabase(ctx, cfg.databaseURL, cfg.dataDir, true, log)
	if err != nil {
		return err
	}
	// The embedded cluster stops last, after everything that uses it.
	defer func() {
		if cerr := dbase.Close(); cerr != nil && err == nil {
			err = cerr
		}
	}()
	if !cfg.noMigrate {
		v, err := store.Migrate(ctx, dbase.URL, store.MigrateUp, 0)
		if err != nil {
			return err
		}
		log.Info("database schema current", "version", v)
	}
	db, err := store.Open(ctx, dbase.URL, log)
	if err != nil {
		return err
	}
	defer db.Close()

	// Background loops run until shutdown, after the HTTP server has
	// drained, so streams can finish with what the feed has.
	life := api.NewLifecycle(ctx, log)
	defer life.Wait()
	dbase.supervise(life.Context(), log)
	metrics := api.NewMetrics()
	cfg.api.Metrics = metrics
	seqOpts := store.SequencerOptions{Retention: cfg.retention, Interval: cfg.sequencerTick}
	metrics.Sequencer(&seqOpts)
	feedOpts := store.FeedOptions{}
	metrics.Feed(&feedOpts)
	seq := db.NewSequencer(seqOpts)
	cfg.api.Sequencer = seq
	feed := db.NewFeed(feedOpts)
	leases := db.NewLeases(cfg.leaseTTL)
	cfg.api.Leases = leases
	life.Go("sequencer", seq.Run)
	life.Go("feed", feed.Run)
	life.Go("leases", leases.Renew)

	srv := api.New(cfg.api, db, feed)
	mountWeb(srv)
	if cfg.extend != nil {
		loops, err := cfg.extend(ctx, srv, dbase.URL)
		if err != nil {
			return err
		}
		for _, loop := range loops {
			life.Go("extension", loop)
		}
	}
	hs := &http.Server{
		ReadHeaderTimeout: cfg.headerTimeout,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
		// No WriteTimeout: streams live for hours; each write has its
		// own deadline instead.
	}
	// serve does not wait for Ready: /readyz reports it to the load
	// balancer, and /healthz answers meanwhile.
	life.Start(srv, hs, ln, feed.Ready())
	fmt.Fprintf(stdout, "herald listening on http://%s\n", ln.Addr())
	if adminLn != nil {
		admin := &http.Server{Handler: srv.AdminHandler(), ReadHeaderTimeout: cfg.headerTimeout, ReadTimeout: 30 * time.Second, WriteTimeout: 30 * time.Second}
		go func() { _ = admin.Serve(adminLn) }()
		defer admin.Close()
		fmt.Fprintf(stdout, "herald admin listening on http://%s\n", adminLn.Addr())
	}
	if cfg.announce != nil {
		cfg.announce(stdout, ln.Addr())
	}
	log.Info("herald started", "addr", ln.Addr().String(), "embedded_postgres", dbase.opts.DataDir != "")

	select {
	case err := <-life.Failed():
		return fmt.Errorf("http server: %w", err)
	case <-ctx.Done():
	}
	log.Info("shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), cfg.shutdownTimeout)
	defer cancel()
	_ = life.Drain(sctx, cfg.shutdownTimeout) // logged by Drain
	return nil
}
