// Command herald is a server-sent-events-first notification service with a
// long-poll fallback, fed by a Postgres event log. See the README.
package main

import (
	"context"
	"io"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var stdout, stderr io.Writer = os.Stdout, os.Stderr
	jsonMode := jsonLogRequested(os.Args[1:], os.Getenv)
	if jsonMode {
		stdout, stderr = newJSONLines(os.Stdout), newJSONLines(os.Stderr)
	}
	if err := run(ctx, os.Args[1:], os.Getenv, stdout, stderr); err != nil {
		printError(os.Stderr, err, jsonMode)
		stop()
		os.Exit(exitCode(err))
	}
}
