package mcp

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/dynamic-workers/gateway/execution"
)

// maxTextPart bounds each part of the text summary (stdout, stderr, the
// body, the stack); the structured content has them whole.
const maxTextPart = 16 << 10

// summary is the text of a result an agent reads: how it ended, then what
// the guest printed and returned, or the error with its code and stack.
func summary(res *execution.Result) string {
	var b strings.Builder
	if res.Success {
		fmt.Fprintf(&b, "success (%s, %.1f ms)", res.ID, res.DurationMs)
	} else {
		code := execution.Code("failed")
		if res.Error != nil {
			code = res.Error.Code
		}
		fmt.Fprintf(&b, "failed: %s (%s, %.1f ms)", code, res.ID, res.DurationMs)
	}
	if res.Truncated {
		b.WriteString(", output truncated")
	}
	if e := res.Error; e != nil {
		stack := e.Stack
		if !strings.Contains(stack, e.Message) {
			stack = strings.TrimSpace(e.Message + "\n" + stack)
		}
		section(&b, "error", stack)
	}
	section(&b, "stdout", res.Stdout)
	section(&b, "stderr", res.Stderr)
	if r := res.Response; r != nil {
		fmt.Fprintf(&b, "\nresponse: %d", r.Status)
		if ct := r.Headers["content-type"]; ct != "" {
			fmt.Fprintf(&b, " (%s)", ct)
		}
		switch {
		case r.BodyEncoding == execution.EncodingBase64:
			fmt.Fprintf(&b, "\nbody: binary, %d base64 characters in structuredContent.response.body", len(r.Body))
		default:
			section(&b, "body", r.Body)
		}
	}
	if denied := deniedHosts(res.Outbound); len(denied) > 0 {
		fmt.Fprintf(&b, "\noutbound denied: %s (allowOutbound did not allow them)", strings.Join(denied, ", "))
	}
	return b.String()
}

// section writes a titled part of the summary, if it has text.
func section(b *strings.Builder, title, text string) {
	if text == "" {
		return
	}
	b.WriteString("\n" + title + ":\n")
	if len(text) > maxTextPart {
		n := maxTextPart
		for n > 0 && !utf8.RuneStart(text[n]) {
			n--
		}
		b.WriteString(text[:n])
		fmt.Fprintf(b, "\n[%s cut at %d of %d bytes; the rest is in structuredContent]", title, n, len(text))
		return
	}
	b.WriteString(text)
}

// deniedHosts lists the URLs the guest tried to reach and was refused.
func deniedHosts(out []execution.Outgoing) []string {
	set := map[string]bool{}
	for _, o := range out {
		if o.Denied {
			set[o.URL] = true
		}
	}
	return slices.Sorted(maps.Keys(set))
}
