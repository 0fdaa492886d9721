package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/herald-dev/herald/api"
)

// TestTokenCommand: `herald token` prints a token the server accepts, with
// the subject, channels and lifetime asked for; mistakes are usage errors.
func TestTokenCommand(t *testing.T) {
	secret := strings.Repeat("s", 32)
	var out, errOut bytes.Buffer
	err := run(context.Background(), []string{"token", "--sub", "user-7", "--channel", "private-project-*", "--channel", "builds", "--ttl", "10m"},
		env("HERALD_JWT_SECRET", secret), &out, &errOut)
	if err != nil {
		t.Fatalf("token: %v (%s)", err, errOut.String())
	}
	v, err := api.NewTokenVerifier([]byte(secret), nil)
	if err != nil {
		t.Fatal(err)
	}
	claims, err := v.Verify(strings.TrimSpace(out.String()))
	if err != nil {
		t.Fatalf("the server refuses the printed token: %v", err)
	}
	if claims.Subject != "user-7" || !claims.Grants("private-project-9876") || !claims.Grants("builds") || claims.Grants("private-build-1") {
		t.Fatalf("claims %+v", claims)
	}
	if left := time.Until(claims.ExpiresAt.Time); left < 9*time.Minute || left > 10*time.Minute+time.Second {
		t.Fatalf("token lives %v, want 10m", left)
	}
	for _, c := range []struct {
		args   []string
		secret string
		want   string
	}{
		{[]string{"token", "--channel", "a"}, "", "HERALD_JWT_SECRET"},
		{[]string{"token", "--channel", "a"}, "short", "at least 32 bytes"},
		{[]string{"token", "--sub", "u"}, secret, "--channel"},
		{[]string{"token", "--channel", "a b"}, secret, "a b"},
		{[]string{"token", "--channel", "a", "--ttl", "-1h"}, secret, "ttl"},
	} {
		err := run(context.Background(), c.args, env("HERALD_JWT_SECRET", c.secret), &out, &errOut)
		if err == nil || exitCode(err) != 2 || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: %v (exit %d), want a usage error mentioning %q", c.args, err, exitCode(err), c.want)
		}
	}
}
