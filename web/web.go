// Package web is envvault's dashboard: server-rendered HTML pages for
// signing in, Settings → Secrets, profiles and tasks, with plain CSS and a
// little progressive JavaScript, every asset embedded in the binary.
//
// Every form works with JavaScript off. A browser signs in with an API
// token, exchanged for a signed session cookie (session.go);
// every form that changes state carries the session's CSRF token, and every
// POST is also checked for a cross-origin request by its Sec-Fetch-Site or
// Origin header. No page, log line or error ever shows a secret value: the
// value field is write-only and never rendered back.
package web

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"html/template"
	"log/slog"
	"net/http"
	"runtime/debug"
	"strconv"
	"time"

	"github.com/envvault/envvault/metrics"
	"github.com/envvault/envvault/orchestrator"
	"github.com/envvault/envvault/seal"
	"github.com/envvault/envvault/vault"
)

// maxFormBytes bounds a form body: a 64 KiB value, percent-encoded, with
// room for the other fields.
const maxFormBytes = 512 << 10

// Config configures the dashboard.
type Config struct {
	Vault *vault.Service
	// Keys is the master keyring Vault seals under: session cookies and
	// CSRF tokens are signed under keys derived from its current key.
	Keys *seal.Keyring
	// Orchestrator serves the tasks pages; without one there are none.
	Orchestrator *orchestrator.Orchestrator
	Logger       *slog.Logger // slog.Default() if nil
	// Secure marks cookies Secure even on a plain-HTTP request, for a
	// server behind a proxy that terminates TLS. Requests that arrive
	// over TLS always get Secure cookies.
	Secure bool
	// SessionTTL is how long a sign-in lasts; DefaultSessionTTL if 0.
	SessionTTL time.Duration
	// SessionIdle ends a session after this long without a request;
	// vault.DefaultSessionIdle if 0.
	SessionIdle time.Duration
	// PublicURL is the dashboard's address as browsers reach it (scheme,
	// host, any path prefix): OAuth2 providers redirect to PublicURL +
	// vault.OAuth2CallbackPath (oauth2.go). "" takes the scheme and host of each
	// request.
	PublicURL string
}

// server is the dashboard's state; New returns its handler.
type server struct {
	vault         *vault.Service
	sessions      *sessions
	orch          *orchestrator.Orchestrator
	log           *slog.Logger
	secureCookies bool
	ttl           time.Duration
	pages         map[string]*template.Template
	static        *assets
	cop           *http.CrossOriginProtection
	mux           *http.ServeMux
	publicURL     string // Config.PublicURL
}

// New returns the dashboard as an http.Handler meant to be mounted at "/"
// beside the API (which keeps /v1, /healthz and /readyz). It panics if
// Config.Vault or Config.Keys is nil or an embedded template does not
// parse, all programming errors.
func New(c Config) http.Handler {
	if c.Vault == nil {
		panic("web: Config.Vault is nil")
	}
	if c.Keys == nil {
		panic("web: Config.Keys is nil")
	}
	s := &server{vault: c.Vault, sessions: newSessions(c.Vault, c.Keys, time.Now, c.SessionIdle), orch: c.Orchestrator, log: c.Logger, secureCookies: c.Secure, ttl: c.SessionTTL,
		publicURL: c.PublicURL}
	if s.log == nil {
		s.log = slog.Default()
	}
	if s.ttl <= 0 {
		s.ttl = DefaultSessionTTL
	}
	s.static = loadAssets()
	s.pages = parsePages(s.static)
	s.cop = http.NewCrossOriginProtection()
	s.cop.SetDenyHandler(http.HandlerFunc(s.crossOriginDenied))
	s.mux = http.NewServeMux()
	s.routes()
	return s.middleware(s.mux)
}

