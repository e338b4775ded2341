package execution

import (
	"context"
	"encoding/json"
	"regexp"
	"time"
)

// Script is a version of a stored script as the API shows it: what PUT
// /scripts/{name} answers and GET /scripts/{name} returns (never the
// code of its dependencies).
type Script struct {
	Name string `json:"name"`
	// Version is a hash of the version's content: its code, its
	// dependencies as resolved, its compatibility date and flags and its
	// default env.
	Version            string            `json:"version"`
	CreatedAt          time.Time         `json:"createdAt"`
	MainModule         string            `json:"mainModule"`
	Modules            []string          `json:"modules"`
	Dependencies       map[string]string `json:"dependencies,omitempty"`
	CompatibilityDate  string            `json:"compatibilityDate"`
	CompatibilityFlags []string          `json:"compatibilityFlags"`
	Env                map[string]any    `json:"env,omitempty"`
}

// ScriptList is the body of GET /scripts: the latest version of each of
// the key's scripts, by name.
type ScriptList struct {
	Scripts []Script `json:"scripts"`
}

// ScriptVersions is the body of GET /scripts/{name}/versions, newest first.
type ScriptVersions struct {
	Name     string   `json:"name"`
	Versions []Script `json:"versions"`
}

// ScriptFields are the members of a PUT /scripts/{name} body: the code
// part of an execution request.
var ScriptFields = []string{"code", "language", "modules", "mainModule", "dependencies", "compatibilityDate", "compatibilityFlags", "env"}

// scriptName is how a script is named: letters, digits, -, _ and ., not
// starting with a dot, at most 64.
var scriptName = regexp.MustCompile(`^[A-Za-z0-9_-][A-Za-z0-9._-]{0,63}$`)

// ValidScriptName reports whether name may name a script.
func ValidScriptName(name string) bool { return scriptName.MatchString(name) }

// Scripts is what the front doors do with stored scripts; the execution
// service implements it. Each method answers only for the caller's own
// scripts: another caller's are ProblemNotFound.
type Scripts interface {
	// PutScript validates body (ScriptFields), resolves and bundles its
	// dependencies, and stores it as a version of c's script name:
	// created is false when it is identical to the latest version.
	// ProblemInvalidRequest, the dependency problems, ProblemNotFound (no
	// store).
	PutScript(ctx context.Context, c Caller, name string, body map[string]json.RawMessage) (s Script, created bool, err error)
	// GetScript returns the latest version of c's script name:
	// ProblemNotFound.
	GetScript(ctx context.Context, c Caller, name string) (Script, error)
	// ListScripts lists c's scripts.
	ListScripts(ctx context.Context, c Caller) (ScriptList, error)
	// ScriptVersions lists the versions of c's script name, newest first:
	// ProblemNotFound.
	ScriptVersions(ctx context.Context, c Caller, name string) (ScriptVersions, error)
	// DeleteScript deletes every version of c's script name:
	// ProblemNotFound.
	DeleteScript(ctx context.Context, c Caller, name string) error
}
