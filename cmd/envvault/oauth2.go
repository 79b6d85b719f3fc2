package main

import (
	"flag"
	"fmt"
	"strings"
	"time"

	"github.com/envvault/envvault/internal/egress"
	"github.com/envvault/envvault/vault"
)

// oauth2Flags are the flags of a worker's and a server's OAuth2 secrets
// (vault/oauth2.go): --oauth2-refresh-margin, OAUTH2_REFRESH_MARGIN, and
// --oauth2-allow-network, OAUTH2_ALLOW_NETWORK.
func oauth2Flags(fs *flag.FlagSet, c *Config) {
	fs.Func("oauth2-allow-network", "a network in CIDR form (such as 10.20.0.0/16) that is not public but where OAuth2 token endpoints may be: repeat it or separate with commas. By default envvault calls users' token URLs on public addresses only, never loopback, private, link-local (cloud metadata) or other reserved ones",
		func(s string) error {
			ps, err := egress.ParsePrefixes("oauth2-allow-network", strings.Split(s, ","))
			if err != nil {
				return err
			}
			c.Tasks.OAuth2AllowNetworks = append(c.Tasks.OAuth2AllowNetworks, ps...)
			return nil
		})
	c.Tasks.OAuth2RefreshMargin = vault.DefaultOAuth2RefreshMargin
	usage := fmt.Sprintf("a task gets an OAuth2 secret's access token only if it stays valid this long, else a fresh one: %v to %v (default %v)",
		vault.MinOAuth2RefreshMargin, vault.MaxOAuth2RefreshMargin, vault.DefaultOAuth2RefreshMargin)
	fs.Func("oauth2-refresh-margin", usage, func(s string) error {
		v, err := time.ParseDuration(s)
		if err == nil {
			err = vault.ValidateOAuth2RefreshMargin("oauth2-refresh-margin", v)
		}
		if err != nil {
			return fmt.Errorf("must be a duration from %v to %v, such as 10m", vault.MinOAuth2RefreshMargin, vault.MaxOAuth2RefreshMargin)
		}
		c.Tasks.OAuth2RefreshMargin = v
		return nil
	})
}
