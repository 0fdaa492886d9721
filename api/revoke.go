package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/herald-dev/herald/store"
)

// maxRevocationTTL bounds how long a revocation may be kept.
const maxRevocationTTL = 366 * 24 * time.Hour

// handleRevoke is POST /v1/revocations {"jti":"..."} or {"sub":"..."},
// with an optional "ttl" ("24h"): behind the API keys, like publishing.
// Every replica ends the matching streams and refuses the tokens.
func (s *Server) handleRevoke(c *gin.Context) {
	if len(s.apiKeys) == 0 {
		s.abort(c, &Error{Code: "revocations_disabled",
			Message: "revoking over HTTP is off: set HERALD_API_KEYS, or run herald revoke"})
		return
	}
	key, err := s.checkAPIKey(c.Request)
	if err != nil {
		s.abort(c, err)
		return
	}
	if len(key.scope) > 0 {
		// A key scoped to some channels publishes there; revoking a user's
		// tokens reaches every channel, so only an unscoped key may.
		s.abort(c, &Error{Code: "key_scope",
			Message: "this API key is limited to some channels; revoking needs an unscoped key"})
		return
	}
	jti, sub, ttl, err := decodeRevoke(c.Request, s.cfg.RevocationTTL)
	if err != nil {
		s.abort(c, err)
		return
	}
	r, err := s.db.Revoke(c.Request.Context(), jti, sub, ttl)
	if err != nil {
		s.abort(c, err)
		return
	}
	c.Header("Cache-Control", "no-store")
	c.JSON(http.StatusCreated, gin.H{"revocation": r})
}

// decodeRevoke reads the body strictly: exactly the known, case-sensitive
// keys, each a string, and exactly one of jti and sub.
func decodeRevoke(r *http.Request, defTTL time.Duration) (jti, sub string, ttl time.Duration, err error) {
	if ct := r.Header.Get("Content-Type"); ct != "" && !strings.HasPrefix(ct, "application/json") {
		return "", "", 0, &Error{Code: "unsupported_media_type", Message: "send Content-Type: application/json"}
	}
	body, rerr := io.ReadAll(http.MaxBytesReader(nil, r.Body, 4<<10))
	if rerr != nil {
		var mb *http.MaxBytesError
		if errors.As(rerr, &mb) {
			return "", "", 0, &Error{Code: "payload_too_large", Message: "a revocation body is at most 4 KiB"}
		}
		return "", "", 0, badRequest("invalid_body", "could not read the body")
	}
	const want = `send {"jti":"<token id>"} or {"sub":"<user>"}, optionally with "ttl":"24h"`
	var m map[string]json.RawMessage
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&m); err != nil || m == nil || dec.More() {
		return "", "", 0, badRequest("invalid_body", "the body is not one JSON object; "+want)
	}
	fields := map[string]string{}
	for k, v := range m {
		if k != "jti" && k != "sub" && k != "ttl" {
			return "", "", 0, badRequest("invalid_body", fmt.Sprintf("unknown field %q; %s", truncate(k, 40), want))
		}
		var s string
		if err := json.Unmarshal(v, &s); err != nil {
			return "", "", 0, badRequest("invalid_body", fmt.Sprintf("%q must be a string", k))
		}
		fields[k] = s
	}
	_, hasJTI := fields["jti"]
	_, hasSub := fields["sub"]
	if hasJTI == hasSub {
		return "", "", 0, badRequest("invalid_body", "name exactly one of jti and sub; "+want)
	}
	for _, k := range []string{"jti", "sub"} {
		if v, ok := fields[k]; ok {
			if err := store.ValidateRevocationID(v); err != nil {
				return "", "", 0, badRequest("invalid_"+k, k+" "+err.Error())
			}
		}
	}
	ttl = defTTL
	if ttl <= 0 {
		ttl = 24 * time.Hour
	}
	if v, ok := fields["ttl"]; ok {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 || d > maxRevocationTTL {
			return "", "", 0, badRequest("invalid_ttl", fmt.Sprintf("ttl must be a positive duration such as \"24h\", at most %v", maxRevocationTTL))
		}
		ttl = d
	}
	return fields["jti"], fields["sub"], ttl, nil
}
