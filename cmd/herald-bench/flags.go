package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"path/filepath"

	"github.com/herald-dev/herald/embedpg"
)

// The command line works as herald's does (cmd/herald/config.go): every
// setting has a flag and, where herald has one, the same environment
// variable, and a mistake exits with status 2.

// usageError is a mistake on the command line: exit status 2.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func exitCode(err error) int {
	var u *usageError
	if errors.As(err, &u) || errors.Is(err, flag.ErrHelp) {
		return 2
	}
	return 1
}

// newFlags makes a FlagSet that reports errors instead of exiting.
func newFlags(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("herald-bench "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs
}

// envFlags binds flags whose defaults come from the environment.
type envFlags struct {
	fs     *flag.FlagSet
	getenv func(string) string
}

func (e *envFlags) String(p *string, name, env, def, help string) {
	if v := e.getenv(env); v != "" {
		def = v
	}
	e.fs.StringVar(p, name, def, fmt.Sprintf("%s [%s]", help, env))
}

// parse parses args and turns flag errors into usage errors.
func (e *envFlags) parse(args []string) error {
	if err := e.fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return &usageError{err.Error()}
	}
	return nil
}

// dbFlags locate herald's database, as herald's own commands do.
type dbFlags struct {
	databaseURL string
	dataDir     string
}

func (d *dbFlags) bind(e *envFlags) {
	e.String(&d.databaseURL, "database-url", "DATABASE_URL", "", "herald's PostgreSQL URL; unset: the embedded PostgreSQL of the herald serve running in --data-dir")
	e.String(&d.dataDir, "data-dir", "HERALD_DATA_DIR", ".herald", "herald's data directory (embedded PostgreSQL)")
}

// embeddedDB is the database herald serve creates in its embedded
// cluster (cmd/herald/database.go).
const embeddedDB = "herald"

// url is DATABASE_URL, or that of the embedded cluster a running herald
// serve keeps in the data directory; the bench never starts one.
func (d *dbFlags) url() (string, error) {
	if d.databaseURL != "" {
		return d.databaseURL, nil
	}
	dir, err := filepath.Abs(d.dataDir)
	if err != nil {
		return "", fmt.Errorf("data dir: %w", err)
	}
	if !embedpg.Running(dir) {
		return "", errors.New("no database: set DATABASE_URL, or start `herald serve` (which runs an embedded PostgreSQL in " + dir + ") first")
	}
	return embedpg.SocketURL(dir, embeddedDB), nil
}
