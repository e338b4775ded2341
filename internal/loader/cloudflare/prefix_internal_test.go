package cloudflare

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/dynamic-workers/gateway/execution"
	"github.com/dynamic-workers/gateway/internal/loader/shim"
)

// TestPathPrefix: with cloudflare.url carrying a path,
// the relay calls the shim's routes under it and signs the whole path, as
// worker/src/auth.js checks it.
func TestPathPrefix(t *testing.T) {
	t.Parallel()
	secret := strings.Repeat("s", 32)
	for _, base := range []string{"/gw", "/gw/", "/team/gw"} {
		t.Run(base, func(t *testing.T) {
			t.Parallel()
			prefix := strings.TrimSuffix(base, "/")
			var mu sync.Mutex
			var paths []string
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				body, _ := io.ReadAll(r.Body)
				want := shim.Signature(secret, r.Method, r.URL.Path, r.Header.Get(shim.HeaderTimestamp), r.Header.Get(shim.HeaderNonce), body)
				mu.Lock()
				paths = append(paths, r.URL.Path)
				mu.Unlock()
				switch {
				case r.Header.Get(shim.HeaderSignature) != want:
					answer(w, http.StatusUnauthorized, `{"message":"unauthorized: the signature does not match"}`)
				case r.URL.Path == prefix+"/verify":
					w.WriteHeader(http.StatusNoContent)
				case r.URL.Path == prefix+"/run":
					answer(w, http.StatusOK, resultLine)
				default:
					answer(w, http.StatusNotFound, "not found")
				}
			}))
			t.Cleanup(srv.Close)
			r, err := New(Config{URL: srv.URL + base, Secret: secret, VerifyInterval: time.Hour}, zerolog.Nop())
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { r.Close() })
			if err := r.Ready(t.Context()); err != nil {
				t.Errorf("Ready() = %v, want nil", err)
			}
			if err := r.Execute(t.Context(), job(), func(execution.Event) error { return nil }); err != nil {
				t.Errorf("Execute() = %v, want nil", err)
			}
			mu.Lock()
			defer mu.Unlock()
			if want := []string{prefix + "/verify", prefix + "/run"}; strings.Join(paths, " ") != strings.Join(want, " ") {
				t.Errorf("the shim was called at %v, want %v", paths, want)
			}
		})
	}
}
