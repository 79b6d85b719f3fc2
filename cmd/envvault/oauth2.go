package main

import (
	"flag"
	"fmt"
	"time"

	"github.com/envvault/envvault/vault"
)

// oauth2Flags is the flag of a worker's OAuth2 secrets (vault/oauth2.go):
// --oauth2-refresh-margin, OAUTH2_REFRESH_MARGIN.
func oauth2Flags(fs *flag.FlagSet, c *Config) {
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
