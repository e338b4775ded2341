package main

import (
	"bufio"
	"errors"
	"io/fs"
	"os"
	"regexp"
	"strings"
)

// gitignore reads the patterns of a .gitignore (none if it is missing) and
// returns what they ignore, by git's rules for the file at the root of a
// directory: blank lines and # comments are skipped, a backslash escapes
// (\#, \!, a trailing space), ! re-includes what an earlier pattern
// excluded (the last pattern that matches decides), a trailing / matches
// directories only, a pattern with a / anywhere but at its end is
// anchored at the root and any other matches a name at any depth, and *,
// ?, [...] and ** (leading **/, a middle /**/, a trailing /**) match as
// git's do. A file in an ignored directory stays ignored whatever its own
// patterns say: the walk does not enter the directory, as git does not.
func gitignore(file string) (func(rel string, dir bool) bool, error) {
	f, err := os.Open(file)
	if errors.Is(err, fs.ErrNotExist) {
		return func(string, bool) bool { return false }, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var rules []ignoreRule
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if r, ok := parseIgnore(sc.Text()); ok {
			rules = append(rules, r)
		}
	}
	return func(rel string, dir bool) bool {
		ignored := false
		for _, r := range rules {
			if (!r.dirOnly || dir) && r.re.MatchString(rel) {
				ignored = !r.negate
			}
		}
		return ignored
	}, sc.Err()
}

// ignoreRule is one pattern of a .gitignore.
type ignoreRule struct {
	re      *regexp.Regexp // matches a path relative to the root, slash-separated
	negate  bool
	dirOnly bool
}

// parseIgnore reads one line of a .gitignore; a blank line, a comment or
// a pattern that matches nothing is no rule.
func parseIgnore(line string) (ignoreRule, bool) {
	line = strings.TrimSuffix(line, "\r")
	for strings.HasSuffix(line, " ") && !strings.HasSuffix(line, `\ `) {
		line = line[:len(line)-1]
	}
	var r ignoreRule
	if line == "" || strings.HasPrefix(line, "#") {
		return r, false
	}
	if strings.HasPrefix(line, "!") {
		r.negate, line = true, line[1:]
	}
	if strings.HasSuffix(line, "/") {
		r.dirOnly, line = true, strings.TrimSuffix(line, "/")
	}
	if line == "" {
		return r, false
	}
	prefix := "^(?:.*/)?" // a name at any depth
	if strings.Contains(line, "/") {
		prefix, line = "^", strings.TrimPrefix(line, "/")
	}
	re, err := regexp.Compile(prefix + globRegexp(line) + "$")
	if err != nil {
		return r, false
	}
	r.re = re
	return r, true
}

// globRegexp is the regular expression of a gitignore glob: * and ? within
// a path part, [...] a class (a [ never closed matches nothing, as in
// git), ** parts across parts.
func globRegexp(glob string) string {
	parts := strings.Split(glob, "/")
	var b strings.Builder
	for i, part := range parts {
		last := i == len(parts)-1
		switch {
		case part == "**" && last:
			b.WriteString(".*") // everything inside
			continue
		case part == "**":
			b.WriteString("(?:.*/)?") // zero or more directories
			continue
		}
		b.WriteString(partRegexp(part))
		if !last {
			b.WriteString("/")
		}
	}
	return b.String()
}

// partRegexp is the regular expression of one path part of a glob.
func partRegexp(part string) string {
	var b strings.Builder
	for i := 0; i < len(part); i++ {
		switch c := part[i]; c {
		case '\\':
			if i+1 < len(part) {
				i++
				b.WriteString(regexp.QuoteMeta(part[i : i+1]))
			}
		case '*':
			for i+1 < len(part) && part[i+1] == '*' {
				i++ // other runs of * are one *
			}
			b.WriteString("[^/]*")
		case '?':
			b.WriteString("[^/]")
		case '[':
			class, n := globClass(part[i:])
			if n == 0 {
				b.WriteString(`[^\x00-\x{10FFFF}]`) // no class: git's pattern matches nothing
				continue
			}
			b.WriteString(class)
			i += n - 1
		default:
			b.WriteString(regexp.QuoteMeta(string(c)))
		}
	}
	return b.String()
}

// globClass is the regular expression of the class s starts with ("[a-z]",
// "[!.]", "[]x]") and the bytes it takes; none (0) if s has no class. A
// class matches no /.
func globClass(s string) (string, int) {
	j := 1
	negate := j < len(s) && (s[j] == '!' || s[j] == '^')
	if negate {
		j++
	}
	start := j
	if j < len(s) && s[j] == ']' {
		j++ // a ] first is a member
	}
	end := strings.IndexByte(s[j:], ']')
	if end < 0 {
		return "", 0
	}
	end += j
	members := strings.NewReplacer(`\`, `\\`, "[", `\[`, "]", `\]`, "^", `\^`).Replace(s[start:end])
	if negate {
		return "[^/" + members + "]", end + 1
	}
	return "[" + members + "]", end + 1
}
