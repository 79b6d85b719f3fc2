package web

import (
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"html/template"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/envvault/envvault/vault"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// pageNames are the page templates, each templates/NAME.html defining
// "content" inside the layout.
var pageNames = []string{
	"error", "login",
	"secrets", "secret_form", "secret_delete", "secret_import", "secret_rollback",
	"profiles", "profile_form", "profile_delete",
	"tasks", "task",
	"tokens",
	"oauth2_connect", "oauth2_device",
}

func parsePages(a *assets) map[string]*template.Template {
	funcs := template.FuncMap{
		"asset": a.url,
		"when": func(t time.Time) string {
			if t.IsZero() {
				return ""
			}
			return t.UTC().Format("2006-01-02 15:04 UTC")
		},
		"iso": func(t time.Time) string { return t.UTC().Format(time.RFC3339) },
		"ago": func(t time.Time) string { return ago(t, time.Now()) },
		"scopeLabel": func(s vault.Scope) string {
			if s == vault.ScopeAgents {
				return "Only selected agents"
			}
			return "All profiles"
		},
		"lines": func(s []string) string { return strings.Join(s, "\n") },
		"join":  strings.Join,
	}
	base := template.Must(template.New("").Funcs(funcs).ParseFS(templateFS, "templates/layout.html", "templates/forms.html"))
	pages := make(map[string]*template.Template, len(pageNames))
	for _, name := range pageNames {
		pages[name] = template.Must(template.Must(base.Clone()).ParseFS(templateFS, "templates/"+name+".html"))
	}
	return pages
}

// ago says how long before now t was, in the largest whole unit, as a
// person reads it ("3 minutes ago"); the page gives the exact time beside
// it (a time element's datetime and title).
func ago(t, now time.Time) string {
	d := now.Sub(t)
	unit := func(n int, one string) string {
		if n == 1 {
			return "1 " + one + " ago"
		}
		return strconv.Itoa(n) + " " + one + "s ago"
	}
	switch {
	case t.IsZero():
		return "at a time not recorded"
	case d < time.Minute:
		return "just now"
	case d < time.Hour:
		return unit(int(d/time.Minute), "minute")
	case d < 24*time.Hour:
		return unit(int(d/time.Hour), "hour")
	case d < 30*24*time.Hour:
		return unit(int(d/(24*time.Hour)), "day")
	case d < 365*24*time.Hour:
		return unit(int(d/(30*24*time.Hour)), "month")
	}
	return unit(int(d/(365*24*time.Hour)), "year")
}

// assets serves the embedded static files. URLs carry a version, the hash
// of every file, so a browser may cache them for good.
type assets struct {
	version string
	files   map[string][]byte
}

func loadAssets() *assets {
	a := &assets{files: map[string][]byte{}}
	h := sha256.New()
	var names []string
	err := fs.WalkDir(staticFS, "static", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := staticFS.ReadFile(p)
		if err != nil {
			return err
		}
		a.files[strings.TrimPrefix(p, "static/")] = b
		names = append(names, p)
		return nil
	})
	if err != nil {
		panic("web: read embedded assets: " + err.Error())
	}
	sort.Strings(names)
	for _, n := range names {
		h.Write([]byte(n))
		h.Write(a.files[strings.TrimPrefix(n, "static/")])
	}
	a.version = hex.EncodeToString(h.Sum(nil))[:12]
	return a
}

// url returns the versioned URL of a static file.
func (a *assets) url(name string) string {
	if _, ok := a.files[name]; !ok {
		panic("web: no static file " + name)
	}
	return "/static/" + name + "?v=" + a.version
}

func (a *assets) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	name := strings.TrimPrefix(r.URL.Path, "/static/")
	b, ok := a.files[name]
	if !ok {
		http.NotFound(w, r)
		return
	}
	ct := mime.TypeByExtension(path.Ext(name))
	if ct == "" {
		ct = "application/octet-stream"
	}
	w.Header().Set("Content-Type", ct)
	if r.URL.Query().Get("v") == a.version {
		w.Header().Set("Cache-Control", "public, max-age=31536000, immutable")
	} else {
		w.Header().Set("Cache-Control", "no-cache")
	}
	if r.Method == http.MethodHead {
		return
	}
	_, _ = w.Write(b)
}
