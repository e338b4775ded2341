// Package playground serves the gateway's browser playground: one page, its
// script and its stylesheet, embedded in the binary. The script (assets/app.js)
// is the editor (CodeMirror 6) and the page's logic, bundled from src/ and the
// npm packages package-lock.json pins by `go generate` (see gen.go); nothing is
// fetched or built at run time. The page talks only to its own origin's
// POST /execute.
package playground

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"embed"
	"encoding/base64"
	"encoding/hex"
	"html/template"
	"net/http"
	"time"
)

//go:embed assets/index.html assets/app.js assets/app.css
var assets embed.FS

// Path is where the page is served; its script and stylesheet are below it.
const Path = "/playground"

var page = template.Must(template.ParseFS(assets, "assets/index.html"))

// Options configure the page.
type Options struct {
	// KeyRequired reports whether POST /execute needs an API key now; the
	// page then asks for one before the first run.
	KeyRequired func() bool
}

// Handler serves the page at Path and its assets at Path/app.js and
// Path/app.css; any other path under Path is not found.
func Handler(opts Options) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET "+Path, pageHandler(opts))
	mux.Handle("GET "+Path+"/app.js", assetHandler("assets/app.js", "text/javascript; charset=utf-8"))
	mux.Handle("GET "+Path+"/app.css", assetHandler("assets/app.css", "text/css; charset=utf-8"))
	return mux
}

// pageData is what index.html is rendered with.
type pageData struct {
	Nonce       string // for the style elements the editor adds (CSP style-src)
	KeyRequired bool
}

// pageHandler renders index.html with a fresh style nonce and a strict
// Content-Security-Policy: scripts only from this origin (no inline script),
// requests only to this origin, no framing, no forms, no plugins.
func pageHandler(opts Options) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		data := pageData{Nonce: nonce()}
		if opts.KeyRequired != nil {
			data.KeyRequired = opts.KeyRequired()
		}
		var buf bytes.Buffer
		if err := page.Execute(&buf, data); err != nil {
			http.Error(w, "playground page failed to render", http.StatusInternalServerError)
			return
		}
		h := w.Header()
		setSecurityHeaders(h)
		h.Set("Content-Security-Policy", CSP(data.Nonce))
		h.Set("Content-Type", "text/html; charset=utf-8")
		h.Set("Cache-Control", "no-store")
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(buf.Bytes())
	})
}

// CSP is the page's Content-Security-Policy for a style nonce.
func CSP(nonce string) string {
	return "default-src 'none'; script-src 'self'; style-src 'self' 'nonce-" + nonce + "'; " +
		"connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
}

// assetHandler serves one embedded file, revalidated by its content hash.
func assetHandler(name, contentType string) http.Handler {
	data, err := assets.ReadFile(name)
	if err != nil {
		panic("playground: " + name + " is not embedded")
	}
	sum := sha256.Sum256(data)
	etag := `"` + hex.EncodeToString(sum[:8]) + `"`
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		setSecurityHeaders(h)
		h.Set("Content-Type", contentType)
		h.Set("Cache-Control", "no-cache")
		h.Set("ETag", etag)
		http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(data))
	})
}

func setSecurityHeaders(h http.Header) {
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cross-Origin-Opener-Policy", "same-origin")
	h.Set("Cross-Origin-Resource-Policy", "same-origin")
}

// nonce returns 16 random bytes, base64url-encoded (nothing in it needs
// escaping in HTML).
func nonce() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}
