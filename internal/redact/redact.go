// Package redact masks secret values in text the gateway writes: a guest's
// logs and result, and the runtime's own output in the gateway's log.
//
// A secret reaches the output in more spellings than its raw value: the
// guest's console escapes it (JSON.stringify, util.inspect), the URL parser
// lowercases a host and percent-encodes a path, query or userinfo, and the
// Headers class lowercases a header name. A Masker replaces every spelling
// the gateway and the runtime produce themselves (see Variants). What the
// guest encodes on purpose (split, reversed, base64, hex) no masker can
// find; docs/security.md lists those limits.
package redact

import (
	"cmp"
	"slices"
	"strings"

	"github.com/dynamic-workers/gateway/worker"
)

// Text is what a masked secret reads as, in the gateway's output as in what
// the shim masks (worker/src/contract.json).
var Text = worker.Contract.Mask

// Masker replaces secret values, in every spelling Variants lists, with
// Text. A nil Masker masks nothing, at the cost of a nil check.
type Masker struct {
	replacer *strings.Replacer
}

// New returns a Masker for secrets, or nil when there is nothing to mask
// (no secrets, or only empty ones).
func New(secrets []string) *Masker {
	seen := map[string]bool{}
	var forms []string
	for _, s := range secrets {
		for _, v := range Variants(s) {
			if !seen[v] {
				seen[v] = true
				forms = append(forms, v)
			}
		}
	}
	if len(forms) == 0 {
		return nil
	}
	// Longest first: strings.Replacer tries its pairs in order at each
	// position, so a spelling that contains another is replaced whole.
	slices.SortFunc(forms, func(a, b string) int {
		return cmp.Or(len(b)-len(a), strings.Compare(a, b))
	})
	pairs := make([]string, 0, 2*len(forms))
	for _, f := range forms {
		pairs = append(pairs, f, Text)
	}
	return &Masker{replacer: strings.NewReplacer(pairs...)}
}

// Mask returns s with every spelling of every secret replaced by Text.
func (m *Masker) Mask(s string) string {
	if m == nil {
		return s
	}
	return m.replacer.Replace(s)
}

// Variants returns the distinct spellings of secret that the gateway or
// the runtime may write, the raw value first; none for an empty secret.
// A header value loses its surrounding whitespace, so a secret that has some
// is spelt without it too.
func Variants(secret string) []string {
	if secret == "" {
		return nil
	}
	if plain(secret) {
		// No escape or encoding changes it: the common API token.
		if lower := strings.ToLower(secret); lower != secret {
			return []string{secret, lower}
		}
		return []string{secret}
	}
	forms := spellings(secret)
	if trimmed := strings.Trim(secret, " \t\r\n"); trimmed != secret && trimmed != "" {
		forms = append(forms, spellings(trimmed)...)
	}
	out := forms[:0]
	for _, f := range forms {
		if f != "" && !slices.Contains(out, f) {
			out = append(out, f)
		}
	}
	return out
}

// spellings are s raw, lowercased (a URL host, a header name), escaped as
// JSON.stringify and the console's util.inspect write it (and inspect of
// the JSON spelling: an object holding a JSON string), and in URLs.
func spellings(s string) []string {
	forms := []string{s, strings.ToLower(s), jsonEscape(s)}
	for _, q := range inspectQuotes {
		forms = append(forms, inspectEscape(s, q), inspectEscape(jsonEscape(s), q))
	}
	return append(forms, urlForms(s)...)
}

// plain reports whether s has only letters, digits, "-", "." and "_", which
// every escape and percent-encode set leaves as they are.
func plain(s string) bool {
	for i := range len(s) {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '.' || c == '_') {
			return false
		}
	}
	return true
}
