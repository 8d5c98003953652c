package main

import (
	"net/http"
	"strings"
	"testing"
)

// TestTokenCommand: `referrals token` prints tokens a server with the same
// secret accepts, as the role they name (/metrics is for admins), and one
// signed with another secret is refused; bad arguments are named.
func TestTokenCommand(t *testing.T) {
	const secret = "local-secret"
	base := startServer(t, "--demo", "0", "--jwt-secret", secret)
	mint := func(args ...string) string {
		t.Helper()
		var out strings.Builder
		if err := tokenCommand(args, func(string) string { return "" }, &out); err != nil {
			t.Fatalf("token %v: %v", args, err)
		}
		return strings.TrimSpace(out.String())
	}
	metrics := func(token string) int {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, base+"/metrics", nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := metrics(mint("--secret", secret)); code != http.StatusOK {
		t.Errorf("/metrics with an admin token: %d, want 200", code)
	}
	if code := metrics(mint("--secret", secret, "--role", "partner", "--org", "org-a", "--ttl", "5m")); code != http.StatusForbidden {
		t.Errorf("/metrics with a partner token: %d, want 403", code)
	}
	if code := metrics(mint("--secret", "another")); code != http.StatusUnauthorized {
		t.Errorf("/metrics with a token of another secret: %d, want 401", code)
	}
	var env strings.Builder
	if err := tokenCommand(nil, func(k string) string { return map[string]string{"JWT_SECRET": secret}[k] }, &env); err != nil || metrics(strings.TrimSpace(env.String())) != http.StatusOK {
		t.Errorf("a token from JWT_SECRET: %v", err)
	}
	for _, bad := range []struct {
		args []string
		says string
	}{
		{nil, "--secret"},
		{[]string{"--secret", "s", "--role", "owner"}, "--role"},
		{[]string{"--secret", "s", "--role", "partner"}, "--org"},
		{[]string{"--secret", "s", "--role", "partner", "--org", "a/b"}, "--org"},
		{[]string{"--secret", "s", "--ttl", "-1h"}, "--ttl"},
	} {
		if err := tokenCommand(bad.args, func(string) string { return "" }, &strings.Builder{}); err == nil || !strings.Contains(err.Error(), bad.says) {
			t.Errorf("token %v: %v, want an error naming %s", bad.args, err, bad.says)
		}
	}
}

// TestTokenExitStatus: `referrals token --help` prints its usage and
// exits 0, as asked; a mistake exits 2 and says what it was.
func TestTokenExitStatus(t *testing.T) {
	for _, c := range []struct {
		args   []string
		status int
		says   string
	}{
		{[]string{"--help"}, 0, "-secret"},
		{[]string{"--secret", "s", "--role", "root"}, 2, `--role "root" is neither admin nor partner`},
		{[]string{"--bogus"}, 2, "flag provided but not defined: -bogus"},
	} {
		var out, stderr strings.Builder
		status := tokenStatus(tokenCommand(c.args, func(string) string { return "" }, &out), &stderr)
		if status != c.status || !strings.Contains(out.String()+stderr.String(), c.says) {
			t.Errorf("token %v: status %d, printed %q and %q; want %d saying %q", c.args, status, out.String(), stderr.String(), c.status, c.says)
		}
	}
}
