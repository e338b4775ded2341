package shim_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/dynamic-workers/gateway/internal/loader/loadertest"
	"github.com/dynamic-workers/gateway/internal/loader/shim"
)

// TestSignatureVector pins the signature format; worker/test/auth.test.js
// checks the shim computes the same value.
func TestSignatureVector(t *testing.T) {
	t.Parallel()
	got := shim.Signature("0123456789abcdef0123456789abcdef", "POST", "/run", "1700000000", "nonce-1", []byte(`{"id":"x"}`))
	const want = "d1c9bd351d4173c031fa26e6c35d16a4a42423ca801593b97224ac8bb22d3c43"
	if got != want {
		t.Errorf("Signature = %s, want %s", got, want)
	}
}

func TestShimRefusesBadSignatures(t *testing.T) {
	t.Parallel()
	l := loadertest.StartLocal(t, zerolog.Nop(), loadertest.Processes(1))
	defer l.Close()
	base, secret := l.ShimURL()
	body, _ := json.Marshal(loadertest.Job("signed", loadertest.Hello, 5*time.Second))

	send := func(t *testing.T, b []byte, prepare func(*http.Request)) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, base+"/run", bytes.NewReader(b))
		prepare(req)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		data, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(data)
	}
	tests := []struct {
		name    string
		body    []byte
		prepare func(*http.Request)
		want    string
	}{
		{"unsigned", body, func(*http.Request) {}, "not signed"},
		{"wrong secret", body, func(r *http.Request) { shim.Sign(r, body, strings.Repeat("f", 64), time.Now()) }, "does not match"},
		{"stale", body, func(r *http.Request) { shim.Sign(r, body, secret, time.Now().Add(-5*time.Minute)) }, "time window"},
		{"future", body, func(r *http.Request) { shim.Sign(r, body, secret, time.Now().Add(5*time.Minute)) }, "time window"},
		{"tampered body", append(bytes.Clone(body[:len(body)-1]), []byte(`,"x":1}`)...), func(r *http.Request) { shim.Sign(r, body, secret, time.Now()) }, "does not match"},
		{"tampered signature", body, func(r *http.Request) {
			shim.Sign(r, body, secret, time.Now())
			sig := []byte(r.Header.Get(shim.HeaderSignature))
			sig[0] ^= 1
			r.Header.Set(shim.HeaderSignature, string(sig))
		}, "does not match"},
		{"other nonce", body, func(r *http.Request) {
			shim.Sign(r, body, secret, time.Now())
			r.Header.Set(shim.HeaderNonce, "another")
		}, "does not match"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, text := send(t, tt.body, tt.prepare)
			if status != http.StatusUnauthorized || !strings.Contains(text, tt.want) {
				t.Errorf("status %d %q, want 401 mentioning %q", status, text, tt.want)
			}
		})
	}

	// A correctly signed call runs; the very same call again is a replay.
	var signed http.Header
	status, text := send(t, body, func(r *http.Request) {
		shim.Sign(r, body, secret, time.Now())
		signed = r.Header.Clone()
	})
	if status != http.StatusOK || !strings.Contains(text, `"success":true`) {
		t.Fatalf("signed call: %d %s, want 200 with a successful result", status, text)
	}
	status, text = send(t, body, func(r *http.Request) { r.Header = signed })
	if status != http.StatusUnauthorized || !strings.Contains(text, "replayed") {
		t.Errorf("replayed call: %d %q, want 401 replayed", status, text)
	}
}
