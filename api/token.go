package api

import (
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
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
	return MintTokenWith(secret, subject, channels, ttl, MintOptions{})
}

// MintOptions are the optional claims MintTokenWith sets.
type MintOptions struct {
	Audience string // aud, for servers that check it
	Issuer   string // iss, likewise
}

// MintTokenWith is MintToken with an audience and issuer. Every token gets
// a random jti, so that one token can be revoked on its own.
func MintTokenWith(secret []byte, subject string, channels []string, ttl time.Duration, opts MintOptions) (string, error) {
	if len(secret) == 0 {
		return "", errors.New("mint token: empty secret")
	}
	if ttl <= 0 {
		return "", errors.New("mint token: ttl must be positive")
	}
	id := make([]byte, 16)
	if _, err := rand.Read(id); err != nil {
		return "", fmt.Errorf("mint token: %w", err)
	}
	now := time.Now()
	claims := Claims{
		RegisteredClaims: jwt.RegisteredClaims{
			ID:        hex.EncodeToString(id),
			Subject:   subject,
			Issuer:    opts.Issuer,
			IssuedAt:  jwt.NewNumericDate(now),
			ExpiresAt: jwt.NewNumericDate(now.Add(ttl)),
		},
		Channels: channels,
	}
	if opts.Audience != "" {
		claims.Audience = jwt.ClaimStrings{opts.Audience}
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
	opts   TokenOptions
}

// TokenLeeway is the clock skew allowed between the app that mints tokens
// and herald, for exp, nbf and iat.
const TokenLeeway = 5 * time.Second

// TokenOptions are the optional claim checks, for deployments where other
// services share the signing key: a token meant for them (another aud or
// iss) or minted for a very long time is refused.
type TokenOptions struct {
	Audience    string        // if set, aud must contain it
	Issuer      string        // if set, iss must equal it
	MaxLifetime time.Duration // if set, exp - iat (or exp - now) must be at most this
}

// NewTokenVerifier builds a verifier; secret and keys may each be empty,
// not both.
func NewTokenVerifier(secret []byte, keys []crypto.PublicKey) (*TokenVerifier, error) {
	return NewTokenVerifierWith(secret, keys, TokenOptions{})
}

// NewTokenVerifierWith is NewTokenVerifier with claim checks.
func NewTokenVerifierWith(secret []byte, keys []crypto.PublicKey, opts TokenOptions) (*TokenVerifier, error) {
	v := &TokenVerifier{secret: secret, opts: opts}
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
	popts := []jwt.ParserOption{jwt.WithValidMethods(methods), jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(), jwt.WithLeeway(TokenLeeway)}
	if opts.Audience != "" {
		popts = append(popts, jwt.WithAudience(opts.Audience))
	}
	if opts.Issuer != "" {
		popts = append(popts, jwt.WithIssuer(opts.Issuer))
	}
	v.parser = jwt.NewParser(popts...)
	return v, nil
}

// Verify parses and checks raw; errors are *Error (401) for the client.
func (v *TokenVerifier) Verify(raw string) (*Claims, error) {
	claims := &Claims{}
	_, err := v.parser.ParseWithClaims(raw, claims, v.key)
	switch {
	case err == nil:
	case errors.Is(err, jwt.ErrTokenExpired):
		return nil, &Error{Code: "token_expired", Message: "the token has expired; get a new one and reconnect"}
	case errors.Is(err, jwt.ErrTokenUsedBeforeIssued):
		return nil, invalidToken("its iat (issued at) is in the future; check the minting host's clock")
	case errors.Is(err, jwt.ErrTokenInvalidAudience):
		return nil, invalidToken("its aud (audience) does not name this server")
	case errors.Is(err, jwt.ErrTokenInvalidIssuer):
		return nil, invalidToken("its iss (issuer) is not the one this server trusts")
	case errors.Is(err, jwt.ErrTokenRequiredClaimMissing):
		return nil, invalidToken("a required claim is missing (exp; aud and iss when this server checks them)")
	default:
		return nil, invalidToken("bad signature, algorithm or claims")
	}
	// The library also accepts times written as JSON strings ("exp":"9999999999").
	if err := numericTimes(raw); err != nil {
		return nil, invalidToken(err.Error())
	}
	if max := v.opts.MaxLifetime; max > 0 {
		from := time.Now()
		if claims.IssuedAt != nil {
			from = claims.IssuedAt.Time
		}
		if claims.ExpiresAt.Sub(from) > max+TokenLeeway || time.Until(claims.ExpiresAt.Time) > max+TokenLeeway {
			return nil, invalidToken(fmt.Sprintf("it is valid for longer than this server allows (%v); mint shorter-lived tokens", max))
		}
	}
	return claims, nil
}

func invalidToken(why string) *Error {
	return &Error{Code: "invalid_token", Message: "the token is not valid: " + why}
}

// numericTimes checks that exp, iat and nbf, where present, are JSON numbers.
func numericTimes(raw string) error {
	parts := strings.Split(raw, ".")
	if len(parts) != 3 {
		return errors.New("malformed")
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return errors.New("malformed payload")
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(payload, &m); err != nil {
		return errors.New("malformed payload")
	}
	for _, name := range []string{"exp", "iat", "nbf"} {
		b, ok := m[name]
		if !ok {
			continue
		}
		if len(b) == 0 || (b[0] != '-' && (b[0] < '0' || b[0] > '9')) {
			return fmt.Errorf("its %s must be a number (seconds since 1970)", name)
		}
	}
	return nil
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
