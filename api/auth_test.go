package api_test

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/herald-dev/herald/api"
	"github.com/herald-dev/herald/api/apitest"
)

var authSecret = []byte("test-secret-that-is-at-least-32-bytes-long")

// authEnv runs herald with HS256 tokens on authSecret.
func authEnv(t *testing.T, cfg api.Config) *apitest.Env {
	t.Helper()
	v, err := api.NewTokenVerifier(authSecret, nil)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Authorizer == nil {
		cfg.Authorizer = &api.ChannelAuth{Tokens: v}
	}
	return apitest.Start(t, apitest.Options{API: cfg})
}

func mint(t *testing.T, sub string, ttl time.Duration, channels ...string) string {
	t.Helper()
	tok, err := api.MintToken(authSecret, sub, channels, ttl)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// signed builds a token with any claims, method and key (for the attacks).
func signed(t *testing.T, m jwt.SigningMethod, key any, claims jwt.MapClaims) string {
	t.Helper()
	s, err := jwt.NewWithClaims(m, claims).SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// transports are the three ways to read a channel; each must apply the
// same rules (one authorisation function).
var transports = []struct {
	name string
	path func(ch string) string
}{
	{"stream", func(ch string) string { return "/v1/stream?channel=" + url.QueryEscape(ch) }},
	{"poll", func(ch string) string { return "/v1/poll?channel=" + url.QueryEscape(ch) }},
	{"history", func(ch string) string { return "/v1/channels/" + url.PathEscape(ch) + "/events" }},
}

// status opens path with the request changes in mod and returns the status
// and error code (for 200 streams, without waiting for the stream to end).
func status(t *testing.T, base, path string, mod func(*http.Request)) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+path, nil)
	if mod != nil {
		mod(req)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusOK {
		return resp.StatusCode, ""
	}
	var body struct {
		Error struct{ Code, Message string } `json:"error"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil || body.Error.Code == "" || body.Error.Message == "" {
		t.Fatalf("GET %s: %d without a JSON error body (%v)", path, resp.StatusCode, err)
	}
	return resp.StatusCode, body.Error.Code
}

func bearerHeader(tok string) func(*http.Request) {
	return func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+tok) }
}

func TestTokenRulesSameForEveryTransport(t *testing.T) {
	env := authEnv(t, api.Config{})
	const ch = "private-build-190852"
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	cases := []struct {
		name   string
		ch     string
		mod    func(*http.Request)
		status int
		code   string
	}{
		{"public channel, no token", "builds", nil, 200, ""},
		{"private, no token", ch, nil, 401, "token_required"},
		{"private, exact grant", ch, bearerHeader(mint(t, "u1", time.Hour, ch)), 200, ""},
		{"private, pattern grant", ch, bearerHeader(mint(t, "u1", time.Hour, "private-build-*")), 200, ""},
		{"private, other channel", ch, bearerHeader(mint(t, "u1", time.Hour, "private-build-1")), 403, "forbidden"},
		{"pattern does not over-match", "private-project-9", bearerHeader(mint(t, "u1", time.Hour, "private-build-*")), 403, "forbidden"},
		{"query token", ch, func(r *http.Request) {
			q := r.URL.Query()
			q.Set("token", mint(t, "u1", time.Hour, ch))
			r.URL.RawQuery = q.Encode()
		}, 200, ""},
		{"cookie token", ch, func(r *http.Request) {
			r.AddCookie(&http.Cookie{Name: "herald_token", Value: mint(t, "u1", time.Hour, ch)})
		}, 200, ""},
		{"expired", ch, bearerHeader(signed(t, jwt.SigningMethodHS256, authSecret, jwt.MapClaims{
			"sub": "u1", "exp": now.Add(-time.Minute).Unix(), "channels": []string{ch}})), 401, "token_expired"},
		{"no exp", ch, bearerHeader(signed(t, jwt.SigningMethodHS256, authSecret, jwt.MapClaims{
			"sub": "u1", "channels": []string{ch}})), 401, "invalid_token"},
		{"tampered signature", ch, bearerHeader(mint(t, "u1", time.Hour, ch)[:20] + "x" + mint(t, "u1", time.Hour, ch)[21:]), 401, "invalid_token"},
		{"wrong secret", ch, bearerHeader(signed(t, jwt.SigningMethodHS256, []byte("another-secret-another-secret-another"), jwt.MapClaims{
			"sub": "u1", "exp": now.Add(time.Hour).Unix(), "channels": []string{ch}})), 401, "invalid_token"},
		{"alg none", ch, bearerHeader(signed(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, jwt.MapClaims{
			"sub": "u1", "exp": now.Add(time.Hour).Unix(), "channels": []string{ch}})), 401, "invalid_token"},
		{"RS256 when only HS256 is configured", ch, bearerHeader(signed(t, jwt.SigningMethodRS256, rsaKey, jwt.MapClaims{
			"sub": "u1", "exp": now.Add(time.Hour).Unix(), "channels": []string{ch}})), 401, "invalid_token"},
		{"garbage", ch, bearerHeader("not.a.token"), 401, "invalid_token"},
		{"bad token on a public channel", "builds", bearerHeader("not.a.token"), 401, "invalid_token"},
	}
	for _, tr := range transports {
		for _, c := range cases {
			t.Run(tr.name+"/"+c.name, func(t *testing.T) {
				st, code := status(t, env.URL, tr.path(c.ch), c.mod)
				if st != c.status || code != c.code {
					t.Fatalf("got %d %q, want %d %q", st, code, c.status, c.code)
				}
			})
		}
	}
}

// TestAlgorithmConfusionRejected: with an RS256 public key configured, an
// HS256 token whose HMAC key is that public key must not verify.
func TestAlgorithmConfusionRejected(t *testing.T) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	der, _ := x509.MarshalPKIXPublicKey(&key.PublicKey)
	pemKey := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
	keys, err := api.ParsePublicKeys(pemKey)
	if err != nil {
		t.Fatal(err)
	}
	v, err := api.NewTokenVerifier(nil, keys)
	if err != nil {
		t.Fatal(err)
	}
	env := apitest.Start(t, apitest.Options{API: api.Config{Authorizer: &api.ChannelAuth{Tokens: v}}})
	const ch = "private-x"
	claims := jwt.MapClaims{"sub": "u", "exp": time.Now().Add(time.Hour).Unix(), "channels": []string{ch}}
	good := signed(t, jwt.SigningMethodRS256, key, claims)
	confused := signed(t, jwt.SigningMethodHS256, pemKey, claims)
	if st, code := status(t, env.URL, "/v1/poll?channel="+ch, bearerHeader(good)); st != 200 {
		t.Fatalf("genuine RS256 token: %d %s", st, code)
	}
	if st, code := status(t, env.URL, "/v1/poll?channel="+ch, bearerHeader(confused)); st != 401 || code != "invalid_token" {
		t.Fatalf("HS256 token keyed with the RSA public key: %d %s, want 401 invalid_token", st, code)
	}
}

// TestStreamClosesAtTokenExpiry: the server ends the stream at exp, so the
// client must renew its token and resume by cursor.
func TestStreamClosesAtTokenExpiry(t *testing.T) {
	env := authEnv(t, api.Config{Heartbeat: time.Hour})
	const ch = "private-build-1"
	exp := time.Now().Add(2 * time.Second).Truncate(time.Second).Add(time.Second)
	tok := signed(t, jwt.SigningMethodHS256, authSecret, jwt.MapClaims{"sub": "u", "exp": exp.Unix(), "channels": []string{ch}})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, env.URL+"/v1/stream?channel="+ch, nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	_, err = io.Copy(io.Discard, resp.Body) // returns when the server ends the stream
	ended := time.Now()
	if ctx.Err() != nil {
		t.Fatalf("stream still open 60 s after a token expiring at %v", exp)
	}
	if err != nil {
		t.Fatalf("stream ended with %v, want a clean end", err)
	}
	if ended.Before(exp.Add(-100 * time.Millisecond)) {
		t.Fatalf("stream ended at %v, before the token's exp %v", ended, exp)
	}
	// Nothing else ends this stream (heartbeat an hour away, no max
	// lifetime): ending within 20 s of exp (it is expected within
	// milliseconds; 20 s is generous for a loaded machine) proves the
	// expiry ended it.
	if ended.After(exp.Add(20 * time.Second)) {
		t.Fatalf("stream ended %v after exp", ended.Sub(exp))
	}
}

// readSSEStart reads up to the first blank line (the retry: preamble).
func readSSEStart(t *testing.T, r io.Reader) {
	t.Helper()
	br := bufio.NewReader(r)
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatalf("stream preamble: %v", err)
		}
		if strings.TrimSpace(line) == "" {
			return
		}
	}
}
