package main

import (
	"fmt"
	"io"

	"github.com/herald-dev/herald/api"
)

// version is `herald version`: which build is running, for bug reports and
// for checking a deployment (the same as /metrics' herald_build_info).
func version(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("version", stderr)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return &usageError{fmt.Sprintf("version takes no arguments, got %q", fs.Args())}
	}
	printBuild(stdout, api.ReadBuild())
	return nil
}

// printBuild writes b as `herald version` shows it.
func printBuild(w io.Writer, b api.Build) {
	rev := b.Revision
	if b.Modified {
		rev += " (modified)"
	}
	fmt.Fprintf(w, "herald %s\nmodule   %s\nrevision %s\n", b.Version, b.Module, rev)
	if b.Time != "" {
		fmt.Fprintf(w, "time     %s\n", b.Time)
	}
	fmt.Fprintf(w, "go       %s\n", b.GoVersion)
}
