package executions

import (
	"regexp"
	"strings"

	"github.com/dynamic-workers/gateway/execution"
)

// A plain script is code with no export: what a model writes first
// (console.log(1 + 1)). It runs as the body of its Worker's fetch handler,
// so top-level await and return work and request, env and ctx are in
// scope; the import declarations it starts with stay at module level. The
// value it returns is the result's returnValue. Code that exports anything
// is a Worker module and runs as it is: one with no default export is
// refused by the runtime as before, naming what is missing.

// exportStatement finds an export by its spelling: `export default`,
// `export const|let|var|function|class|async`, `export {…}` or
// `export *`. Written inside a string or a comment of a plain script, it
// would be taken for one: the runtime then says the module has no default
// export, which names the cause.
var exportStatement = regexp.MustCompile(`\bexport\s*(\{|\*|(default|const|let|var|function|class|async)\b)`)

// modeOf is the mode the main module source runs in.
func modeOf(source string) string {
	if exportStatement.MatchString(source) {
		return execution.ModeWorker
	}
	return execution.ModeScript
}

// asScript decides job's mode from its main module and, for a plain
// script, turns that module into a Worker whose fetch handler is the
// script. The lines keep their numbers: the handler opens on the line its
// imports end, so stacks and syntax errors point at the script's own lines.
func asScript(job *execution.Job) {
	source := job.Modules[job.MainModule]
	job.Mode = modeOf(source)
	if job.Mode != execution.ModeScript {
		return
	}
	n := importsEnd(source)
	job.Modules[job.MainModule] = source[:n] + ";export default { async fetch(request, env, ctx) {" + source[n:] + "\n} };\n"
}

// importsEnd is where the import declarations a script starts with end
// (with the comments and white space among them): the module-level part of
// it. An import declaration is `import` followed by a name, `{`, `*` or a
// string (not `import(` or `import.meta`), up to its source string and its
// optional `with { … }` attributes and semicolon.
func importsEnd(s string) int {
	end := 0
	i := skipSpace(s, 0)
	for strings.HasPrefix(s[i:], "import") && i+6 < len(s) && startsDeclaration(s[i+6:]) {
		j, ok := importDeclarationEnd(s, i+6)
		if !ok {
			break
		}
		end = j
		i = skipSpace(s, j)
	}
	return end
}

// startsDeclaration reports whether what follows `import` makes it a
// declaration.
func startsDeclaration(rest string) bool {
	trimmed := strings.TrimLeft(rest, " \t\r\n")
	if trimmed == "" || len(trimmed) == len(rest) && !strings.HasPrefix(rest, "{") && !strings.HasPrefix(rest, "*") &&
		!strings.HasPrefix(rest, `"`) && !strings.HasPrefix(rest, "'") {
		return false // `imported`, `importance`: no space after the keyword
	}
	switch c := trimmed[0]; {
	case c == '(' || c == '.':
		return false // import(…), import.meta
	case c == '{' || c == '*' || c == '"' || c == '\'':
		return true
	default:
		return isIdentStart(c)
	}
}

// importDeclarationEnd returns the end of the declaration whose `import`
// keyword ends at i: after its source string, its attributes and its
// semicolon, if any.
func importDeclarationEnd(s string, i int) (int, bool) {
	for i < len(s) {
		i = skipSpace(s, i)
		if i >= len(s) {
			return 0, false
		}
		switch c := s[i]; {
		case c == '"' || c == '\'':
			j, ok := stringEnd(s, i)
			if !ok {
				return 0, false
			}
			return attributesEnd(s, j), true
		case c == '{':
			j := strings.IndexByte(s[i:], '}') // names, no strings or braces inside
			if j < 0 {
				return 0, false
			}
			i += j + 1
		case c == ';' || c == '(' || c == ')':
			return 0, false
		default:
			i++
		}
	}
	return 0, false
}

// attributesEnd skips `with { … }` or `assert { … }` and a semicolon after
// a declaration's source string ending at i.
func attributesEnd(s string, i int) int {
	j := skipSpace(s, i)
	for _, kw := range []string{"with", "assert"} {
		if strings.HasPrefix(s[j:], kw) {
			k := skipSpace(s, j+len(kw))
			if k < len(s) && s[k] == '{' {
				if close := strings.IndexByte(s[k:], '}'); close >= 0 {
					i = k + close + 1
					j = skipSpace(s, i)
				}
			}
		}
	}
	if j < len(s) && s[j] == ';' {
		return j + 1
	}
	return i
}

// stringEnd returns the index after the string literal starting at i.
func stringEnd(s string, i int) (int, bool) {
	quote := s[i]
	for j := i + 1; j < len(s); j++ {
		switch s[j] {
		case '\\':
			j++
		case quote:
			return j + 1, true
		case '\n':
			return 0, false
		}
	}
	return 0, false
}

// skipSpace skips white space and comments from i.
func skipSpace(s string, i int) int {
	for i < len(s) {
		switch {
		case s[i] == ' ' || s[i] == '\t' || s[i] == '\r' || s[i] == '\n':
			i++
		case strings.HasPrefix(s[i:], "//"):
			j := strings.IndexByte(s[i:], '\n')
			if j < 0 {
				return len(s)
			}
			i += j + 1
		case strings.HasPrefix(s[i:], "/*"):
			j := strings.Index(s[i+2:], "*/")
			if j < 0 {
				return len(s)
			}
			i += j + 4
		default:
			return i
		}
	}
	return i
}

func isIdentStart(c byte) bool {
	return c == '_' || c == '$' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || c >= 0x80
}
