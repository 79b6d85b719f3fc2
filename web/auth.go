package web

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/envvault/envvault/metrics"
	"github.com/envvault/envvault/vault"
)

// Cookie names. Over TLS they take the __Host- prefix, which a browser
// accepts only on a Secure cookie of Path=/ without Domain, so no other
// host or path can set or shadow them.
const (
	sessionCookie = "envvault_session"
	loginCookie   = "envvault_login" // the pre-sign-in nonce that binds the sign-in form's CSRF token
	hostPrefix    = "__Host-"
	loginTTL      = time.Hour
)

// secure reports whether cookies of this request must be Secure.
func (s *server) secure(r *http.Request) bool { return s.secureCookies || r.TLS != nil }

func (s *server) cookieName(r *http.Request, name string) string {
	if s.secure(r) {
		return hostPrefix + name
	}
	return name
}

func (s *server) setCookie(w http.ResponseWriter, r *http.Request, name, value string, expires time.Time) {
	c := &http.Cookie{
		Name: s.cookieName(r, name), Value: value, Path: "/",
		HttpOnly: true, Secure: s.secure(r), SameSite: http.SameSiteStrictMode,
	}
	if expires.IsZero() {
		c.MaxAge = -1 // delete it
	} else {
		c.Expires = expires
		c.MaxAge = max(1, int(time.Until(expires).Seconds()))
	}
	http.SetCookie(w, c)
}

func (s *server) cookie(r *http.Request, name string) string {
	c, err := r.Cookie(s.cookieName(r, name))
	if err != nil {
		return ""
	}
	return c.Value
}

func (s *server) clearSession(w http.ResponseWriter, r *http.Request) {
	s.setCookie(w, r, sessionCookie, "", time.Time{})
}

// signedIn returns the user whose session cookie the request carries, once
// verify has checked it (signature, expiry, and that its API token still
// exists). Otherwise it has already answered: a redirect to the sign-in
// page, or an error page.
func (s *server) signedIn(w http.ResponseWriter, r *http.Request) (*user, bool) {
	cookie := s.cookie(r, sessionCookie)
	if cookie == "" {
		http.Redirect(w, r, "/login", http.StatusSeeOther)
		return nil, false
	}
	sess, err := s.sessions.verify(r.Context(), cookie)
	if err != nil {
		if reason := vault.AuthFailureReason(err); reason != "" {
			metrics.AuthFailure(r.Context(), reason)
		}
		s.fail(w, r, err) // EUNAUTHORIZED clears the cookie and redirects
		return nil, false
	}
	if sw, ok := w.(*statusWriter); ok {
		sw.userID = sess.UserID
	}
	return &user{ID: sess.UserID, Session: sess, CSRF: s.sessions.csrfToken(sess.ID)}, true
}

// loginForm is the sign-in page's data.
type loginForm struct {
	CSRF  string
	Error string
}

// loginBinding is what the sign-in form's CSRF token is bound to: the
// nonce in the login cookie, marked so that it can never equal a session id.
func loginBinding(nonce string) string {
	if nonce == "" {
		return ""
	}
	return "login:" + nonce
}

func (s *server) loginPage(w http.ResponseWriter, r *http.Request) {
	if c := s.cookie(r, sessionCookie); c != "" {
		if _, err := s.sessions.verify(r.Context(), c); err == nil {
			http.Redirect(w, r, "/settings/secrets", http.StatusSeeOther)
			return
		}
	}
	s.renderLogin(w, r, http.StatusOK, "", flash(r))
}

// renderLogin renders the sign-in form with a fresh nonce cookie.
func (s *server) renderLogin(w http.ResponseWriter, r *http.Request, status int, errMsg, flashMsg string) {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		s.fail(w, r, err)
		return
	}
	nonce := base64.RawURLEncoding.EncodeToString(b)
	s.setCookie(w, r, loginCookie, nonce, time.Now().Add(loginTTL))
	s.render(w, r, status, "login", view{Title: "Sign in", Flash: flashMsg,
		Data: loginForm{CSRF: s.sessions.csrfToken(loginBinding(nonce)), Error: errMsg}})
}

