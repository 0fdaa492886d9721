package api_test

import (
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/herald-dev/herald/api"
)

// TestTokenClaims: the optional audience, issuer and lifetime checks, a
// future iat, and times that are not JSON numbers.
func TestTokenClaims(t *testing.T) {
	strict := api.TokenOptions{Audience: "herald.example", Issuer: "https://app.example", MaxLifetime: time.Hour}
	now := time.Now()
	base := func(more jwt.MapClaims) jwt.MapClaims {
		c := jwt.MapClaims{"sub": "u1", "iat": now.Unix(), "exp": now.Add(30 * time.Minute).Unix(),
			"aud": "herald.example", "iss": "https://app.example", "channels": []string{"private-a"}}
		for k, v := range more {
			if v == nil {
				delete(c, k)
				continue
			}
			c[k] = v
		}
		return c
	}
	cases := []struct {
		name   string
		opts   api.TokenOptions
		claims jwt.MapClaims
		code   string // "" for accepted
		reason string // in the message
	}{
		{"all checks pass", strict, base(nil), "", ""},
		{"aud as a list containing ours", strict, base(jwt.MapClaims{"aud": []string{"other", "herald.example"}}), "", ""},
		{"wrong audience", strict, base(jwt.MapClaims{"aud": "other.example"}), "invalid_token", "aud"},
		{"no audience", strict, base(jwt.MapClaims{"aud": nil}), "invalid_token", "missing"},
		{"audience not checked when unset", api.TokenOptions{}, base(jwt.MapClaims{"aud": "other.example"}), "", ""},
		{"wrong issuer", strict, base(jwt.MapClaims{"iss": "https://evil.example"}), "invalid_token", "iss"},
		{"no issuer", strict, base(jwt.MapClaims{"iss": nil}), "invalid_token", "missing"},
		{"issuer not checked when unset", api.TokenOptions{}, base(jwt.MapClaims{"iss": "https://evil.example"}), "", ""},
		{"lifetime over the maximum", strict, base(jwt.MapClaims{"exp": now.Add(2 * time.Hour).Unix()}), "invalid_token", "longer"},
		{"lifetime over the maximum, no iat", strict, base(jwt.MapClaims{"iat": nil, "exp": now.Add(2 * time.Hour).Unix()}), "invalid_token", "longer"},
		{"old iat, exp far out", strict, base(jwt.MapClaims{"iat": now.Add(-50 * time.Minute).Unix(), "exp": now.Add(50 * time.Minute).Unix()}), "invalid_token", "longer"},
		{"lifetime not checked when unset", api.TokenOptions{}, base(jwt.MapClaims{"exp": now.Add(48 * time.Hour).Unix()}), "", ""},
		{"iat in the future", api.TokenOptions{}, base(jwt.MapClaims{"iat": now.Add(time.Minute).Unix()}), "invalid_token", "iat"},
		{"iat within the leeway", api.TokenOptions{}, base(jwt.MapClaims{"iat": now.Add(2 * time.Second).Unix()}), "", ""},
		{"exp as a string", api.TokenOptions{}, base(jwt.MapClaims{"exp": "9999999999"}), "invalid_token", "exp must be a number"},
		{"iat as a string", api.TokenOptions{}, base(jwt.MapClaims{"iat": "1"}), "invalid_token", "iat must be a number"},
		{"exp missing", api.TokenOptions{}, base(jwt.MapClaims{"exp": nil}), "invalid_token", ""},
		{"expired", api.TokenOptions{}, base(jwt.MapClaims{"exp": now.Add(-time.Minute).Unix()}), "token_expired", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			v, err := api.NewTokenVerifierWith(authSecret, nil, c.opts)
			if err != nil {
				t.Fatal(err)
			}
			_, err = v.Verify(signed(t, jwt.SigningMethodHS256, authSecret, c.claims))
			if c.code == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			ae, ok := err.(*api.Error)
			if !ok || ae.Status() != 401 || ae.Code != c.code || !strings.Contains(ae.Message, c.reason) {
				t.Fatalf("got %v, want 401 %s mentioning %q", err, c.code, c.reason)
			}
		})
	}
}

// TestMintTokenWith: minted tokens carry a jti and pass a strict verifier.
func TestMintTokenWith(t *testing.T) {
	tok, err := api.MintTokenWith(authSecret, "u1", []string{"private-a"}, 10*time.Minute, api.MintOptions{Audience: "herald.example", Issuer: "app"})
	if err != nil {
		t.Fatal(err)
	}
	v, _ := api.NewTokenVerifierWith(authSecret, nil, api.TokenOptions{Audience: "herald.example", Issuer: "app", MaxLifetime: time.Hour})
	c, err := v.Verify(tok)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.ID) != 32 || c.Subject != "u1" {
		t.Fatalf("claims %+v: want a 32-hex-digit jti and sub u1", c.RegisteredClaims)
	}
}
