// Package shim speaks the gateway's side of the wire protocol to the shim
// Worker (worker/), wherever it runs: the job posted as one signed call
// (Sign, checked by worker/src/auth.js) or, to a local process, sent on its
// channel (channel.go, a WebSocket signed once), the NDJSON stream of events the
// shim answers with, relayed by Call, and the checks every line from the
// shim passes before it reaches a caller (check.go). The backends in
// internal/loader/local and internal/loader/cloudflare both use it.
package shim

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"strconv"
	"time"
)

// Headers of a signed call from the gateway to the shim.
const (
	HeaderTimestamp = "X-Gateway-Timestamp"
	HeaderNonce     = "X-Gateway-Nonce"
	HeaderSignature = "X-Gateway-Signature"
)

// Sign signs a call to the shim: HMAC-SHA256 with secret over the method,
// the path, the timestamp, a random nonce and the SHA-256 of the body, as
// worker/src/auth.js verifies it. The nonce makes every call's signature
// unique, so the shim can refuse a replayed one.
func Sign(req *http.Request, body []byte, secret string, now time.Time) {
	ts := strconv.FormatInt(now.Unix(), 10)
	var n [16]byte
	_, _ = rand.Read(n[:])
	nonce := hex.EncodeToString(n[:])
	req.Header.Set(HeaderTimestamp, ts)
	req.Header.Set(HeaderNonce, nonce)
	req.Header.Set(HeaderSignature, Signature(secret, req.Method, req.URL.Path, ts, nonce, body))
}

// Signature computes the signature Sign sends.
func Signature(secret, method, path, timestamp, nonce string, body []byte) string {
	sum := sha256.Sum256(body)
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(method + "\n" + path + "\n" + timestamp + "\n" + nonce + "\n" + hex.EncodeToString(sum[:])))
	return hex.EncodeToString(mac.Sum(nil))
}