// routes registers every page. page routes need a session; action routes
// are POSTs that also need the session's CSRF token.
func (s *server) routes() {
	m := s.mux
	m.Handle("GET /static/", s.static)
	m.HandleFunc("GET /{$}", s.home)
	m.HandleFunc("GET /login", s.loginPage)
	m.HandleFunc("POST /login", s.login)
	m.Handle("POST /logout", s.action(s.logout))

	m.Handle("GET /settings", http.RedirectHandler("/settings/secrets", http.StatusSeeOther))
	m.Handle("GET /settings/secrets", s.page(s.secretsList))
	m.Handle("GET /settings/secrets/new", s.page(s.secretNew))
	m.Handle("POST /settings/secrets", s.action(s.secretCreate))
	m.Handle("GET /settings/secrets/{id}/edit", s.page(s.secretEdit))
	m.Handle("POST /settings/secrets/{id}", s.action(s.secretUpdate))
	m.Handle("GET /settings/secrets/{id}/delete", s.page(s.secretDeletePage))
	m.Handle("POST /settings/secrets/{id}/delete", s.action(s.secretDelete))
	m.Handle("GET /settings/secrets/import", s.page(s.secretImportPage))
	m.Handle("POST /settings/secrets/import", s.action(s.secretImport))
	m.Handle("GET /settings/secrets/{id}/rollback", s.page(s.secretRollbackPage))
	m.Handle("POST /settings/secrets/{id}/rollback", s.action(s.secretRollback))
	m.Handle("GET /settings/secrets/{id}/connect", s.page(s.connectPage))
	m.Handle("POST /settings/secrets/{id}/connect", s.action(s.connect))
	m.Handle("POST /settings/secrets/{id}/device", s.action(s.deviceStart))
	m.Handle("GET /settings/secrets/{id}/device/{flow}", s.page(s.devicePage))
	m.HandleFunc("GET "+vault.OAuth2CallbackPath, s.callback)

	m.Handle("GET /settings/tokens", s.page(s.tokensList))
	m.Handle("POST /settings/tokens", s.action(s.tokenCreate))
	m.Handle("POST /settings/tokens/{id}/revoke", s.action(s.tokenRevoke))

	m.Handle("GET /profiles", s.page(s.profilesList))
	m.Handle("GET /profiles/new", s.page(s.profileNew))
	m.Handle("POST /profiles", s.action(s.profileCreate))
	m.Handle("GET /profiles/{id}", s.page(s.profileShow))
	m.Handle("POST /profiles/{id}", s.action(s.profileUpdate))
	m.Handle("GET /profiles/{id}/delete", s.page(s.profileDeletePage))
	m.Handle("POST /profiles/{id}/delete", s.action(s.profileDelete))

	if s.orch != nil {
		m.Handle("GET /tasks", s.page(s.tasksList))
		m.Handle("POST /tasks", s.action(s.taskCreate))
		m.Handle("GET /tasks/{id}", s.page(s.taskShow))
		m.Handle("GET /tasks/{id}/logs", s.page(s.taskLogs))
		m.Handle("POST /tasks/{id}/stop", s.action(s.taskStop))
		m.Handle("POST /tasks/{id}/restart", s.action(s.taskRestart))
		m.Handle("POST /secret-requests/{id}/answer", s.action(s.secretRequestAnswer))
		m.Handle("POST /secret-requests/{id}/cancel", s.action(s.secretRequestCancel))
	}
	m.HandleFunc("/", s.notFound)
}

type ctxKey int

const ctxRequestID ctxKey = iota

func requestID(ctx context.Context) string { s, _ := ctx.Value(ctxRequestID).(string); return s }

