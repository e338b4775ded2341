package redact

import (
	"fmt"
	"strings"
)

// jsonEscape spells s as JavaScript's JSON.stringify does inside the
// quotes: quote, backslash and the C0 controls escaped (the usual ones
// short, the others as lowercase \u00xx); "/", DEL and non-ASCII raw.
func jsonEscape(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch r {
		case '"':
			b.WriteString(`\"`)
		case '\\':
			b.WriteString(`\\`)
		case '\b':
			b.WriteString(`\b`)
		case '\f':
			b.WriteString(`\f`)
		case '\n':
			b.WriteString(`\n`)
		case '\r':
			b.WriteString(`\r`)
		case '\t':
			b.WriteString(`\t`)
		default:
			if r < 0x20 {
				fmt.Fprintf(&b, `\u%04x`, r)
			} else {
				b.WriteRune(r)
			}
		}
	}
	return b.String()
}

// inspectQuotes are the quotes the guest console's formatter
// (worker/src/guest/__dw_format.js, after Node's util.inspect) puts around a
// string: single, or double when the string has a single quote, or a
// backtick when it has both. Which one depends on the whole string printed,
// not just the secret inside it, so every one is a spelling.
var inspectQuotes = []rune{'\'', '"', '`'}

// inspectShort are the formatter's short escapes.
var inspectShort = map[rune]string{
	'\b': `\b`, '\t': `\t`, '\n': `\n`, '\f': `\f`, '\r': `\r`, '\\': `\\`,
}

// inspectEscape spells s as the formatter does inside quote q: q and
// backslash escaped, the short escapes, other C0 controls and DEL as
// uppercase \xHH, everything else raw.
func inspectEscape(s string, q rune) string {
	var b strings.Builder
	for _, r := range s {
		switch short, ok := inspectShort[r]; {
		case r == q:
			b.WriteByte('\\')
			b.WriteRune(r)
		case ok:
			b.WriteString(short)
		case r < 0x20 || r == 0x7f:
			fmt.Fprintf(&b, `\x%02X`, r)
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}
