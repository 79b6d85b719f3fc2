package web

import (
	"net/http"
	"net/url"
	"strconv"

	"github.com/envvault/envvault/vault"
)

// The pages that connect an oauth2 secret (issue 17): Connect (the
// Authorization Code flow with PKCE; vault/oauth2_flow.go), its callback,
// and the device flow's code page (vault/oauth2_device.go).

// deviceRefresh is how often, in seconds, a device flow's page reloads
// while it waits for the user's approval.
const deviceRefresh = 5

// callbackURL is the redirect URL this request's dashboard registers: from
// Config.PublicURL, else from the request's own scheme and host.
func (s *server) callbackURL(r *http.Request) string {
	if s.publicURL != "" {
		return vault.OAuth2CallbackURL(s.publicURL)
	}
	scheme := "http"
	if s.secure(r) {
		scheme = "https"
	}
	return vault.OAuth2CallbackURL(scheme + "://" + r.Host)
}

// connectData is the Connect page's data.
type connectData struct {
	CSRF        string
	Secret      *vault.Secret
	Provider    string // the authorization or device endpoint's host
	CallbackURL string
	Device      bool
	// GoURL is the authorization URL the page loads, once Connect started.
	GoURL string
}

// oauth2Secret reads one of the user's oauth2 secrets, with its settings.
func (s *server) oauth2Secret(r *http.Request, u *user) (*vault.Secret, error) {
	sec, err := s.vault.Secret(r.Context(), u.ID, r.PathValue("id"))
	if err != nil {
		return nil, err
	}
	if sec.Kind != vault.KindOAuth2 || sec.OAuth2 == nil {
		return nil, vault.Invalid("kind", "secret %s is not an oauth2 secret: it has nothing to connect", sec.Name)
	}
	return sec, nil
}

// connectPage says where Connect leads (the provider, the scopes, the
// callback URL to register) and holds the form that starts the flow.
func (s *server) connectPage(w http.ResponseWriter, r *http.Request, u *user) error {
	sec, err := s.oauth2Secret(r, u)
	if err != nil {
		return err
	}
	d := connectData{CSRF: u.CSRF, Secret: sec, CallbackURL: s.callbackURL(r)}
	switch sec.OAuth2.Flow {
	case vault.FlowAuthorizationCode:
		d.Provider = hostOf(sec.OAuth2.AuthURL)
	case vault.FlowDeviceCode:
		d.Provider, d.Device = hostOf(sec.OAuth2.DeviceAuthURL), true
	default:
		return vault.Invalid("flow", "secret %s uses the client credentials flow: it connects by itself at the first task start, with no user", sec.Name)
	}
	s.render(w, r, http.StatusOK, "oauth2_connect", view{Title: "Connect " + sec.Name, Nav: "secrets", User: u, Data: d})
	return nil
}

func hostOf(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return ""
	}
	return u.Host
}

// connect starts the Authorization Code flow, bound to this session, and
// sends the browser to the provider. Not by a redirect: CSP form-action
// ('self') covers every hop of a form's redirects, and a provider's sign-in
// may pass through origins no one can list. The answer is a page that
// loads the authorization URL at once (Refresh), with a link to it.
func (s *server) connect(w http.ResponseWriter, r *http.Request, u *user) error {
	sec, err := s.oauth2Secret(r, u)
	if err != nil {
		return err
	}
	a, err := s.vault.StartOAuth2Authorization(r.Context(), u.ID, sec.ID, u.Session.ID, s.callbackURL(r))
	if err != nil {
		return err
	}
	w.Header().Set("Refresh", "0; url="+a.URL)
	s.render(w, r, http.StatusOK, "oauth2_connect", view{Title: "Connect " + sec.Name, Nav: "secrets", User: u,
		Data: connectData{Secret: sec, Provider: hostOf(sec.OAuth2.AuthURL), GoURL: a.URL}})
	return nil
}

