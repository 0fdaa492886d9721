package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"

	"github.com/herald-dev/herald/store"
)

const embeddedDB = "herald"

// database is where herald's data lives: DATABASE_URL, or the embedded
// cluster in dataDir (started here when start is set and none is running).
type database struct {
	URL     string
	cluster *store.Cluster // nil unless this process started it
}

func (d *database) Close() error {
	if d.cluster == nil {
		return nil
	}
	return d.cluster.Stop()
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
	if store.ClusterRunning(dataDir) {
		return &database{URL: store.SocketURL(dataDir, embeddedDB)}, nil
	}
	if !start {
		return nil, errors.New("no database: set DATABASE_URL, or start `herald serve` (which runs an embedded PostgreSQL in " + dataDir + ") first")
	}
	c, err := store.StartCluster(ctx, store.ClusterOptions{DataDir: dataDir, Durable: true, Log: log})
	if err != nil {
		return nil, fmt.Errorf("embedded PostgreSQL (DATABASE_URL is unset): %w", err)
	}
	if err := c.CreateDatabase(ctx, embeddedDB); err != nil {
		_ = c.Stop()
		return nil, err
	}
	return &database{URL: c.URL(embeddedDB), cluster: c}, nil
}
