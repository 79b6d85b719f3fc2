package web

import (
	"testing"
	"time"
)

func TestAgo(t *testing.T) {
	now := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	for d, want := range map[time.Duration]string{
		0: "just now", 59 * time.Second: "just now", time.Minute: "1 minute ago", 59 * time.Minute: "59 minutes ago",
		time.Hour: "1 hour ago", 23 * time.Hour: "23 hours ago", 24 * time.Hour: "1 day ago", 29 * 24 * time.Hour: "29 days ago",
		30 * 24 * time.Hour: "1 month ago", 364 * 24 * time.Hour: "12 months ago", 365 * 24 * time.Hour: "1 year ago",
		-time.Hour: "just now", // a clock a little ahead says no more than that
	} {
		if got := ago(now.Add(-d), now); got != want {
			t.Errorf("ago(now - %v) = %q, want %q", d, got, want)
		}
	}
	if got := ago(time.Time{}, now); got != "at a time not recorded" {
		t.Errorf("ago(zero) = %q", got)
	}
}