// callback completes an authorization at the provider's redirect back.
//
// The session cookie is SameSite=Strict, so a browser arriving from the
// provider's site does not send it. The first visit without a session
// answers a page that reloads the same URL at once: that load comes from
// this site, with the cookie. A visit that still has none asks to sign in;
// the state is left unused.
func (s *server) callback(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	u := s.sessionUser(r)
	if u == nil {
		if q.Get("again") == "" {
			q.Set("again", "1")
			w.Header().Set("Refresh", "0; url="+vault.OAuth2CallbackPath+"?"+q.Encode())
			s.render(w, r, http.StatusOK, "error", view{Title: "Connecting…", Status: http.StatusOK,
				Message: "Finishing the connection…"})
			return
		}
		s.renderError(w, r, http.StatusUnauthorized,
			"Sign in to the dashboard as the user who started this connection, then start Connect again.")
		return
	}
	if sw, ok := w.(*statusWriter); ok {
		sw.userID = u.ID
	}
	r = withSession(r, u)
	done, err := s.vault.CompleteOAuth2Authorization(r.Context(), u.ID, u.Session.ID, vault.OAuth2Callback{
		State: q.Get("state"), Code: q.Get("code"), Error: q.Get("error"), ErrorDescription: q.Get("error_description"),
	})
	if err != nil {
		if code := vault.ErrorCode(err); code == vault.EINVALID || code == vault.EUNAVAILABLE {
			status := http.StatusBadRequest
			if code == vault.EUNAVAILABLE {
				status = http.StatusBadGateway
			}
			s.render(w, r, status, "error", view{Title: "Not connected", User: u, Status: status,
				Message: "The secret was not connected: " + vault.ErrorMessage(err)})
			return
		}
		s.fail(w, r, err)
		return
	}
	http.Redirect(w, r, "/settings/secrets/"+url.PathEscape(done.SecretID)+"/connect?connected=1", http.StatusSeeOther)
}

// sessionUser is signedIn without answering: nil when the request has no
// valid session.
func (s *server) sessionUser(r *http.Request) *user {
	cookie := s.cookie(r, sessionCookie)
	if cookie == "" {
		return nil
	}
	sess, err := s.sessions.verify(r.Context(), cookie)
	if err != nil {
		return nil
	}
	return &user{ID: sess.UserID, Session: sess, CSRF: s.sessions.csrfToken(sess.ID)}
}

// deviceData is the device flow page's data.
type deviceData struct {
	CSRF   string
	Secret *vault.Secret
	Flow   *vault.OAuth2FlowRecord
}

// deviceStart asks the provider for a user code and shows it.
func (s *server) deviceStart(w http.ResponseWriter, r *http.Request, u *user) error {
	f, err := s.vault.StartOAuth2Device(r.Context(), u.ID, r.PathValue("id"), u.Session.ID)
	if err != nil {
		return err
	}
	http.Redirect(w, r, "/settings/secrets/"+url.PathEscape(f.SecretID)+"/device/"+url.PathEscape(f.ID), http.StatusSeeOther)
	return nil
}

// devicePage shows a device flow's code and outcome; it reloads itself
// while the flow waits.
func (s *server) devicePage(w http.ResponseWriter, r *http.Request, u *user) error {
	sec, err := s.oauth2Secret(r, u)
	if err != nil {
		return err
	}
	f, err := s.vault.OAuth2DeviceFlow(r.Context(), u.ID, r.PathValue("flow"))
	if err != nil {
		return err
	}
	if f.SecretID != sec.ID {
		return vault.Errorf(vault.ENOTFOUND, "no such device flow")
	}
	if f.Status == vault.OAuth2FlowPending {
		w.Header().Set("Refresh", strconv.Itoa(deviceRefresh))
	}
	s.render(w, r, http.StatusOK, "oauth2_device", view{Title: "Connect " + sec.Name, Nav: "secrets", User: u,
		Data: deviceData{CSRF: u.CSRF, Secret: sec, Flow: f}})
	return nil
}
