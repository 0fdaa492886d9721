package api

import (
	"crypto/subtle"
	"errors"
	"fmt"
	"net/http"
	"strings"
)

// MinAPIKeyLen is the shortest server key herald accepts: 32 bytes, like
// HERALD_JWT_SECRET, so a key cannot be guessed online.
const MinAPIKeyLen = 32

// apiKey is a server key and, optionally, the channels it may publish to.
type apiKey struct {
	key   []byte
	scope []string // grant patterns (MatchGrant); none: any channel
}

// parseAPIKey reads one HERALD_API_KEYS entry: "KEY" (any channel) or
// "KEY:PATTERN|PATTERN..." (only channels the patterns cover, with the
// token grant syntax: exact names or segment wildcards like "builds-*").
func parseAPIKey(s string) (apiKey, error) {
	key, scope, scoped := strings.Cut(s, ":")
	k := apiKey{key: []byte(key)}
	if key == "" {
		return k, errors.New("an API key entry has an empty key")
	}
	if scoped {
		for _, p := range strings.Split(scope, "|") {
			if err := ValidateGrant(p); err != nil {
				return k, fmt.Errorf("API key scope: %w", err)
			}
			k.scope = append(k.scope, p)
		}
	}
	return k, nil
}

// ValidateAPIKey checks one HERALD_API_KEYS entry: the syntax of
// parseAPIKey and a key of at least MinAPIKeyLen bytes. The error names
// the key only by its length and first characters.
func ValidateAPIKey(s string) error {
	k, err := parseAPIKey(s)
	if err != nil {
		return err
	}
	if len(k.key) < MinAPIKeyLen {
		shown := string(k.key)
		if len(shown) > 4 {
			shown = shown[:4] + "…"
		}
		return fmt.Errorf("API key %q is %d bytes long; use at least %d random bytes (e.g. openssl rand -hex 32)", shown, len(k.key), MinAPIKeyLen)
	}
	return nil
}

// allows reports whether the key may publish to channel.
func (k apiKey) allows(channel string) bool {
	if len(k.scope) == 0 {
		return true
	}
	for _, p := range k.scope {
		if MatchGrant(p, channel) {
			return true
		}
	}
	return false
}

// checkAPIKey compares the bearer key against every configured key in
// constant time and returns the one that matched.
func (s *Server) checkAPIKey(r *http.Request) (apiKey, error) {
	if len(s.apiKeys) == 0 {
		return apiKey{}, &Error{Code: "publish_disabled",
			Message: "publishing over HTTP is off: set HERALD_API_KEYS, or INSERT into herald.events"}
	}
	h := r.Header.Get("Authorization")
	if len(h) < 8 || !strings.EqualFold(h[:7], "bearer ") {
		return apiKey{}, &Error{Code: "api_key_required", Message: "send the server key as Authorization: Bearer <key>"}
	}
	got := []byte(strings.TrimSpace(h[7:]))
	match := -1
	for i, k := range s.apiKeys {
		if subtle.ConstantTimeCompare(got, k.key) == 1 {
			match = i
		}
	}
	if match < 0 {
		return apiKey{}, &Error{Code: "invalid_api_key", Message: "the server key is not valid"}
	}
	return s.apiKeys[match], nil
}
