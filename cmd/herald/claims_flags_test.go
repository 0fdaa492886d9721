package main

import (
	"bytes"
	"context"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/herald-dev/herald/api"
)

// TestJWTClaimFlags: HERALD_JWT_AUDIENCE, HERALD_JWT_ISSUER and
// HERALD_JWT_MAX_LIFETIME reach the server's verifier, and `herald token`
// mints tokens that pass it (same variables) unless they live too long.
func TestJWTClaimFlags(t *testing.T) {
	secret := strings.Repeat("s", 32)
	vars := map[string]string{"HERALD_JWT_SECRET": secret, "HERALD_JWT_AUDIENCE": "herald.example",
		"HERALD_JWT_ISSUER": "https://app.example", "HERALD_JWT_MAX_LIFETIME": "1h",
		"HERALD_AUTH_URL": "http://127.0.0.1:1/auth", "HERALD_AUTH_MISS_RATE": "3", "HERALD_AUTH_CACHE_SIZE": "77"}
	getenv := func(k string) string { return vars[k] }
	cfg, log, err := parseServeFlags("serve", nil, getenv, io.Discard, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := cfg.auth.apply(&cfg.api, log); err != nil {
		t.Fatal(err)
	}
	auth := cfg.api.Authorizer.(*api.ChannelAuth)
	if app := auth.App.(*api.AuthURL); app.MissRate != 3 || app.MissBurst != 20 || app.CacheSize != 77 {
		t.Fatalf("auth URL settings %+v", app)
	}
	if cfg.api.RevocationTTL != time.Hour+time.Minute {
		t.Fatalf("revocation TTL %v, want the max token lifetime + 1 min", cfg.api.RevocationTTL)
	}
	mintCLI := func(ttl string, vars map[string]string) string {
		var out, errOut bytes.Buffer
		if err := run(context.Background(), []string{"token", "--sub", "u", "--channel", "private-a", "--ttl", ttl},
			func(k string) string { return vars[k] }, &out, &errOut); err != nil {
			t.Fatalf("token: %v %s", err, errOut.String())
		}
		return strings.TrimSpace(out.String())
	}
	if _, err := auth.Tokens.Verify(mintCLI("30m", vars)); err != nil {
		t.Fatalf("a token minted with the same settings: %v", err)
	}
	for name, tok := range map[string]string{
		"too long":    mintCLI("2h", vars),
		"no audience": mintCLI("30m", map[string]string{"HERALD_JWT_SECRET": secret, "HERALD_JWT_ISSUER": "https://app.example"}),
		"no issuer":   mintCLI("30m", map[string]string{"HERALD_JWT_SECRET": secret, "HERALD_JWT_AUDIENCE": "herald.example"}),
	} {
		if _, err := auth.Tokens.Verify(tok); err == nil {
			t.Errorf("%s: accepted, want refused", name)
		}
	}
}
