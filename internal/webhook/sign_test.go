package webhook_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/dynamic-workers/gateway/internal/webhook"
)

var (
	secret  = []byte("whsec-test-secret")
	body    = []byte(`{"id":"ex_1","status":"finished"}`)
	signedT = time.Unix(1_800_000_000, 0)
)

// independentMAC computes the signature without the package's code, from
// the documented recipe.
func independentMAC(secret []byte, ts string, body string) string {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(ts + "." + body))
	return hex.EncodeToString(m.Sum(nil))
}

func TestSignFormat(t *testing.T) {
	t.Parallel()
	got := webhook.Sign(secret, signedT, body)
	want := "t=1800000000,v1=" + independentMAC(secret, "1800000000", string(body))
	if got != want {
		t.Errorf("Sign() = %q, want %q", got, want)
	}
}

func TestSignAllRotation(t *testing.T) {
	t.Parallel()
	old, next := []byte("old-secret"), []byte("new-secret")
	h := webhook.SignAll([][]byte{next, old}, signedT, body)
	if n := strings.Count(h, "v1="); n != 2 {
		t.Fatalf("SignAll() = %q, want 2 v1= values", h)
	}
	for _, s := range [][]byte{old, next} {
		if err := webhook.Verify(s, h, body, signedT, 0); err != nil {
			t.Errorf("Verify(%s) = %v, want nil", s, err)
		}
	}
	if err := webhook.Verify([]byte("third"), h, body, signedT, 0); !errors.Is(err, webhook.ErrSignature) {
		t.Errorf("Verify(unrelated secret) = %v, want ErrSignature", err)
	}
}

func TestVerifyAccepts(t *testing.T) {
	t.Parallel()
	good := webhook.Sign(secret, signedT, body)
	sig := strings.TrimPrefix(good, "t=1800000000,")
	forged := "v1=" + strings.Repeat("ab", 32)
	tests := []struct {
		name   string
		header string
		now    time.Time
	}{
		{"as signed", good, signedT},
		{"receiver clock 4 minutes ahead", good, signedT.Add(4 * time.Minute)},
		{"receiver clock 4 minutes behind", good, signedT.Add(-4 * time.Minute)},
		{"v1 before t", sig + ",t=1800000000", signedT},
		{"spaces around parts", "t=1800000000 , " + sig, signedT},
		{"rotation: a stale v1 and the right one", "t=1800000000," + forged + "," + sig, signedT},
		{"unknown scheme ignored", "t=1800000000,v0=zz," + sig, signedT},
		{"upper-case hex", "t=1800000000,v1=" + strings.ToUpper(strings.TrimPrefix(sig, "v1=")), signedT},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if err := webhook.Verify(secret, tt.header, body, tt.now, 0); err != nil {
				t.Errorf("Verify(%q) = %v, want nil", tt.header, err)
			}
		})
	}
}

func TestVerifyRefuses(t *testing.T) {
	t.Parallel()
	ts := "1800000000"
	good := independentMAC(secret, ts, string(body))
	tests := []struct {
		name   string
		secret []byte
		header string
		body   string
		now    time.Time
		want   error
	}{
		{"empty header", secret, "", string(body), signedT, webhook.ErrMalformed},
		{"no v1", secret, "t=" + ts, string(body), signedT, webhook.ErrMalformed},
		{"no t", secret, "v1=" + good, string(body), signedT, webhook.ErrMalformed},
		{"two t", secret, "t=" + ts + ",t=" + ts + ",v1=" + good, string(body), signedT, webhook.ErrMalformed},
		{"negative t", secret, "t=-1,v1=" + good, string(body), signedT, webhook.ErrMalformed},
		{"signed t", secret, "t=+" + ts + ",v1=" + good, string(body), signedT, webhook.ErrMalformed},
		{"t with exponent", secret, "t=1.8e9,v1=" + good, string(body), signedT, webhook.ErrMalformed},
		{"t in hex", secret, "t=0x6b49d200,v1=" + good, string(body), signedT, webhook.ErrMalformed},
		{"t too long", secret, "t=" + strings.Repeat("9", 30) + ",v1=" + good, string(body), signedT, webhook.ErrMalformed},
		{"part without =", secret, "t=" + ts + ",v1" + good, string(body), signedT, webhook.ErrMalformed},
		{"short v1", secret, "t=" + ts + ",v1=" + good[:62], string(body), signedT, webhook.ErrMalformed},
		{"v1 not hex", secret, "t=" + ts + ",v1=" + strings.Repeat("zz", 32), string(body), signedT, webhook.ErrMalformed},
		{"semicolons", secret, "t=" + ts + ";v1=" + good, string(body), signedT, webhook.ErrMalformed},
		{"huge header", secret, "t=" + ts + ",v1=" + good + strings.Repeat(",x=y", 2000), string(body), signedT, webhook.ErrMalformed},
		{"body changed", secret, "t=" + ts + ",v1=" + good, string(body) + " ", signedT, webhook.ErrSignature},
		{"t changed, same v1", secret, "t=1800000001,v1=" + good, string(body), signedT, webhook.ErrSignature},
		{"wrong secret", []byte("other"), "t=" + ts + ",v1=" + good, string(body), signedT, webhook.ErrSignature},
		{"v1 of the body alone", secret, "t=" + ts + ",v1=" + macOf(secret, string(body)), string(body), signedT, webhook.ErrSignature},
		{"v1 without the dot", secret, "t=" + ts + ",v1=" + macOf(secret, ts+string(body)), string(body), signedT, webhook.ErrSignature},
		{"replayed 6 minutes later", secret, "t=" + ts + ",v1=" + good, string(body), signedT.Add(6 * time.Minute), webhook.ErrTimestamp},
		{"from 6 minutes in the future", secret, "t=" + ts + ",v1=" + good, string(body), signedT.Add(-6 * time.Minute), webhook.ErrTimestamp},
		{"t=0", secret, "t=0,v1=" + independentMAC(secret, "0", string(body)), string(body), signedT, webhook.ErrTimestamp},
		{"empty secret", nil, "t=" + ts + ",v1=" + independentMAC(nil, ts, string(body)), string(body), signedT, webhook.ErrNoSecret},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := webhook.Verify(tt.secret, tt.header, []byte(tt.body), tt.now, 0)
			if !errors.Is(err, tt.want) {
				t.Errorf("Verify(%.60q) = %v, want %v", tt.header, err, tt.want)
			}
		})
	}
}

func macOf(secret []byte, msg string) string {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(msg))
	return hex.EncodeToString(m.Sum(nil))
}

func TestVerifyTolerance(t *testing.T) {
	t.Parallel()
	h := webhook.Sign(secret, signedT, body)
	now := signedT.Add(90 * time.Second)
	if err := webhook.Verify(secret, h, body, now, time.Minute); !errors.Is(err, webhook.ErrTimestamp) {
		t.Errorf("Verify(90s late, tolerance 1m) = %v, want ErrTimestamp", err)
	}
	if err := webhook.Verify(secret, h, body, now, 2*time.Minute); err != nil {
		t.Errorf("Verify(90s late, tolerance 2m) = %v, want nil", err)
	}
}
