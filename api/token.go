package api

import (
	"crypto"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Claims are what a herald token says: who (sub), until when (exp), and
// which channels (exact names, or segment wildcards: see MatchGrant).
type Claims struct {
	jwt.RegisteredClaims
	Channels []string `json:"channels"`
}

// Grants reports whether the claims cover channel.
func (c *Claims) Grants(channel string) bool {
	for _, p := range c.Channels {
		if MatchGrant(p, channel) {
			return true
		}
	}
	return false
}

// MintToken signs an HS256 token for subject granting channels for ttl.
// Apps call it (or `herald token`) to hand tokens to their users.
func MintToken(secret []byte, subject string, channels []string, ttl time.Duration) (string, error) {
	if len(secret) == 0 {
		return "", errors.New("mint token: empty secret")
	}
	if ttl <= 0 {
		return "", errors.New("mint token: ttl must be positive")
	}
	now := time.Now()
	claims := Claims{
		RegisteredClaims: jwt.RegisteredClaims{
			Subject:   subject,
			IssuedAt:  jwt.NewNumericDate(now),
			ExpiresAt: jwt.NewNumericDate(now.Add(ttl)),
		},
		Channels: channels,
	}
	return jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString(secret)
}

// TokenVerifier checks herald tokens: HS256 with the shared secret, and
// EdDSA or RS256 with the configured public keys. Each key only verifies
// its own algorithm family, which is what defeats algorithm confusion (an
// HS256 token "signed" with an RSA public key finds no HMAC key).
type TokenVerifier struct {
	secret []byte
	ed     jwt.VerificationKeySet // EdDSA keys
	rsa    jwt.VerificationKeySet // RS256 keys
	parser *jwt.Parser
}

// NewTokenVerifier builds a verifier; secret and keys may each be empty,
// not both.
func NewTokenVerifier(secret []byte, keys []crypto.PublicKey) (*TokenVerifier, error) {
	v := &TokenVerifier{secret: secret}
	var methods []string
	if len(secret) > 0 {
		if len(secret) < 32 {
			return nil, errors.New("HERALD_JWT_SECRET must be at least 32 bytes")
		}
		methods = append(methods, "HS256")
	}
	for _, k := range keys {
		switch k := k.(type) {
		case ed25519.PublicKey:
			v.ed.Keys = append(v.ed.Keys, k)
		case *rsa.PublicKey:
			if k.N.BitLen() < 2048 {
				return nil, fmt.Errorf("RSA public key of %d bits: want at least 2048", k.N.BitLen())
			}
			v.rsa.Keys = append(v.rsa.Keys, k)
		default:
			return nil, fmt.Errorf("unsupported public key type %T (want Ed25519 or RSA)", k)
		}
	}
	if len(v.ed.Keys) > 0 {
		methods = append(methods, "EdDSA")
	}
	if len(v.rsa.Keys) > 0 {
		methods = append(methods, "RS256")
	}
	if len(methods) == 0 {
		return nil, errors.New("token verifier needs a secret or public keys")
	}
	v.parser = jwt.NewParser(jwt.WithValidMethods(methods), jwt.WithExpirationRequired(), jwt.WithLeeway(5*time.Second))
	return v, nil
}

// Verify parses and checks raw; errors are *Error (401) for the client.
func (v *TokenVerifier) Verify(raw string) (*Claims, error) {
	claims := &Claims{}
	_, err := v.parser.ParseWithClaims(raw, claims, v.key)
	switch {
	case err == nil:
		return claims, nil
	case errors.Is(err, jwt.ErrTokenExpired):
		return nil, &Error{Status: http.StatusUnauthorized, Code: "token_expired", Message: "the token has expired; get a new one and reconnect"}
	default:
		return nil, &Error{Status: http.StatusUnauthorized, Code: "invalid_token", Message: "the token is not valid (bad signature, algorithm or claims)"}
	}
}

func (v *TokenVerifier) key(t *jwt.Token) (any, error) {
	switch t.Method.(type) {
	case *jwt.SigningMethodHMAC:
		if len(v.secret) > 0 {
			return v.secret, nil
		}
	case *jwt.SigningMethodEd25519:
		return v.ed, nil
	case *jwt.SigningMethodRSA:
		return v.rsa, nil
	}
	return nil, fmt.Errorf("no key for algorithm %v", t.Header["alg"])
}

// ParsePublicKeys reads PEM "PUBLIC KEY" blocks (PKIX: Ed25519 or RSA).
func ParsePublicKeys(pemData []byte) ([]crypto.PublicKey, error) {
	var keys []crypto.PublicKey
	for {
		var b *pem.Block
		b, pemData = pem.Decode(pemData)
		if b == nil {
			break
		}
		if b.Type != "PUBLIC KEY" {
			return nil, fmt.Errorf("PEM block %q: want PUBLIC KEY", b.Type)
		}
		k, err := x509.ParsePKIXPublicKey(b.Bytes)
		if err != nil {
			return nil, fmt.Errorf("parse public key: %w", err)
		}
		keys = append(keys, k)
	}
	if len(keys) == 0 {
		return nil, errors.New("no PEM PUBLIC KEY block found")
	}
	return keys, nil
}

// bearer finds the token: Authorization header, ?token=, or the
// herald_token cookie (in that order).
func bearer(r *http.Request) string {
	if h := r.Header.Get("Authorization"); len(h) > 7 && strings.EqualFold(h[:7], "bearer ") {
		return strings.TrimSpace(h[7:])
	}
	if t := r.URL.Query().Get("token"); t != "" {
		return t
	}
	if c, err := r.Cookie("herald_token"); err == nil {
		return c.Value
	}
	return ""
}
