package main

import (
	"flag"
	"fmt"
	"net/url"
	"strings"

	"github.com/envvault/envvault/vault"
)

// publicURLFlag is --public-url: the dashboard's address as browsers reach
// it, which OAuth2 providers redirect back to (issue 17): the redirect URL
// to register at a provider is vault.OAuth2CallbackURL of it. Unset, the
// server takes each request's scheme and host, right when browsers reach
// the server directly.
func publicURLFlag(fs *flag.FlagSet, c *Config) {
	fs.Func("public-url", "the dashboard's address as browsers reach it, such as https://vault.example.com; OAuth2 providers redirect to it + "+
		vault.OAuth2CallbackPath+" (default: each request's scheme and host)", func(s string) error {
		u, err := url.Parse(s)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
			return fmt.Errorf("must be an absolute http or https URL without user, query or fragment, such as https://vault.example.com")
		}
		c.PublicURL = strings.TrimRight(s, "/")
		return nil
	})
}
