package packages

import (
	"fmt"
	"regexp"
	"strings"
)

var (
	// namePattern is npm's rule for a package name (old names may have
	// capitals): an optional @scope/, then URL-safe characters, neither
	// part starting with a dot or an underscore.
	namePattern = regexp.MustCompile(`^(@[a-z0-9~-][a-z0-9._~-]*/)?[a-zA-Z0-9~-][a-zA-Z0-9._~-]*$`)
	// specPattern admits version ranges ("^3.23.0", ">=1 <2 || 3.x"),
	// exact versions and dist-tags ("latest"); nothing with a ':', '/',
	// '#' or '@', so no git, file, URL, alias or workspace spec, which
	// would fetch from elsewhere than the registry.
	specPattern = regexp.MustCompile(`^[A-Za-z0-9 ._+^~<>=|*-]+$`)
	// exactPattern is an exact version: its resolution never changes.
	exactPattern = regexp.MustCompile(`^v?\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?$`)
	// subpathPattern is what may follow a package name in an import.
	subpathPattern = regexp.MustCompile(`^[A-Za-z0-9._~@+-]+(/[A-Za-z0-9._~@+-]+)*$`)
)

// maxNameBytes and maxSpecBytes bound a name (npm's own bound) and a range.
const (
	maxNameBytes = 214
	maxSpecBytes = 256
)

// CheckName says what is wrong with a package name, or nil.
func CheckName(name string) error {
	switch {
	case len(name) > maxNameBytes:
		return fmt.Errorf("package name %.40q… is longer than %d bytes", name, maxNameBytes)
	case !namePattern.MatchString(name) || name == "node_modules" || name == "favicon.ico":
		return fmt.Errorf("%q is not an npm package name", name)
	}
	return nil
}

// CheckSpec says what is wrong with the version spec of package name, or
// nil: a range, an exact version or a dist-tag.
func CheckSpec(name, spec string) error {
	spec = strings.TrimSpace(spec)
	switch {
	case spec == "":
		return fmt.Errorf("the version of %s must not be empty (use \"latest\" or a range)", name)
	case len(spec) > maxSpecBytes:
		return fmt.Errorf("the version of %s is longer than %d bytes", name, maxSpecBytes)
	case !specPattern.MatchString(spec):
		return fmt.Errorf("the version of %s, %q, must be a version, a range or a dist-tag from the registry (not a URL, path, git or alias spec)", name, spec)
	}
	return nil
}

// exact reports whether every spec of deps is an exact version.
func exact(deps map[string]string) bool {
	for _, spec := range deps {
		if !exactPattern.MatchString(strings.TrimSpace(spec)) {
			return false
		}
	}
	return true
}

// Policy is which packages may be installed: a name must match a pattern
// of Allow (if any) and none of Deny. A pattern's * stands for any run of
// characters ("@acme/*", "*-wasm").
type Policy struct {
	Allow []string
	Deny  []string
}

// Check says why name is refused, or nil.
func (p Policy) Check(name string) error {
	for _, pat := range p.Deny {
		if match(pat, name) {
			return fmt.Errorf("package %s is denied by this gateway (packages.deny %q)", name, pat)
		}
	}
	if len(p.Allow) == 0 {
		return nil
	}
	for _, pat := range p.Allow {
		if match(pat, name) {
			return nil
		}
	}
	return fmt.Errorf("package %s is not among the packages this gateway allows (packages.allow)", name)
}

// match reports whether name matches pattern, whose * matches any run of
// characters, / included.
func match(pattern, name string) bool {
	parts := strings.Split(pattern, "*")
	if len(parts) == 1 {
		return pattern == name
	}
	if !strings.HasPrefix(name, parts[0]) {
		return false
	}
	name = name[len(parts[0]):]
	for _, mid := range parts[1 : len(parts)-1] {
		i := strings.Index(name, mid)
		if i < 0 {
			return false
		}
		name = name[i+len(mid):]
	}
	return strings.HasSuffix(name, parts[len(parts)-1])
}

// CheckPattern says what is wrong with an allow or deny pattern, or nil.
func CheckPattern(p string) error {
	if p == "" || CheckName(strings.ReplaceAll(p, "*", "x")) != nil {
		return fmt.Errorf("%q is not a package name pattern (a name, * standing for any characters)", p)
	}
	return nil
}