// statusWriter records the status a handler answered. Unwrap lets
// http.ResponseController reach the connection (to flush a log stream
// and lift its write deadline).
type statusWriter struct {
	http.ResponseWriter
	status int
	userID string // set once the request is signed in, for the log line
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// securityHeaders go on every response. The policy allows only this
// origin's own files: no inline script or style, no framing, forms that
// post only here.
var securityHeaders = map[string]string{
	"Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; " +
		"connect-src 'self'; font-src 'self'; object-src 'none'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
	"X-Content-Type-Options":       "nosniff",
	"Referrer-Policy":              "no-referrer",
	"X-Frame-Options":              "DENY",
	"Cross-Origin-Opener-Policy":   "same-origin",
	"Cross-Origin-Resource-Policy": "same-origin",
	"Permissions-Policy":           "camera=(), microphone=(), geolocation=(), payment=()",
}

// middleware wraps every request, outermost first: a request id, one log
// line, panic recovery, the security headers (with Cache-Control no-store,
// which the static files override), the cross-origin check of POSTs and
// the body limit.
func (s *server) middleware(next http.Handler) http.Handler {
	next = s.cop.Handler(next)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		id := newRequestID()
		r = r.WithContext(context.WithValue(r.Context(), ctxRequestID, id))
		r = withActor(r, id)
		sw := &statusWriter{ResponseWriter: w}
		h := sw.Header()
		for k, v := range securityHeaders {
			h.Set(k, v)
		}
		h.Set("Cache-Control", "no-store")
		h.Set("X-Request-Id", id)
		defer func() {
			if p := recover(); p != nil {
				if p == http.ErrAbortHandler {
					panic(p)
				}
				s.log.Error("panic in dashboard handler", slog.String("request_id", id),
					slog.String("panic", fmt.Sprint(p)), slog.String("stack", string(debug.Stack())))
				if sw.status == 0 {
					s.renderError(sw, r, http.StatusInternalServerError, "Something went wrong on our side.")
				}
			}
			attrs := []slog.Attr{
				slog.String("request_id", id),
				slog.String("method", truncate(r.Method, 20)),
				slog.String("path", truncate(r.URL.Path, 200)),
				slog.Int("status", sw.status),
				slog.Duration("latency", time.Since(start)),
			}
			if sw.userID != "" {
				attrs = append(attrs, slog.String("user_id", sw.userID))
			}
			// Never the query string, the form or a header: they carry
			// tokens, cookies and secret values.
			s.log.LogAttrs(r.Context(), slog.LevelInfo, "web request", attrs...)
		}()
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			r.Body = http.MaxBytesReader(sw, r.Body, maxFormBytes)
		}
		next.ServeHTTP(sw, r)
		// The mux set the pattern that matched on r: the metrics' route
		// label, never the path.
		metrics.SetRoute(r.Context(), r.Pattern)
	})
}

func newRequestID() string {
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// crossOriginDenied answers a POST that a browser says came from another
// origin. Nothing has been read or changed.
func (s *server) crossOriginDenied(w http.ResponseWriter, r *http.Request) {
	s.log.Warn("cross-origin request refused", slog.String("request_id", requestID(r.Context())),
		slog.String("method", truncate(r.Method, 20)), slog.String("path", truncate(r.URL.Path, 200)),
		slog.String("sec_fetch_site", truncate(r.Header.Get("Sec-Fetch-Site"), 40)),
		slog.String("origin", truncate(r.Header.Get("Origin"), 200)))
	s.renderError(w, r, http.StatusForbidden,
		"This request came from another site and was refused. Nothing was changed.")
}

// user is the signed-in user of a request.
type user struct {
	ID      string
	Session *session
	CSRF    string // the session's CSRF token, for forms
}

// handler is a page or action of a signed-in user. An error it returns is
// answered by s.fail.
type handler func(w http.ResponseWriter, r *http.Request, u *user) error

// page serves h to a signed-in user, and sends anyone else to sign in.
func (s *server) page(h handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, ok := s.signedIn(w, r)
		if !ok {
			return
		}
		r = withSession(r, u)
		if err := h(w, r, u); err != nil {
			s.fail(w, r, err)
		}
	})
}

// action serves h, a POST, to a signed-in user whose form carries the
// session's CSRF token; anything else changes nothing.
func (s *server) action(h handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, ok := s.signedIn(w, r)
		if !ok {
			return
		}
		r = withSession(r, u)
		if err := r.ParseForm(); err != nil {
			s.badForm(w, r, err)
			return
		}
		if !s.sessions.checkCSRF(u.Session.ID, r.PostForm.Get("csrf")) {
			s.log.Warn("request without a valid CSRF token refused", slog.String("request_id", requestID(r.Context())),
				slog.String("path", truncate(r.URL.Path, 200)), slog.String("user_id", u.ID))
			s.renderError(w, r, http.StatusForbidden,
				"This form has expired or did not come from this dashboard, so it was refused. Nothing was changed: go back, reload the page and try again.")
			return
		}
		if err := h(w, r, u); err != nil {
			s.fail(w, r, err)
		}
	})
}

