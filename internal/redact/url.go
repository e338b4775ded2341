package redact

import (
	"net/url"
	"strings"
)

// encodeSet is a percent-encode set of the URL Standard (WHATWG): the ASCII
// bytes it encodes. Every set encodes the C0 controls and every byte above
// 0x7E as well.
type encodeSet [128]bool

func newSet(base *encodeSet, extra string) *encodeSet {
	var s encodeSet
	if base != nil {
		s = *base
	} else {
		for c := range 0x20 {
			s[c] = true
		}
		s[0x7f] = true
	}
	for i := range len(extra) {
		s[extra[i]] = true
	}
	return &s
}

// The sets of the URL Standard, section 1.3 "Percent-encoded bytes".
var (
	c0Set           = newSet(nil, "")
	fragmentSet     = newSet(c0Set, " \"<>`")
	querySet        = newSet(c0Set, " \"#<>")
	specialQuerySet = newSet(querySet, "'")
	pathSet         = newSet(querySet, "?`{}")
	pathCaretSet    = newSet(pathSet, "^") // the path set since the standard added ^
	userinfoSet     = newSet(pathCaretSet, "/:;=@[\\]|")
	componentSet    = newSet(userinfoSet, "$%&+,") // also encodeURIComponent's
	formSet         = newSet(componentSet, "!'()~")
	// encodeURIComponent's output put in a query: the parser then encodes
	// the ' that encodeURIComponent leaves.
	componentQuerySet = newSet(componentSet, "'")
	urlSets           = []*encodeSet{c0Set, fragmentSet, querySet, specialQuerySet, pathSet, pathCaretSet, userinfoSet, componentSet, componentQuerySet}
)

// percentEncode encodes the bytes of s in set as %XX (uppercase hex); with
// plus, a space becomes "+" (application/x-www-form-urlencoded, which
// URLSearchParams writes).
func percentEncode(s string, set *encodeSet, plus bool) string {
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	for i := range len(s) {
		c := s[i]
		switch {
		case plus && c == ' ':
			b.WriteByte('+')
		case c >= 0x80 || set[c]:
			b.WriteByte('%')
			b.WriteByte(hex[c>>4])
			b.WriteByte(hex[c&15])
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// urlForms spells s as it appears in a URL: percent-encoded by each set the
// URL parser applies to a component, by URLSearchParams, by
// encodeURIComponent, and by Go's url.QueryEscape and url.PathEscape. The
// parser drops every tab and newline before it encodes (and lowercases a
// host), so those forms are spelt from s without them too.
func urlForms(s string) []string {
	parsed := strings.NewReplacer("\t", "", "\n", "", "\r", "").Replace(s)
	var forms []string
	for _, in := range []string{s, parsed} {
		for _, set := range urlSets {
			forms = append(forms, percentEncode(in, set, false))
		}
		forms = append(forms, percentEncode(in, formSet, true))
	}
	if parsed != s {
		forms = append(forms, parsed, strings.ToLower(parsed))
	}
	if slashed := strings.ReplaceAll(parsed, "\\", "/"); slashed != parsed {
		// In an http(s) path the parser reads a backslash as a slash.
		forms = append(forms, percentEncode(slashed, pathSet, false), percentEncode(slashed, pathCaretSet, false))
	}
	return append(forms, url.QueryEscape(s), url.PathEscape(s), hostForm(parsed))
}

// hostForm spells s as the URL parser writes it as a host: lowercased, and
// each label with non-ASCII letters in Punycode ("xn--..."). The parser maps
// a host by UTS #46, of which this does the part that matters here, the
// lowercasing; a secret that is only part of a label is lost in the
// encoding of the whole label, which no masker can find.
func hostForm(s string) string {
	labels := strings.Split(strings.ToLower(s), ".")
	for i, l := range labels {
		for _, r := range l {
			if r >= 0x80 {
				labels[i] = "xn--" + punycode(l)
				break
			}
		}
	}
	return strings.Join(labels, ".")
}