// login exchanges an API token for a session cookie. The token is never
// logged, kept or shown again.
func (s *server) login(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		s.badForm(w, r, err)
		return
	}
	if !s.sessions.checkCSRF(loginBinding(s.cookie(r, loginCookie)), r.PostForm.Get("csrf")) {
		s.log.Warn("sign-in without a valid CSRF token refused", slog.String("request_id", requestID(r.Context())))
		s.renderLogin(w, r, http.StatusForbidden,
			"This sign-in form has expired or did not come from this dashboard. Paste your token again.", "")
		return
	}
	token := strings.TrimSpace(r.PostForm.Get("token"))
	if token == "" {
		s.renderLogin(w, r, http.StatusUnprocessableEntity, "Paste your API token.", "")
		return
	}
	sess, cookie, err := s.sessions.signIn(r.Context(), token, s.ttl)
	var limited *vault.LimitError
	if errors.As(err, &limited) {
		// Too many failed sign-ins from this address or with this token
		// (vault/abuse.go): the token was not even looked up.
		metrics.RateLimited(r.Context(), limited.Limit)
		secs := max(1, int(math.Ceil(limited.RetryAfter.Seconds())))
		w.Header().Set("Retry-After", strconv.Itoa(secs))
		s.renderLogin(w, r, http.StatusTooManyRequests,
			fmt.Sprintf("Too many failed sign-ins from here. Wait %d seconds, then try again.", secs), "")
		return
	}
	if vault.ErrorCode(err) == vault.EFORBIDDEN {
		metrics.AuthFailure(r.Context(), metrics.ReasonScope)
		s.log.Info("sign-in refused: token scope", slog.String("request_id", requestID(r.Context())))
		s.renderLogin(w, r, http.StatusForbidden,
			"This token may only use the API (its scope is read or tasks). Sign in with a token of scope full.", "")
		return
	} else if vault.ErrorCode(err) == vault.EUNAUTHORIZED {
		metrics.AuthFailure(r.Context(), metrics.ReasonSignIn)
		s.log.Info("sign-in refused: bad token", slog.String("request_id", requestID(r.Context())))
		s.renderLogin(w, r, http.StatusUnauthorized,
			"This token is not valid. Use a token printed by envvault dev or envvault user create.", "")
		return
	} else if err != nil {
		s.fail(w, r, err)
		return
	}
	s.setCookie(w, r, loginCookie, "", time.Time{})
	s.setCookie(w, r, sessionCookie, cookie, sess.Expires)
	s.log.Info("signed in", slog.String("request_id", requestID(r.Context())),
		slog.String("user_id", sess.UserID), slog.String("token_id", sess.TokenID))
	http.Redirect(w, r, "/settings/secrets", http.StatusSeeOther)
}

// logout ends the session on the server (a copy of the cookie taken
// before is refused from now on, by every process) and clears the cookie.
func (s *server) logout(w http.ResponseWriter, r *http.Request, u *user) error {
	if err := s.sessions.signOut(r.Context(), u.Session); err != nil {
		return err
	}
	s.clearSession(w, r)
	http.Redirect(w, r, "/login?ok=signed-out", http.StatusSeeOther)
	return nil
}

// flashes are the fixed messages a redirect may ask a page to show; the
// query names one, so a link cannot make a page say anything else.
var flashes = map[string]string{
	"signed-out":       "You are signed out.",
	"secret-added":     "Secret added.",
	"secret-saved":     "Secret saved.",
	"secret-deleted":   "Secret deleted.",
	"profile-added":    "Profile created.",
	"profile-saved":    "Profile saved.",
	"profile-deleted":  "Profile deleted.",
	"task-stopping":    "Stop requested.",
	"task-restarting":  "Restart requested: the task gets a fresh container with the current values.",
	"task-started":     "Task queued.",
	"secret-not-found": "That secret no longer exists.",
	"token-revoked":    "Token revoked: it is refused from now on, and its dashboard sessions are ended.",
}

func flash(r *http.Request) string { return flashes[r.URL.Query().Get("ok")] }
