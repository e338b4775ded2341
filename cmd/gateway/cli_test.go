package main

import (
	"net"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dynamic-workers/gateway/internal/loader/loadertest"
)

// TestServeHelpNamesValues checks that --help names each flag's value as
// what it takes, not as a word of its help or "string" for a number.
func TestServeHelpNamesValues(t *testing.T) {
	t.Parallel()
	var stdout, stderr loadertest.Buffer
	if err := run(t.Context(), []string{"serve", "--help"}, func(string) string { return "" }, nil, &stdout, &stderr); err != nil {
		t.Fatalf("serve --help = %v, want nil", err)
	}
	help := stderr.String()
	for _, want := range []string{"--backend local|cloudflare ", "--processes n ", "--listen host:port ", "--workerd path ", "--log-level level ", "--config file "} {
		if !strings.Contains(help, want) {
			t.Errorf("serve --help lacks %q:\n%s", want, help)
		}
	}
	for _, bad := range []string{"--backend gateway deploy", " string ", "`"} {
		if strings.Contains(help, bad) {
			t.Errorf("serve --help shows %q:\n%s", bad, help)
		}
	}
}

// TestServeRefusesANonNumberForANumber checks a number flag at parse time.
func TestServeRefusesANonNumberForANumber(t *testing.T) {
	t.Parallel()
	var stdout, stderr loadertest.Buffer
	err := run(t.Context(), []string{"serve", "--processes", "two"}, func(string) string { return "" }, nil, &stdout, &stderr)
	if err == nil || !strings.Contains(err.Error(), "processes") || !strings.Contains(err.Error(), "whole number") {
		t.Errorf("serve --processes two = %v, want an error naming the flag and what it takes", err)
	}
}

func TestVersionAndKeysHelp(t *testing.T) {
	t.Parallel()
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"version"}, version + "\n"},
		{[]string{"--version"}, version + "\n"},
		{[]string{"keys", "--help"}, "usage: gateway keys new NAME"},
		{[]string{"keys", "-h"}, "usage: gateway keys new NAME"},
	}
	for _, tt := range tests {
		var stdout, stderr loadertest.Buffer
		err := run(t.Context(), tt.args, func(string) string { return "" }, nil, &stdout, &stderr)
		if err != nil || !strings.HasPrefix(stdout.String(), tt.want) {
			t.Errorf("run(%q) = %v, stdout %q; want nil and %q", tt.args, err, stdout.String(), tt.want)
		}
	}
	var stdout, stderr loadertest.Buffer
	if err := run(t.Context(), []string{"keys", "old"}, func(string) string { return "" }, nil, &stdout, &stderr); err == nil {
		t.Error("run(keys old) = nil, want a usage error")
	}
}

// TestServePortInUse checks that a port in use stops the gateway with that
// error and nothing else: no runtime, store or service was started to be
// torn down (which could log "database is closed" first).
func TestServePortInUse(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	env := map[string]string{"GATEWAY_STORAGE_PATH": filepath.Join(t.TempDir(), "executions.db"), "GATEWAY_RUNTIME_WORKERD": loadertest.Workerd(t)}
	var stdout, stderr loadertest.Buffer
	err = run(t.Context(), []string{"serve", "--listen", ln.Addr().String()}, func(k string) string { return env[k] }, nil, &stdout, &stderr)
	if err == nil || !strings.Contains(err.Error(), "address already in use") {
		t.Fatalf("serve on a port in use = %v, want address already in use", err)
	}
	// Nothing was started (no runtime, no store, no service), so nothing
	// was logged or torn down.
	if log := stdout.String(); log != "" {
		t.Errorf("serve on a port in use logged before its error, want nothing:\n%s", log)
	}
}
