package main

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/herald-dev/herald/api"
	"github.com/herald-dev/herald/store/pgtest"
)

// TestEdDSATokens: with only --jwt-public-keys (a PEM file of Ed25519
// public keys, no HS256 secret), an EdDSA token with sub, exp and channels
// opens the private channels it grants and its stream delivers; tokens
// signed by another key, or HS256 tokens, are 401 invalid_token.
func TestEdDSATokens(t *testing.T) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(t.TempDir(), "keys.pem")
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	dbURL := pgtest.URL(t)
	base, _ := serveOn(t, dbURL, "HERALD_JWT_PUBLIC_KEYS", keyFile)
	pool, err := pgxpool.New(context.Background(), dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()

	sign := func(key ed25519.PrivateKey) string {
		t.Helper()
		tok, err := jwt.NewWithClaims(jwt.SigningMethodEdDSA, api.Claims{
			RegisteredClaims: jwt.RegisteredClaims{Subject: "user-ed", ExpiresAt: jwt.NewNumericDate(time.Now().Add(time.Hour))},
			Channels:         []string{"private-ed-*"},
		}).SignedString(key)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	good := sign(priv)

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	resp := openSSE(t, ctx, base+"/v1/stream?channel=private-ed-1&token="+good, "Last-Event-ID", "0")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("stream with an EdDSA token: %s %s", resp.Status, answerOf(t, resp).body)
	}
	insertN(t, pool, "private-ed-1", 1)
	var s rawStream
	if err := s.read(resp.Body, 1); err != nil || len(s.ids) != 1 {
		t.Fatalf("EdDSA stream: %v, got %v", err, s.ids)
	}
	if a := do(t, "GET", base+"/v1/poll?channel=private-ed-2", "", "Authorization", "Bearer "+good); a.status != 200 {
		t.Fatalf("poll with an EdDSA token: %d %s", a.status, a.body)
	}
	do(t, "GET", base+"/v1/poll?channel=private-other", "", "Authorization", "Bearer "+good).
		wantError(t, "EdDSA token for a channel it does not grant", http.StatusForbidden, "forbidden")

	_, otherKey, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	do(t, "GET", base+"/v1/poll?channel=private-ed-2", "", "Authorization", "Bearer "+sign(otherKey)).
		wantError(t, "EdDSA token signed by an unknown key", http.StatusUnauthorized, "invalid_token")
	hs, err := api.MintToken([]byte("some-hs256-secret-0123456789abcdefghij"), "user-ed", []string{"private-ed-*"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	do(t, "GET", base+"/v1/poll?channel=private-ed-2", "", "Authorization", "Bearer "+hs).
		wantError(t, "HS256 token on a server with only public keys", http.StatusUnauthorized, "invalid_token")
}
