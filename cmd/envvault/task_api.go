package main

import (
	"flag"
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"

	"github.com/envvault/envvault/vault"
)

// taskAPIConfig is how task containers reach the API with their task
// credential (issue 13 item 3, orchestrator/task_credential.go).
type taskAPIConfig struct {
	// URL is --task-api-url, TASK_API_URL: the API as task containers
	// reach it ("" gives tasks no credential). A container cannot reach the
	// host's 127.0.0.1: on Docker's default bridge it is the bridge's
	// gateway (docker network inspect bridge; 172.17.0.1 by default), with
	// the server listening there.
	URL string
	// TTL is --task-credential-ttl, TASK_CREDENTIAL_TTL: the most a task
	// credential lives; it also stops when its attempt ends.
	TTL time.Duration
}

// taskAPIFlags are the flags of the task API.
func taskAPIFlags(fs *flag.FlagSet, c *Config) {
	t := &c.Tasks.TaskAPI
	fs.StringVar(&t.URL, "task-api-url", "", "URL at which task containers reach this API (e.g. http://172.17.0.1:8080, the default bridge's gateway, with --addr listening there); given, every task gets ENVVAULT_TASK_TOKEN and ENVVAULT_URL to list its profile's secret keys and ask for missing secrets; plain http only to a loopback or private address")
	fs.DurationVar(&t.TTL, "task-credential-ttl", vault.DefaultTaskCredentialTTL, "most a task credential lives (1m to 720h); it stops anyway when its task attempt ends")
}

// checkTaskAPI checks --task-api-url and --task-credential-ttl. The URL
// must be absolute http or https with a host, no user, query or fragment;
// plain http only to a loopback or private IP address (or localhost), as
// the credential travels in it.
func (t taskAPIConfig) check() error {
	if t.TTL < time.Minute || t.TTL > vault.MaxTaskCredentialTTL {
		return fmt.Errorf("--task-credential-ttl (TASK_CREDENTIAL_TTL) is %s: it must be from 1m to 720h", t.TTL)
	}
	if t.URL == "" {
		return nil
	}
	bad := func(why string) error {
		return fmt.Errorf("--task-api-url (TASK_API_URL) %q: %s", t.URL, why)
	}
	u, err := url.Parse(t.URL)
	switch {
	case err != nil:
		return bad("not a URL")
	case u.Scheme != "http" && u.Scheme != "https":
		return bad("must start with http:// or https://")
	case u.Host == "" || u.Hostname() == "":
		return bad("must name a host")
	case u.User != nil || u.RawQuery != "" || u.Fragment != "" || u.Opaque != "":
		return bad("must have no user, query or fragment")
	case strings.TrimSuffix(u.Path, "/") != "":
		return bad("must be the API's root, with no path (tasks call <url>/v1/task/...)")
	}
	if u.Scheme == "http" && !privateHost(u.Hostname()) {
		return bad("plain http carries the task credential in clear: use https, or a loopback or private address (such as the Docker bridge's gateway)")
	}
	return nil
}

// privateHost reports whether host is localhost or a loopback, private
// (RFC 1918, fc00::/7) or link-local IP address.
func privateHost(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && (ip.IsLoopback() || ip.IsPrivate() || ip.IsLinkLocalUnicast())
}

// url is the URL tasks get, without a trailing slash.
func (t taskAPIConfig) url() string { return strings.TrimSuffix(t.URL, "/") }
