// Package openapitest checks real HTTP exchanges with herald against its
// OpenAPI document (api.OpenAPI) with libopenapi-validator, for tests in
// any package: a response whose status, headers or body the document does
// not describe fails the test.
package openapitest

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/pb33f/libopenapi"
	validator "github.com/pb33f/libopenapi-validator"
	"github.com/pb33f/libopenapi-validator/config"
	"github.com/pb33f/libopenapi-validator/content"
	"github.com/pb33f/libopenapi-validator/errors"

	"github.com/herald-dev/herald/api"
)

// Validator validates exchanges against one loaded document.
type Validator struct {
	v validator.Validator
}

// Load parses api.OpenAPI, checks it against the OpenAPI 3.1 schema, and
// registers the text/event-stream decoder (ParseSSE) so stream bodies are
// validated frame by frame.
func Load(t testing.TB) *Validator {
	t.Helper()
	return LoadBytes(t, api.OpenAPI)
}

// LoadBytes is Load for another document (tests that show drift is caught).
func LoadBytes(t testing.TB, spec []byte) *Validator {
	t.Helper()
	doc, err := libopenapi.NewDocument(spec)
	if err != nil {
		t.Fatalf("openapi: parse: %v", err)
	}
	if v := doc.GetVersion(); !strings.HasPrefix(v, "3.1") {
		t.Fatalf("openapi: version %q, want 3.1.x", v)
	}
	sse := content.DecoderFunc(func(in *content.DecodeInput) (any, error) {
		b, err := io.ReadAll(in.Body)
		if err != nil {
			return nil, err
		}
		return ParseSSE(b), nil
	})
	v, errs := validator.NewValidator(doc, config.WithBodyDecoder("text/event-stream", sse), config.WithFormatAssertions())
	if len(errs) > 0 {
		t.Fatalf("openapi: build validator: %v", errs)
	}
	if ok, verrs := v.ValidateDocument(); !ok {
		t.Fatalf("openapi: the document is not valid OpenAPI:\n%s", describe(verrs))
	}
	return &Validator{v: v}
}

// Response validates resp (its body read and put back) as the answer to
// req: the path, method and status must be documented, and the headers and
// body must match.
func (v *Validator) Response(t testing.TB, req *http.Request, resp *http.Response) {
	t.Helper()
	if errs := v.ResponseErrors(req, resp); len(errs) > 0 {
		t.Errorf("%s %s -> %d does not match the OpenAPI document:\n%s", req.Method, req.URL.RequestURI(), resp.StatusCode, strings.Join(errs, "\n"))
	}
}

// ResponseErrors is Response's findings, for tests that expect some.
func (v *Validator) ResponseErrors(req *http.Request, resp *http.Response) []string {
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	resp.Body = io.NopCloser(bytes.NewReader(body))
	defer func() { resp.Body = io.NopCloser(bytes.NewReader(body)) }()
	if ok, errs := v.v.ValidateHttpResponse(req, resp); !ok {
		return lines(errs)
	}
	return nil
}

// Request validates a request herald accepted: its parameters, headers
// and body are documented.
func (v *Validator) Request(t testing.TB, req *http.Request) {
	t.Helper()
	var body []byte
	if req.Body != nil {
		body, _ = io.ReadAll(req.Body)
		req.Body = io.NopCloser(bytes.NewReader(body))
	}
	ok, errs := v.v.ValidateHttpRequestSync(req)
	if req.Body != nil {
		req.Body = io.NopCloser(bytes.NewReader(body))
	}
	if !ok {
		t.Errorf("request %s %s does not match the OpenAPI document:\n%s", req.Method, req.URL.RequestURI(), describe(errs))
	}
}

func lines(errs []*errors.ValidationError) []string {
	var out []string
	for _, e := range errs {
		s := e.Message
		if e.Reason != "" {
			s += ": " + e.Reason
		}
		for _, f := range e.SchemaValidationErrors {
			s += fmt.Sprintf("\n    at %s (%s): %s", f.FieldPath, f.KeywordLocation, f.Reason)
		}
		out = append(out, "  "+s)
	}
	return out
}

func describe(errs []*errors.ValidationError) string { return strings.Join(lines(errs), "\n") }

// ParseSSE decodes a text/event-stream body into its frames, one object
// per frame as the document's SseFrame describes them: "id", "event",
// "retry" (a number when it is one), "data" (parsed as JSON when it is
// JSON, else the raw string) and "comment" (the text of a comment line).
// An incomplete last frame is left out.
func ParseSSE(b []byte) []any {
	frames := []any{}
	blocks := strings.Split(strings.ReplaceAll(string(b), "\r\n", "\n"), "\n\n")
	for _, block := range blocks[:len(blocks)-1] { // the last is incomplete or empty
		f := map[string]any{}
		var data []string
		sc := bufio.NewScanner(strings.NewReader(block))
		for sc.Scan() {
			line := sc.Text()
			if strings.HasPrefix(line, ":") {
				f["comment"] = strings.TrimPrefix(strings.TrimPrefix(line, ":"), " ")
				continue
			}
			name, value, _ := strings.Cut(line, ":")
			value = strings.TrimPrefix(value, " ")
			switch name {
			case "data":
				data = append(data, value)
			case "retry":
				if n, err := strconv.Atoi(value); err == nil {
					f[name] = float64(n)
				} else {
					f[name] = value
				}
			default:
				f[name] = value
			}
		}
		if data != nil {
			raw := strings.Join(data, "\n")
			var v any
			if json.Unmarshal([]byte(raw), &v) == nil {
				f["data"] = v
			} else {
				f["data"] = raw
			}
		}
		if len(f) > 0 {
			frames = append(frames, f)
		}
	}
	return frames
}
