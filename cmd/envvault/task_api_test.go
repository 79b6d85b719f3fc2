package main

import (
	"strings"
	"testing"
	"time"
)

// TestTaskAPIFlags: --task-api-url and --task-credential-ttl, their
// defaults, what they accept and each refusal naming the flag and rule.
func TestTaskAPIFlags(t *testing.T) {
	t.Parallel()
	m, err := parseOnly(t, "runner", "--worker-id", "w")
	if err != nil {
		t.Fatal(err)
	}
	if c := m.Config.Tasks.TaskAPI; c.URL != "" || c.TTL != 24*time.Hour {
		t.Errorf("defaults %+v", c)
	}
	for _, u := range []string{"http://172.17.0.1:8080", "http://127.0.0.1:9/", "http://localhost:8080", "http://10.0.0.5", "http://[fd00::1]:80", "https://envvault.example.com"} {
		m, err := parseOnly(t, "serve", "--task-api-url", u, "--task-credential-ttl", "2h")
		if err != nil || m.Config.Tasks.TaskAPI.URL != u || m.Config.Tasks.TaskAPI.TTL != 2*time.Hour {
			t.Errorf("%s: %+v, %v", u, m.Config.Tasks.TaskAPI, err)
		} else if got := m.Config.Tasks.TaskAPI.url(); strings.HasSuffix(got, "/") {
			t.Errorf("%s: tasks get %s", u, got)
		}
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"serve", "--task-api-url", "ftp://172.17.0.1"}, "must start with http:// or https://"},
		{[]string{"serve", "--task-api-url", "172.17.0.1:8080"}, "--task-api-url (TASK_API_URL)"},
		{[]string{"serve", "--task-api-url", "http://envvault.example.com"}, "plain http carries the task credential in clear"},
		{[]string{"serve", "--task-api-url", "http://8.8.8.8:80"}, "plain http"},
		{[]string{"serve", "--task-api-url", "http://172.17.0.1:8080/v1"}, "no path"},
		{[]string{"serve", "--task-api-url", "http://u:p@172.17.0.1"}, "no user, query or fragment"},
		{[]string{"serve", "--task-api-url", "https://h/?x=1"}, "no user, query or fragment"},
		{[]string{"serve", "--task-api-url", "https://"}, "must name a host"},
		{[]string{"dev", "--task-credential-ttl", "30s"}, "--task-credential-ttl (TASK_CREDENTIAL_TTL) is 30s: it must be from 1m to 720h"},
		{[]string{"runner", "--worker-id", "w", "--task-credential-ttl", "721h"}, "--task-credential-ttl"},
	} {
		if _, err := parseOnly(t, tc.args...); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: %v, want an error with %q", tc.args, err, tc.want)
		}
	}
}