// badForm answers a form body that could not be read.
func (s *server) badForm(w http.ResponseWriter, r *http.Request, err error) {
	var maxErr *http.MaxBytesError
	if errors.As(err, &maxErr) {
		s.renderError(w, r, http.StatusRequestEntityTooLarge, fmt.Sprintf("The form is larger than %d bytes.", maxFormBytes))
		return
	}
	s.renderError(w, r, http.StatusBadRequest, "The form could not be read.")
}

// unavailableRetryAfter is the Retry-After of the page a request gets when
// the store cannot be reached (503), as the API's.
const unavailableRetryAfter = 5 * time.Second

// fail answers an error a handler returned: not found, a bad link, a
// session that ended, the store out of reach (503), or (logged, with the
// request id) anything else.
func (s *server) fail(w http.ResponseWriter, r *http.Request, err error) {
	switch vault.ErrorCode(err) {
	case vault.ENOTFOUND:
		s.renderError(w, r, http.StatusNotFound, "There is nothing here: it may have been deleted.")
	case vault.EINVALID:
		s.renderError(w, r, http.StatusBadRequest, "This link is not valid: "+vault.ErrorMessage(err))
	case vault.EUNAUTHORIZED:
		s.clearSession(w, r)
		http.Redirect(w, r, "/login", http.StatusSeeOther)
	case vault.EUNAVAILABLE:
		s.log.Warn("dashboard: store unavailable", slog.String("request_id", requestID(r.Context())),
			slog.String("path", truncate(r.URL.Path, 200)), slog.Any("error", err))
		w.Header().Set("Retry-After", strconv.Itoa(int(unavailableRetryAfter.Seconds())))
		s.renderError(w, r, http.StatusServiceUnavailable,
			"The vault's database cannot be reached right now. Try again in a few seconds; if you were saving a change, check afterwards whether it was saved.")
	default:
		s.log.Error("dashboard error", slog.String("request_id", requestID(r.Context())),
			slog.String("path", truncate(r.URL.Path, 200)), slog.Any("error", err))
		s.renderError(w, r, http.StatusInternalServerError, "Something went wrong on our side.")
	}
}

func (s *server) notFound(w http.ResponseWriter, r *http.Request) {
	s.renderError(w, r, http.StatusNotFound, "There is no such page.")
}

func (s *server) home(w http.ResponseWriter, r *http.Request) {
	http.Redirect(w, r, "/settings/secrets", http.StatusSeeOther)
}

// view is what every page template gets.
type view struct {
	Title      string
	Nav        string // the nav entry to mark current
	User       *user  // nil when signed out
	Tasks      bool   // the tasks pages exist
	Flash      string
	Refresh    int    // seconds; a <noscript> meta refresh when > 0
	RefreshURL string // what the refresh loads: the page without its flash
	Status     int
	Message    string // of an error page
	Data       any
}

// render writes a page. It renders into a buffer first, so a template
// error becomes a clean 500.
func (s *server) render(w http.ResponseWriter, r *http.Request, status int, name string, v view) {
	t, ok := s.pages[name]
	if !ok {
		panic("web: no page template " + name)
	}
	v.Tasks = s.orch != nil
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, "layout", v); err != nil {
		s.log.Error("render page", slog.String("request_id", requestID(r.Context())), slog.String("page", name), slog.Any("error", err))
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(http.StatusInternalServerError)
		_, _ = w.Write([]byte("internal error\n"))
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	if r.Method != http.MethodHead {
		_, _ = w.Write(buf.Bytes())
	}
}

// renderError writes the error page. It shows the user's nav only when
// the request is already known to be signed in; it never reads the
// session itself, so it cannot fail again.
func (s *server) renderError(w http.ResponseWriter, r *http.Request, status int, msg string) {
	s.render(w, r, status, "error", view{Title: http.StatusText(status), Status: status, Message: msg,
		Data: requestID(r.Context())})
}

// truncate shortens client input to at most n bytes for log lines.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
