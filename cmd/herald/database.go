package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"sync"
	"time"

	"github.com/herald-dev/herald/embedpg"
	"github.com/herald-dev/herald/store"
)

const embeddedDB = "herald"

// database is where herald's data lives: DATABASE_URL, or the embedded
// cluster in dataDir (started here when start is set and none is running).
type database struct {
	URL string

	mu      sync.Mutex
	cluster *embedpg.Cluster // nil unless this process started it
	opts    embedpg.Options
	stop    chan struct{} // closed by Close: no more restarts
	watched chan struct{} // closed when supervise returns
}

// Close stops the embedded cluster, if this process started one.
func (d *database) Close() error {
	d.mu.Lock()
	if d.stop != nil {
		close(d.stop)
	}
	watched := d.watched
	d.mu.Unlock()
	if watched != nil {
		<-watched
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.cluster == nil {
		return nil
	}
	return d.cluster.Stop()
}

// supervise restarts the embedded PostgreSQL if it exits while herald
// runs (killed, crashed, OOM): the feed and the sequencer reconnect and
// catch up on their own, so clients see a pause, not a loss. It returns
// when ctx ends or Close is called.
func (d *database) supervise(ctx context.Context, log *slog.Logger) {
	d.mu.Lock()
	if d.cluster == nil || d.watched != nil {
		d.mu.Unlock()
		return
	}
	d.stop, d.watched = make(chan struct{}), make(chan struct{})
	stop, watched := d.stop, d.watched
	d.mu.Unlock()
	go func() {
		defer close(watched)
		delay := time.Second
		for {
			d.mu.Lock()
			c := d.cluster
			d.mu.Unlock()
			select {
			case <-ctx.Done():
				return
			case <-stop:
				return
			case <-c.Exited():
			}
			log.Error("embedded PostgreSQL exited; restarting it", "dir", c.Dir())
			for {
				nc, err := embedpg.Start(ctx, d.opts)
				if err == nil {
					d.mu.Lock()
					d.cluster = nc
					d.mu.Unlock()
					delay = time.Second
					break
				}
				log.Error("restart embedded PostgreSQL", "err", err, "retry_in", delay)
				select {
				case <-ctx.Done():
					return
				case <-stop:
					return
				case <-time.After(delay):
				}
				delay = min(2*delay, 30*time.Second)
			}
		}
	}()
}

// openDatabase picks the database. With DATABASE_URL unset, herald runs a
// private PostgreSQL from the local installation in dataDir, so a new user
// needs no configuration at all.
func openDatabase(ctx context.Context, url, dataDir string, start bool, log *slog.Logger) (*database, error) {
	if url != "" {
		return &database{URL: url}, nil
	}
	dataDir, err := filepath.Abs(dataDir)
	if err != nil {
		return nil, fmt.Errorf("data dir: %w", err)
	}
	if embedpg.Running(dataDir) {
		return &database{URL: embedpg.SocketURL(dataDir, embeddedDB)}, nil
	}
	if !start {
		return nil, errors.New("no database: set DATABASE_URL, or start `herald serve` (which runs an embedded PostgreSQL in " + dataDir + ") first")
	}
	opts := embedpg.Options{DataDir: dataDir, Durable: true, Log: log}
	c, err := embedpg.Start(ctx, opts)
	if err != nil {
		return nil, fmt.Errorf("embedded PostgreSQL (DATABASE_URL is unset): %w", err)
	}
	if err := c.CreateDatabase(ctx, embeddedDB); err != nil {
		_ = c.Stop()
		return nil, err
	}
	return &database{URL: c.URL(embeddedDB), cluster: c, opts: opts}, nil
}

// openStore opens the database a one-shot command (publish, revoke) works
// on: DATABASE_URL, or the embedded cluster's data directory (not started
// here), with a logger from the command's flags.
func (c *commonFlags) openStore(ctx context.Context, stderr io.Writer) (*store.DB, error) {
	log, err := newLogger(stderr, c.logLevel, c.logFormat)
	if err != nil {
		return nil, err
	}
	d, err := openDatabase(ctx, c.databaseURL, c.dataDir, false, log)
	if err != nil {
		return nil, err
	}
	return store.Open(ctx, d.URL, log)
}
