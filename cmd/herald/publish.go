package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"

	"github.com/herald-dev/herald"
)

// publish inserts one event exactly as an app would, which makes it the
// quickest way to see herald work and to script it.
func publish(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	var c commonFlags
	e := &envFlags{fs: newFlags("publish", stderr), getenv: getenv}
	c.bind(e)
	if err := e.parse(args); err != nil {
		return err
	}
	rest := e.fs.Args()
	var ev herald.NewEvent // Validate fills in the default type
	switch len(rest) {
	case 2:
		ev.Channel, ev.Data = rest[0], json.RawMessage(rest[1])
	case 3:
		ev.Channel, ev.Type, ev.Data = rest[0], rest[1], json.RawMessage(rest[2])
	default:
		return &usageError{`publish needs CHANNEL [TYPE] JSON, e.g. herald publish builds build.status '{"id":190852,"status":"STARTED"}'`}
	}
	if err := ev.Validate(); err != nil {
		return &usageError{err.Error()}
	}
	db, err := c.openStore(ctx, stderr)
	if err != nil {
		return err
	}
	defer db.Close()
	ids, err := db.Append(ctx, ev)
	if err != nil {
		return err
	}
	// The inbox id, not the seq: the seq is assigned at commit order by
	// the sequencer, an instant later.
	fmt.Fprintf(stdout, "published to %s (inbox id %d)\n", ev.Channel, ids[0])
	return nil
}
