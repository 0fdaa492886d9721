package main

import (
	"context"
	"fmt"
	"io"
	"strconv"

	"github.com/herald-dev/herald/store"
)

func migrate(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	var c commonFlags
	e := &envFlags{fs: newFlags("migrate", stderr), getenv: getenv}
	c.bind(e)
	if err := e.parse(args); err != nil {
		return err
	}
	rest := e.fs.Args()
	if len(rest) == 0 {
		return &usageError{"migrate needs a command: up, down, version or force N"}
	}
	cmd, arg := store.MigrateCommand(rest[0]), 0
	switch {
	case cmd == store.MigrateForce && len(rest) == 2:
		n, err := strconv.Atoi(rest[1])
		if err != nil || n < -1 {
			return &usageError{fmt.Sprintf("migrate force: %q is not a version", rest[1])}
		}
		arg = n
	case (cmd == store.MigrateUp || cmd == store.MigrateDown || cmd == store.MigrateVersion) && len(rest) == 1:
	default:
		return &usageError{fmt.Sprintf("migrate %q: want up, down, version or force N", rest)}
	}
	log, err := newLogger(stderr, c.logLevel, c.logFormat)
	if err != nil {
		return err
	}
	// Migrating an embedded database that is not running starts it for
	// the duration of the command.
	d, err := openDatabase(ctx, c.databaseURL, c.dataDir, true, log)
	if err != nil {
		return err
	}
	defer d.Close()
	v, err := store.Migrate(ctx, d.URL, cmd, arg)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "schema version %d\n", v)
	return nil
}
