package store_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/dynamic-workers/gateway/internal/store"
)

// TestAttackPostgresURLPasswordNotInError opens storage.url spellings that
// pgx cannot parse or reach, with the password written in ways its own
// best-effort redaction misses (an unescaped @, several hosts, a query
// parameter): the error, which the gateway prints when it cannot start,
// never carries the password.
func TestAttackPostgresURLPasswordNotInError(t *testing.T) {
	t.Parallel()
	const pw = "S3CRETPW"
	urls := []string{
		"postgres://u:pa@" + pw + "@127.0.0.1:notaport/db",
		"postgresql://u:x@y@" + pw + "@127.0.0.1:1:2/db",
		"postgres://u:a@" + pw + "@h1:x,h2/db",
		"postgres://u:" + pw + "@127.0.0.1:notaport/db",
		"postgres://u:" + pw + "@[::1/db",
		"postgres://u:" + pw + "@h/db?sslmode=bogus",
		"postgres://u:" + pw + " x@h:1/db",
		"postgres://h:1/db?password=" + pw + "&sslmode=bogus",
		"postgres://u:" + pw + "@127.0.0.1:1/db?connect_timeout=1",
	}
	for _, u := range urls {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		st, err := store.Open(ctx, u)
		cancel()
		if err == nil {
			st.Close()
			t.Errorf("Open(%q) = nil error, want one", u)
			continue
		}
		if strings.Contains(err.Error(), pw) {
			t.Errorf("Open(%q) = %q, which carries the password", u, err)
		}
	}
}
