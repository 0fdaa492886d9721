package main

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/herald-dev/herald"
	"github.com/herald-dev/herald/client"
)

// tail prints notices as they arrive, one JSON line each (the same object
// the stream's data: carries), and connection states on stderr.
func tail(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	var url, from, token string
	e := &envFlags{fs: newFlags("tail", stderr), getenv: getenv}
	e.String(&url, "url", "HERALD_URL", "http://127.0.0.1:8080", "herald's base URL")
	e.String(&token, "token", "HERALD_TOKEN", "", "bearer token for private channels")
	e.fs.StringVar(&from, "from", "", "resume after this cursor (an \"id\" printed earlier, \"<epoch>.<seq>\")")
	if err := e.parse(args); err != nil {
		return err
	}
	channels := e.fs.Args()
	if len(channels) == 0 {
		return &usageError{"tail needs at least one channel"}
	}
	var cursor herald.Cursor
	if from != "" {
		c, err := herald.ParseCursor(from)
		if err != nil {
			return &usageError{fmt.Sprintf("--from %q: want a cursor, an id printed earlier (\"<epoch>.<seq>\", or a whole number >= 0)", from)}
		}
		cursor = c
	}
	err := client.Subscribe(ctx, url, channels, cursor, func(m client.Message) error {
		switch {
		case m.Event != nil:
			_, err := fmt.Fprintf(stdout, "%s\n", m.Event.JSON())
			return err
		case m.Reset != nil:
			_, err := fmt.Fprintf(stdout, "{\"reset\":{\"cursor\":\"%s\"}}\n", m.Reset.Cursor)
			return err
		case m.State != nil:
			if m.State.Err != nil {
				fmt.Fprintf(stderr, "herald tail: %s: %v\n", m.State.State, m.State.Err)
			} else {
				fmt.Fprintf(stderr, "herald tail: %s\n", m.State.State)
			}
		}
		return nil
	}, client.Options{Token: token})
	if errors.Is(err, context.Canceled) && ctx.Err() != nil {
		return nil
	}
	return err
}
