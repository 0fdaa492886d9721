package main

import (
	"crypto"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/herald-dev/herald/api"
)

// authFlags configure who may read private channels and who may publish.
type authFlags struct {
	jwtSecret      string
	publicKeysFile string
	jwtAudience    string
	jwtIssuer      string
	jwtMaxLifetime time.Duration
	revocationTTL  time.Duration
	authURL        string
	authTTL        time.Duration
	authTimeout    time.Duration
	authCacheSize  int
	authMissRate   int
	authMissBurst  int
	requireToken   bool
	perSubject     int
	perIP          int
	apiKeys        string
	corsOrigins    string
	trustedProxies string
}

func (a *authFlags) bind(e *envFlags) {
	e.String(&a.jwtSecret, "jwt-secret", "HERALD_JWT_SECRET", "", "HS256 secret (>= 32 bytes) for tokens granting private- channels")
	e.String(&a.publicKeysFile, "jwt-public-keys", "HERALD_JWT_PUBLIC_KEYS", "", "PEM file of Ed25519/RSA public keys for EdDSA/RS256 tokens")
	e.String(&a.jwtAudience, "jwt-audience", "HERALD_JWT_AUDIENCE", "", "if set, tokens must name it in aud")
	e.String(&a.jwtIssuer, "jwt-issuer", "HERALD_JWT_ISSUER", "", "if set, tokens' iss must equal it")
	e.Duration(&a.jwtMaxLifetime, "jwt-max-lifetime", "HERALD_JWT_MAX_LIFETIME", 0, "refuse tokens valid for longer than this (exp - iat); 0: no limit")
	e.Duration(&a.revocationTTL, "revocation-ttl", "HERALD_REVOCATION_TTL", 0, "how long a revocation without its own ttl lasts (default: --jwt-max-lifetime, else 24h)")
	e.String(&a.authURL, "auth-url", "HERALD_AUTH_URL", "", "app endpoint asked (POST) about private channels a token does not grant")
	e.Duration(&a.authTTL, "auth-cache-ttl", "HERALD_AUTH_CACHE_TTL", 30*time.Second, "how long the app's answers are cached")
	e.Duration(&a.authTimeout, "auth-timeout", "HERALD_AUTH_TIMEOUT", 3*time.Second, "how long to wait for the app's answer")
	e.Int(&a.authCacheSize, "auth-cache-size", "HERALD_AUTH_CACHE_SIZE", 10000, "how many of the app's decisions (one per user and channel) are cached; the least recently used go first")
	e.Int(&a.authMissRate, "auth-miss-rate", "HERALD_AUTH_MISS_RATE", 10, "calls to the auth URL (cache misses) per second one client address may cause; more get 429 (0: no limit)")
	e.Int(&a.authMissBurst, "auth-miss-burst", "HERALD_AUTH_MISS_BURST", 20, "cache misses one client address may cause at once before --auth-miss-rate applies")
	e.Bool(&a.requireToken, "require-token", "HERALD_REQUIRE_TOKEN", "public channels need a token too")
	e.Int(&a.perSubject, "max-conns-per-subject", "HERALD_MAX_CONNS_PER_SUBJECT", 0, "open connections per token subject, across replicas (0: no limit)")
	e.Int(&a.perIP, "max-conns-per-ip", "HERALD_MAX_CONNS_PER_IP", 0, "anonymous connections per client address (0: no limit)")
	e.String(&a.apiKeys, "api-keys", "HERALD_API_KEYS", "", "comma-separated server keys (>= 32 bytes) allowed to POST /v1/events; KEY:PATTERN|PATTERN limits a key to those channels")
	e.String(&a.corsOrigins, "cors-origins", "HERALD_CORS_ORIGINS", "", "comma-separated browser origins allowed to call herald")
	e.String(&a.trustedProxies, "trusted-proxies", "HERALD_TRUSTED_PROXIES", "", "comma-separated proxy addresses/CIDRs whose X-Forwarded-For is believed")
}

// apply fills the API config's authorisation parts.
func (a *authFlags) apply(cfg *api.Config, log *slog.Logger) error {
	var keys []crypto.PublicKey
	if a.publicKeysFile != "" {
		b, err := os.ReadFile(a.publicKeysFile)
		if err != nil {
			return &usageError{fmt.Sprintf("HERALD_JWT_PUBLIC_KEYS: %v", err)}
		}
		if keys, err = api.ParsePublicKeys(b); err != nil {
			return &usageError{fmt.Sprintf("HERALD_JWT_PUBLIC_KEYS %s: %v", a.publicKeysFile, err)}
		}
	}
	auth := &api.ChannelAuth{RequireToken: a.requireToken}
	if a.jwtSecret != "" || len(keys) > 0 {
		v, err := api.NewTokenVerifierWith([]byte(a.jwtSecret), keys, api.TokenOptions{
			Audience: a.jwtAudience, Issuer: a.jwtIssuer, MaxLifetime: a.jwtMaxLifetime})
		if err != nil {
			return &usageError{err.Error()}
		}
		auth.Tokens = v
	}
	if a.authURL != "" {
		if !strings.HasPrefix(a.authURL, "http://") && !strings.HasPrefix(a.authURL, "https://") {
			return &usageError{"HERALD_AUTH_URL must be an http:// or https:// URL"}
		}
		auth.App = &api.AuthURL{URL: a.authURL, TTL: a.authTTL, Timeout: a.authTimeout, Log: log,
			CacheSize: a.authCacheSize, MissRate: float64(a.authMissRate), MissBurst: a.authMissBurst}
	}
	cfg.Authorizer = auth
	cfg.RevocationTTL = revocationTTL(a.revocationTTL, a.jwtMaxLifetime)
	cfg.MaxConnsPerSubject, cfg.MaxConnsPerIP = a.perSubject, a.perIP
	cfg.APIKeys = splitList(a.apiKeys)
	for _, k := range cfg.APIKeys {
		if err := api.ValidateAPIKey(k); err != nil {
			return &usageError{fmt.Sprintf("HERALD_API_KEYS: %v", err)}
		}
	}
	cfg.CORSOrigins = splitList(a.corsOrigins)
	for i, o := range cfg.CORSOrigins {
		cfg.CORSOrigins[i] = strings.TrimRight(o, "/")
		if strings.EqualFold(cfg.CORSOrigins[i], "null") {
			// Sandboxed iframes, file: pages and some redirects send
			// Origin: null from any site; allowing it with credentials
			// would let any page read private channels.
			return &usageError{"HERALD_CORS_ORIGINS lists \"null\": sandboxed iframes and file: pages on any site send Origin: null, so it cannot be allowed; list real origins such as https://app.example.com"}
		}
	}
	cfg.TrustedProxies = splitList(a.trustedProxies)
	return nil
}

func splitList(s string) []string {
	var out []string
	for _, v := range strings.Split(s, ",") {
		if v = strings.TrimSpace(v); v != "" {
			out = append(out, v)
		}
	}
	return out
}
