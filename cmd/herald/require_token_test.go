package main

import (
	"net/http"
	"testing"
	"time"

	"github.com/herald-dev/herald/api"
	"github.com/herald-dev/herald/store/pgtest"
)

// TestRequireToken: with --require-token, public channels need a token
// too: no token is 401 token_required on stream, poll and history; a
// token granting the channel opens it; a token that does not grant it is
// 403 forbidden.
func TestRequireToken(t *testing.T) {
	secret := "require-token-test-secret-0123456789abc"
	base, _ := serveOn(t, pgtest.URL(t), "HERALD_REQUIRE_TOKEN", "true", "HERALD_JWT_SECRET", secret)
	paths := []string{"/v1/poll?channel=news", "/v1/channels/news/events", "/v1/stream?channel=news"}
	for _, p := range paths {
		do(t, "GET", base+p, "").wantError(t, p+" without a token", http.StatusUnauthorized, "token_required")
	}
	other, err := api.MintToken([]byte(secret), "user-2", []string{"sport"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range paths {
		do(t, "GET", base+p, "", "Authorization", "Bearer "+other).wantError(t, p+" with a token for another channel", http.StatusForbidden, "forbidden")
	}
	tok, err := api.MintToken([]byte(secret), "user-1", []string{"news"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range paths[:2] {
		if a := do(t, "GET", base+p, "", "Authorization", "Bearer "+tok); a.status != 200 {
			t.Fatalf("%s with a token granting news: %d %s", p, a.status, a.body)
		}
	}
}
