package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
)

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

const usage = `herald — server-sent-events-first notifications from a Postgres event log

Usage:
  herald [serve] [flags]             run the server (default)
  herald demo [flags]                the server plus a live CI dashboard demo at /
  herald migrate up|down|version|force N
  herald publish CHANNEL [TYPE] JSON insert one event (as an app would)
  herald tail [--from N] CHANNEL...  print notices as they arrive, one JSON line each
  herald token --sub U --channel C... [--ttl 1h]  print a token for HERALD_JWT_SECRET
  herald revoke --jti ID | --sub U [--ttl 24h]   revoke tokens on every replica
  herald health [URL]                exit 0 if URL (default http://127.0.0.1:8080/readyz) answers 200
  herald version                     print the module version, VCS revision and Go version

Run "herald COMMAND -h" for a command's flags. Every flag can also be set
in the environment (shown in brackets).
`

// run is herald's whole program: main only wires it to the process. Only
// cmd reads the environment, through getenv.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	cmd := "serve"
	// "-h"/"--help" alone ask for this usage, not serve's flags.
	if len(args) > 0 && (!strings.HasPrefix(args[0], "-") || args[0] == "-h" || args[0] == "--help") {
		cmd, args = args[0], args[1:]
	}
	switch cmd {
	case "serve":
		return serve(ctx, args, getenv, stdout, stderr)
	case "demo":
		return demoCmd(ctx, args, getenv, stdout, stderr)
	case "migrate":
		return migrate(ctx, args, getenv, stdout, stderr)
	case "publish":
		return publish(ctx, args, getenv, stdout, stderr)
	case "tail":
		return tail(ctx, args, getenv, stdout, stderr)
	case "token":
		return token(ctx, args, getenv, stdout, stderr)
	case "revoke":
		return revoke(ctx, args, getenv, stdout, stderr)
	case "health":
		return health(ctx, args, stdout)
	case "version":
		return version(args, stdout, stderr)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	default:
		fmt.Fprint(stderr, usage)
		return &usageError{fmt.Sprintf("unknown command %q", cmd)}
	}
}

// newFlags makes a FlagSet that reports errors instead of exiting.
func newFlags(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("herald "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs
}

// parseFlags parses and turns flag errors into usage errors.
func parseFlags(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return &usageError{err.Error()}
	}
	return nil
}

// envDefault is the environment's value for key, or def.
func envDefault(getenv func(string) string, key, def string) string {
	if v := getenv(key); v != "" {
		return v
	}
	return def
}
