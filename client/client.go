// Package client is the Go client of envvault's HTTP API (/v1).
//
// api.gen.go is generated from api/openapi.json by oapi-codegen (go
// generate ./client): the request and response types and a raw client, one
// method per operation. TestGeneratedIsCurrent regenerates it and fails when
// it differs, so the document and the client cannot drift. Client, in this
// file, wraps the generated client: one method per operationId of the
// document (TestEveryOperationHasAMethod), answering the documented success
// type or an *APIError carrying the API's error shape.
//
// Nothing here ever puts the token in an error or a log line.
package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// Client speaks to one envvault server with one API token. It is safe for
// concurrent use.
type Client struct {
	gen  *ClientWithResponses
	raw  *RawClient
	base string
}

// Options configure New.
type Options struct {
	// HTTPClient sends the requests; http.DefaultClient if nil.
	HTTPClient *http.Client
	// UserAgent is sent as User-Agent when not empty.
	UserAgent string
}

// New returns a Client of the server at baseURL (http://host:port, with or
// without a trailing slash) that authenticates with token.
func New(baseURL, token string, opts Options) (*Client, error) {
	if !strings.HasPrefix(baseURL, "http://") && !strings.HasPrefix(baseURL, "https://") {
		return nil, fmt.Errorf("server URL %q: must start with http:// or https://", baseURL)
	}
	hc := opts.HTTPClient
	if hc == nil {
		hc = http.DefaultClient
	}
	auth := func(_ context.Context, req *http.Request) error {
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		if opts.UserAgent != "" {
			req.Header.Set("User-Agent", opts.UserAgent)
		}
		return nil
	}
	raw, err := NewClient(baseURL, WithHTTPClient(hc), WithRequestEditorFn(auth))
	if err != nil {
		return nil, fmt.Errorf("server URL %q: %w", baseURL, err)
	}
	return &Client{gen: &ClientWithResponses{ClientInterface: raw}, raw: raw, base: strings.TrimSuffix(baseURL, "/")}, nil
}

// APIError is an answer of the API other than the documented success: its
// status and the one error shape of the document ({"error":{"code",
// "message","field"}}). Message never holds a secret value (the API's
// promise); Error() is the message, which starts with Field when set.
type APIError struct {
	Status     int    // the HTTP status
	Code       string // not_found, invalid, conflict, unauthorized, ...
	Field      string // the input field concerned, if one
	Message    string
	RequestID  string // X-Request-Id, to find the server's log lines
	RetryAfter string // Retry-After of a 429 or 503, if sent
	// Lines are the bad lines of a refused importSecrets, in line order.
	Lines []ImportLine
}

// ImportLine is one bad line of a refused import: never its value.
type ImportLine struct {
	Line    int    `json:"line"`
	Message string `json:"message"`
}

func (e *APIError) Error() string {
	if e.Message == "" {
		return fmt.Sprintf("HTTP %d %s", e.Status, e.Code)
	}
	return e.Message
}

// IsNotFound reports whether err is a 404 of the API.
func IsNotFound(err error) bool {
	var e *APIError
	return errors.As(err, &e) && e.Status == http.StatusNotFound
}

// transport wraps an error of sending a request or reading its answer
// (server unreachable, connection cut) with the server's address.
func (c *Client) transport(err error) error {
	return fmt.Errorf("envvault server %s: %w", c.base, err)
}

// apiError is the *APIError of an answer with status.
func apiError(hr *http.Response, body []byte) error {
	e := &APIError{Status: hr.StatusCode, RequestID: hr.Header.Get("X-Request-Id"), RetryAfter: hr.Header.Get("Retry-After")}
	// The document's error shape (Error), with the lines of ImportRefusal.
	var shape struct {
		Error struct {
			Code    string       `json:"code"`
			Message string       `json:"message"`
			Field   string       `json:"field"`
			Lines   []ImportLine `json:"lines"`
		} `json:"error"`
	}
	if json.Unmarshal(body, &shape) == nil && shape.Error.Code != "" {
		e.Code, e.Message, e.Field, e.Lines = shape.Error.Code, shape.Error.Message, shape.Error.Field, shape.Error.Lines
		return e
	}
	// Not the API's shape: a proxy in between, or not envvault at all.
	e.Code = http.StatusText(hr.StatusCode)
	e.Message = fmt.Sprintf("HTTP %d from the server, not an envvault error (is ENVVAULT_URL an envvault server?)", hr.StatusCode)
	return e
}

// result returns v, the decoded body, when the answer has status ok, else
// the *APIError of the answer.
func result[T any](c *Client, hr *http.Response, body []byte, ok int, v *T) (*T, error) {
	if hr.StatusCode != ok {
		return nil, apiError(hr, body)
	}
	if v == nil {
		return nil, fmt.Errorf("envvault server %s: answered %d without the documented JSON body", c.base, hr.StatusCode)
	}
	return v, nil
}

// noContent returns nil when the answer has status ok, else its *APIError.
func (c *Client) noContent(hr *http.Response, body []byte, ok int) error {
	if hr.StatusCode != ok {
		return apiError(hr, body)
	}
	return nil
}

// Page is one page of a list: what every list operation answers.
type Page[T any] struct {
	Data       []T
	NextCursor string // "" on the last page
}

// All returns every item of a list, page after page, each page asked for by
// list with the cursor of the one before ("" first).
func All[T any](ctx context.Context, list func(ctx context.Context, cursor string) (Page[T], error)) ([]T, error) {
	var all []T
	cursor := ""
	for {
		p, err := list(ctx, cursor)
		if err != nil {
			return nil, err
		}
		all = append(all, p.Data...)
		if p.NextCursor == "" {
			return all, nil
		}
		cursor = p.NextCursor
	}
}

func page[T any](data []T, next *string) Page[T] {
	p := Page[T]{Data: data}
	if next != nil {
		p.NextCursor = *next
	}
	return p
}

// drain reads what is left of a body before closing it, so that the
// connection is reused.
func drain(body io.ReadCloser) {
	_, _ = io.Copy(io.Discard, io.LimitReader(body, 64<<10))
	_ = body.Close()
}
