// Command herald-bench is herald's load generator. It drives a running
// herald, or nchan for comparison (bench/compare.sh runs both), and
// reports per run and as median and range over runs: latency from the
// publishing call's start to receipt, the server's CPU time per 1,000
// deliveries, Postgres's CPU time separately, memory per idle connection,
// and resume correctness. It is a command of its own so that none of it is
// compiled into the server binary.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "herald-bench:", err)
		stop()
		os.Exit(exitCode(err))
	}
}
