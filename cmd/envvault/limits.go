package main

import (
	"flag"
	"fmt"
	"strconv"
	"time"

	"github.com/envvault/envvault/api"
	"github.com/envvault/envvault/vault"
	"github.com/envvault/envvault/web"
)

// Bounds of the dashboard's idle timeout (--session-idle): at least a
// minute, the granularity at which a session's last request is written
// (vault.SessionTouchInterval), at most a session's whole life.
const (
	minSessionIdle = vault.SessionTouchInterval
	maxSessionIdle = web.DefaultSessionTTL
)

// limitFlags are the server's abuse limits: each user's writes
// (--write-rate, --write-burst) and the dashboard's idle timeout
// (--session-idle). The limits of failed authentication are fixed
// (vault/abuse.go).
func limitFlags(fs *flag.FlagSet, c *Config) {
	c.WriteRate, c.WriteBurst, c.SessionIdle = api.DefaultWritesPerSecond, api.DefaultWriteBurst, vault.DefaultSessionIdle
	fs.Func("write-rate", fmt.Sprintf("each user's API writes a second, 429 with Retry-After above; 0 for no limit (default %g)", api.DefaultWritesPerSecond), func(s string) error {
		v, err := strconv.ParseFloat(s, 64)
		if err != nil || v < 0 {
			return fmt.Errorf("must be a number of writes a second, 0 (no limit) or more, such as 20")
		}
		c.WriteRate = v
		return nil
	})
	fs.Func("write-burst", fmt.Sprintf("each user's API writes allowed at once above --write-rate (default %d)", api.DefaultWriteBurst), func(s string) error {
		v, err := strconv.Atoi(s)
		if err != nil || v < 1 {
			return fmt.Errorf("must be a whole number of writes, 1 or more, such as 40")
		}
		c.WriteBurst = v
		return nil
	})
	fs.Func("session-idle", fmt.Sprintf("a dashboard session ends after this long without a request, %v to %v (default %v)", minSessionIdle, maxSessionIdle, vault.DefaultSessionIdle), func(s string) error {
		v, err := time.ParseDuration(s)
		if err != nil || v < minSessionIdle || v > maxSessionIdle {
			return fmt.Errorf("must be a duration from %v to %v, such as 30m", minSessionIdle, maxSessionIdle)
		}
		c.SessionIdle = v
		return nil
	})
}
