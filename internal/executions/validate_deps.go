package executions

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/dynamic-workers/gateway/execution"
	"github.com/dynamic-workers/gateway/internal/packages"
)

// packageJSON is the module whose dependencies are the execution's when
// the request names none itself.
const packageJSON = "package.json"

// dependencies reads the request's dependencies: its dependencies member,
// or the dependencies of a package.json among its modules; both given,
// they must agree. Names and ranges are checked with the gateway's rules
// when the service prepares the job (checkDependencies).
func (v *validator) dependencies(members map[string]json.RawMessage, job *execution.Job) {
	var deps map[string]string
	given := v.decode("dependencies", members["dependencies"], &deps, "an object of npm package name to version range")
	var fromFile map[string]string
	if src, ok := job.Modules[packageJSON]; ok {
		var pj struct {
			Dependencies map[string]string `json:"dependencies"`
		}
		if err := json.Unmarshal([]byte(src), &pj); err != nil {
			v.add("modules."+packageJSON, fieldInvalid, "package.json's dependencies must be an object of npm package name to version range")
			return
		}
		fromFile = pj.Dependencies
	}
	switch {
	case given && fromFile != nil && !maps.Equal(deps, fromFile):
		v.add("dependencies", fieldConflict, "dependencies and package.json's dependencies disagree (%s)", disagreement(deps, fromFile))
	case given:
		job.Dependencies = deps
	default:
		job.Dependencies = fromFile
	}
}

// disagreement names the first package a and b disagree on.
func disagreement(a, b map[string]string) string {
	names := slices.Sorted(maps.Keys(a))
	for name := range b {
		if _, ok := a[name]; !ok {
			names = append(names, name)
		}
	}
	for _, name := range names {
		x, inA := a[name]
		y, inB := b[name]
		switch {
		case !inA:
			return fmt.Sprintf("%s is only in package.json", name)
		case !inB:
			return fmt.Sprintf("%s is only in dependencies", name)
		case x != y:
			return fmt.Sprintf("%s: %q in dependencies, %q in package.json", name, x, y)
		}
	}
	return ""
}

// checkDependencies checks job's dependencies with the gateway's rules:
// field problems for a name or range that is not one (or dependencies at
// a gateway without them), else the problem of a package the policy
// refuses or of more packages than the bound.
func (s *Service) checkDependencies(job *execution.Job) ([]FieldProblem, *execution.Problem) {
	if len(job.Dependencies) == 0 {
		return nil, nil
	}
	if s.opts.Packages == nil {
		return []FieldProblem{{Field: "dependencies", Code: fieldInvalid, Detail: "this gateway does not install dependencies (packages.enabled is false)"}}, nil
	}
	var problems []FieldProblem
	for _, e := range s.opts.Packages.Check(job.Dependencies) {
		switch e.Kind {
		case packages.Invalid:
			problems = append(problems, FieldProblem{Field: "dependencies." + e.Package, Code: fieldInvalid, Detail: e.Message})
		default:
			if p, ok := dependencyProblem(e).(*execution.Problem); ok && problems == nil {
				return nil, p
			}
		}
	}
	return problems, nil
}

// scriptOwned are the members a stored script gives; a request running
// one may not give them too.
var scriptOwned = []string{"code", "language", "modules", "mainModule", "dependencies", "compatibilityDate", "compatibilityFlags"}

// script reads the script member: "name" or "name@version" of a stored
// script, which the service loads (loadScript).
func (v *validator) script(members map[string]json.RawMessage, job *execution.Job) {
	for _, m := range scriptOwned {
		if _, ok := members[m]; ok {
			v.add(m, fieldConflict, "%s comes from the script; give either script or %s", m, m)
		}
	}
	var ref string
	if !v.decode("script", members["script"], &ref, `a script's name, or "name@version"`) {
		return
	}
	name, version, _ := strings.Cut(ref, "@")
	if !execution.ValidScriptName(name) || strings.Contains(version, "@") {
		v.add("script", fieldInvalid, `%q is not a script's name or "name@version"`, ref)
		return
	}
	job.Script = ref
}
