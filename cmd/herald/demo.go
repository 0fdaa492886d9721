package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/herald-dev/herald/api"
	"github.com/herald-dev/herald/demo"
)

// demoCmd is `herald demo`: herald serve plus the demo app (package demo):
// a CI dashboard at /, its JSON API under /demo/, and a simulator moving
// builds along, each change and its notice written in one transaction.
func demoCmd(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	var pace time.Duration
	cfg, log, err := parseServeFlags("demo", args, getenv, stderr, func(e *envFlags) {
		e.Duration(&pace, "pace", "HERALD_DEMO_PACE", 1500*time.Millisecond, "average time between two simulated build changes (0: no simulator)")
	})
	if err != nil {
		return err
	}
	// The demo always signs with a random secret of its own, never
	// HERALD_JWT_SECRET: /demo/token hands a token to anyone who asks,
	// and production herald must not honour those.
	if cfg.auth.jwtSecret != "" {
		log.Warn("herald demo ignores HERALD_JWT_SECRET (--jwt-secret): its tokens are signed with a random secret of its own")
	}
	b := make([]byte, 32)
	rand.Read(b)
	cfg.auth.jwtSecret = hex.EncodeToString(b)
	if err := cfg.auth.apply(&cfg.api, log); err != nil {
		return err
	}
	secret := []byte(cfg.auth.jwtSecret)
	cfg.extend = func(ctx context.Context, srv *api.Server, dbURL string) ([]func(context.Context) error, error) {
		d, err := demo.Setup(ctx, dbURL, demo.Options{Secret: secret, Pace: pace, Log: log})
		if err != nil {
			return nil, err
		}
		h := gin.WrapH(d.Handler())
		srv.Engine().GET("/", h)
		srv.Engine().GET("/demo/*path", h)
		return []func(context.Context) error{func(ctx context.Context) error {
			defer d.Close() // after the HTTP server has drained: the API is done with the pool
			return d.Run(ctx)
		}}, nil
	}
	cfg.announce = func(w io.Writer, addr net.Addr) {
		fmt.Fprintf(w, "herald demo: open http://%s/ in a browser\n", addr)
	}
	return serveWith(ctx, cfg, log, stdout)
}
