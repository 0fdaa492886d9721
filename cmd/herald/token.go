package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/herald-dev/herald/api"
)

// channelList collects repeated --channel flags.
type channelList []string

func (c *channelList) String() string     { return strings.Join(*c, ",") }
func (c *channelList) Set(v string) error { *c = append(*c, v); return nil }

// token prints a token for HERALD_JWT_SECRET: for scripts, the CLI, and
// trying private channels by hand. Apps mint their own with api.MintToken.
func token(_ context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	var secret, sub, aud, iss string
	var ttl time.Duration
	var channels channelList
	e := &envFlags{fs: newFlags("token", stderr), getenv: getenv}
	e.String(&secret, "jwt-secret", "HERALD_JWT_SECRET", "", "HS256 secret the server verifies with")
	e.String(&aud, "jwt-audience", "HERALD_JWT_AUDIENCE", "", "aud claim, for a server that checks it")
	e.String(&iss, "jwt-issuer", "HERALD_JWT_ISSUER", "", "iss claim, for a server that checks it")
	e.fs.StringVar(&sub, "sub", "", "subject (the user id)")
	e.fs.DurationVar(&ttl, "ttl", time.Hour, "lifetime")
	e.fs.Var(&channels, "channel", "channel or segment wildcard such as private-project-* the token grants (repeatable)")
	if err := e.parse(args); err != nil {
		return err
	}
	channels = append(channels, e.fs.Args()...)
	if secret == "" {
		return &usageError{"token needs HERALD_JWT_SECRET (or --jwt-secret): the server's shared secret"}
	}
	if len(secret) < 32 {
		return &usageError{"HERALD_JWT_SECRET must be at least 32 bytes"}
	}
	if len(channels) == 0 {
		return &usageError{"token needs at least one --channel"}
	}
	for _, ch := range channels {
		if err := api.ValidateGrant(ch); err != nil {
			return &usageError{fmt.Sprintf("--channel: %v", err)}
		}
	}
	if ttl <= 0 {
		return &usageError{"--ttl must be positive"}
	}
	t, err := api.MintTokenWith([]byte(secret), sub, channels, ttl, api.MintOptions{Audience: aud, Issuer: iss})
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, t)
	return nil
}
