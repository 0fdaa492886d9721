package demo

import (
	"encoding/json"
	"errors"
	"io/fs"
	"net/http"
	"strconv"
	"time"

	"github.com/herald-dev/herald/api"
	"github.com/herald-dev/herald/web"
)

// Handler serves the dashboard and its API; mount it at / and /demo/:
//
//	GET /, /demo/                       the dashboard (web/demo/index.html)
//	GET /demo/app.js, /demo/style.css   its script and style
//	GET /demo/api/projects              {"projects":[Project...]}
//	GET /demo/api/projects/{id}/builds  {"builds":[Build...]}, newest first (?limit=, default Options.Builds, max 50)
//	GET /demo/api/builds/{id}           Build
//	GET /demo/token                     {"token","expires_at","channels"}: a token granting private-project-*
//
// The token endpoint hands a token to anyone who asks: it stands in for the
// app's own login, which would decide which projects a user may watch.
func (d *Demo) Handler() http.Handler {
	static, err := fs.Sub(web.FS, "demo")
	if err != nil {
		panic("demo: web/demo missing from the embedded files: " + err.Error())
	}
	index, err := fs.ReadFile(static, "index.html")
	if err != nil {
		panic("demo: web/demo/index.html missing from the embedded files: " + err.Error())
	}
	files := http.StripPrefix("/demo", http.FileServerFS(static))

	mux := http.NewServeMux()
	page := func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Cache-Control", "no-cache")
		w.Write(index)
	}
	mux.HandleFunc("GET /{$}", page)
	mux.HandleFunc("GET /demo/{$}", page)
	mux.HandleFunc("GET /demo/", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-cache")
		files.ServeHTTP(w, r)
	})
	mux.HandleFunc("GET /demo/api/projects", d.handleProjects)
	mux.HandleFunc("GET /demo/api/projects/{id}/builds", d.handleBuilds)
	mux.HandleFunc("GET /demo/api/builds/{id}", d.handleBuild)
	mux.HandleFunc("GET /demo/token", d.handleToken)
	mux.HandleFunc("GET /demo/api/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "not_found", "no such demo endpoint")
	})
	return mux
}

func (d *Demo) handleProjects(w http.ResponseWriter, r *http.Request) {
	ps, err := d.Projects(r.Context())
	if err != nil {
		d.dbError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"projects": ps})
}

func (d *Demo) handleBuilds(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(w, r)
	if !ok {
		return
	}
	limit := d.opts.Builds
	if s := r.URL.Query().Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 50 {
			writeError(w, http.StatusBadRequest, "invalid_limit", "limit must be a whole number from 1 to 50")
			return
		}
		limit = n
	}
	bs, err := d.Builds(r.Context(), id, limit)
	if errors.Is(err, ErrNotFound) {
		writeError(w, http.StatusNotFound, "not_found", "no project "+strconv.FormatInt(id, 10))
		return
	}
	if err != nil {
		d.dbError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"builds": bs})
}

func (d *Demo) handleBuild(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(w, r)
	if !ok {
		return
	}
	b, err := d.Build(r.Context(), id)
	if errors.Is(err, ErrNotFound) {
		writeError(w, http.StatusNotFound, "not_found", "no build "+strconv.FormatInt(id, 10))
		return
	}
	if err != nil {
		d.dbError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, b)
}

func (d *Demo) handleToken(w http.ResponseWriter, r *http.Request) {
	if len(d.opts.Secret) == 0 {
		writeError(w, http.StatusServiceUnavailable, "no_secret", "the demo has no token secret (HERALD_JWT_SECRET)")
		return
	}
	channels := []string{ChannelPattern}
	tok, err := api.MintToken(d.opts.Secret, "demo-visitor", channels, d.opts.TokenTTL)
	if err != nil {
		d.log.Error("demo: mint token", "err", err)
		writeError(w, http.StatusInternalServerError, "internal", "could not mint a token")
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, map[string]any{
		"token":      tok,
		"expires_at": time.Now().Add(d.opts.TokenTTL).UTC().Format(time.RFC3339),
		"channels":   channels,
	})
}

func (d *Demo) dbError(w http.ResponseWriter, r *http.Request, err error) {
	if r.Context().Err() != nil {
		return // the client went away
	}
	d.log.Warn("demo: query failed", "path", r.URL.Path, "err", err)
	writeError(w, http.StatusServiceUnavailable, "unavailable", "the demo database is not answering; try again")
}

func pathID(w http.ResponseWriter, r *http.Request) (int64, bool) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id < 1 {
		writeError(w, http.StatusBadRequest, "invalid_id", "the id must be a positive whole number")
		return 0, false
	}
	return id, true
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	if w.Header().Get("Cache-Control") == "" {
		w.Header().Set("Cache-Control", "no-cache")
	}
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, status int, code, msg string) {
	writeJSON(w, status, map[string]any{"error": map[string]string{"code": code, "message": msg}})
}
