package executions

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/dynamic-workers/gateway/execution"
	"github.com/dynamic-workers/gateway/internal/store"
	"github.com/dynamic-workers/gateway/worker"
)

// storedScript is a script version's body in the store: its code as given
// and its dependencies as bundled when it was stored, so that a run
// resolves nothing. Its JSON (map keys sorted) is what the version hashes.
type storedScript struct {
	Modules            map[string]string `json:"modules"`
	MainModule         string            `json:"mainModule"`
	CompatibilityDate  string            `json:"compatibilityDate"`
	CompatibilityFlags []string          `json:"compatibilityFlags"`
	Env                map[string]any    `json:"env,omitempty"`
	Dependencies       map[string]string `json:"dependencies,omitempty"`
	Packages           map[string]string `json:"packages,omitempty"`
	Wasm               map[string][]byte `json:"wasm,omitempty"`
	DependencyKey      string            `json:"dependencyKey,omitempty"`
}

// scriptCache keeps decoded script versions (immutable) by caller, name
// and version: a run of a script with megabytes of dependencies does not
// decode them again.
type scriptCache struct {
	mu    sync.Mutex
	byKey map[string]*storedScript
	order []string
}

const maxCachedScripts = 64

func (c *scriptCache) get(key string) *storedScript {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.byKey[key]
}

func (c *scriptCache) put(key string, st *storedScript) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.byKey == nil {
		c.byKey = map[string]*storedScript{}
	}
	if _, ok := c.byKey[key]; ok {
		return
	}
	c.byKey[key] = st
	c.order = append(c.order, key)
	if len(c.order) > maxCachedScripts {
		delete(c.byKey, c.order[0])
		c.order = c.order[1:]
	}
}

// noScripts is the answer of a gateway without a store.
func noScripts() *execution.Problem {
	return execution.NewProblem(execution.ProblemNotFound, "scripts are kept in the store of records, and this gateway has none")
}

// PutScript stores a version of c's script name (execution.Scripts).
func (s *Service) PutScript(ctx context.Context, c execution.Caller, name string, body map[string]json.RawMessage) (execution.Script, bool, error) {
	if s.store == nil {
		return execution.Script{}, false, noScripts()
	}
	var problems []FieldProblem
	if !execution.ValidScriptName(name) {
		problems = append(problems, FieldProblem{Field: "name", Code: fieldInvalid, Detail: "a script's name is 1 to 64 letters, digits, -, _ and ., not starting with a dot"})
	}
	for member := range body {
		if !slices.Contains(execution.ScriptFields, member) {
			problems = append(problems, FieldProblem{Field: member, Code: fieldUnknown, Detail: "a script holds only " + strings.Join(execution.ScriptFields, ", ")})
		}
	}
	if problems != nil {
		return execution.Script{}, false, execution.InvalidRequest(problems)
	}
	job, problem := s.prepare(ctx, c.Name, body)
	if problem != nil {
		return execution.Script{}, false, problem
	}
	st := &storedScript{Modules: job.Modules, MainModule: job.MainModule, CompatibilityDate: job.CompatibilityDate,
		CompatibilityFlags: job.CompatibilityFlags, Env: job.Env}
	if err := s.bundleScript(ctx, job, st); err != nil {
		return execution.Script{}, false, err
	}
	content, err := json.Marshal(st)
	if err != nil {
		return execution.Script{}, false, err
	}
	if int64(len(content))*4/3 > worker.Caps.MaxJobBytes*3/4 {
		return execution.Script{}, false, execution.NewProblem(execution.ProblemDependencyTooLarge, "the script with its dependencies takes %d bytes, more than the runtime takes", len(content))
	}
	sum := sha256.Sum256(content)
	meta := scriptMeta(name, hex.EncodeToString(sum[:8]), st)
	meta.CreatedAt = time.Now().UTC()
	metaJSON, _ := json.Marshal(meta)
	created, err := s.store.PutScript(ctx, &store.Script{Caller: c.Name, Name: name, Version: meta.Version, CreatedAt: meta.CreatedAt, Meta: metaJSON, Body: content},
		s.opts.Records.MaxScriptBytesPerKey)
	if errors.Is(err, store.ErrScriptsFull) {
		s.m.ScriptVersions.WithLabelValues("scripts_full").Inc()
		return execution.Script{}, false, execution.NewProblem(execution.ProblemScriptsFull,
			"this version (%d bytes) would take this API key's stored scripts past the %d bytes they may take: delete scripts it no longer needs (DELETE /scripts/{name} removes every version)",
			len(metaJSON)+len(content), s.opts.Records.MaxScriptBytesPerKey)
	}
	if err != nil {
		return execution.Script{}, false, err
	}
	if created {
		s.m.ScriptVersions.WithLabelValues("created").Inc()
	} else { // stored before: its own time
		s.m.ScriptVersions.WithLabelValues("unchanged").Inc()
		if kept, err := s.store.GetScript(ctx, c.Name, name, meta.Version); err == nil {
			_ = json.Unmarshal(kept.Meta, &meta)
		}
	}
	return meta, created, nil
}

// bundleScript resolves and bundles job's dependencies into st, so that a
// run of it resolves nothing. A package that does not bundle refuses the
// script (422), as nothing runs now to report it.
func (s *Service) bundleScript(ctx context.Context, job *execution.Job, st *storedScript) error {
	in, err := s.resolve(ctx, job)
	if err != nil || in == nil {
		return err
	}
	b, err := s.bundleOf(ctx, job, in)
	if err != nil {
		return dependencyProblem(err)
	}
	st.Packages, st.Wasm = map[string]string{}, map[string][]byte{}
	if err := b.Attach(job.Modules, st.Packages, st.Wasm); err != nil {
		return execution.InvalidRequest([]FieldProblem{{Field: "modules", Code: fieldConflict, Detail: err.Error()}})
	}
	st.Dependencies, st.DependencyKey = maps.Clone(in.set.Versions), b.Key
	return nil
}

// scriptMeta is what the API shows of a version.
func scriptMeta(name, version string, st *storedScript) execution.Script {
	return execution.Script{Name: name, Version: version, MainModule: st.MainModule, Modules: slices.Sorted(maps.Keys(st.Modules)),
		Dependencies: st.Dependencies, CompatibilityDate: st.CompatibilityDate, CompatibilityFlags: st.CompatibilityFlags, Env: st.Env}
}

// loadScript fills job from c's stored script job.Script ("name" or
// "name@version"): its code, dependencies, compatibility date and flags,
// and its default env under the request's. Unknown: ProblemNotFound.
func (s *Service) loadScript(ctx context.Context, caller string, job *execution.Job) *execution.Problem {
	if s.store == nil {
		return noScripts()
	}
	name, version, _ := strings.Cut(job.Script, "@")
	sc, err := s.store.GetScript(ctx, caller, name, version)
	if errors.Is(err, store.ErrNotFound) {
		return execution.NewProblem(execution.ProblemNotFound, "no script %q", job.Script)
	}
	if err != nil {
		return execution.NewProblem(execution.ProblemInternal, "the script could not be read")
	}
	key := caller + "\x00" + name + "@" + sc.Version
	st, decoded := s.scripts.get(key), "cached"
	if st == nil {
		decoded = "store"
		st = new(storedScript)
		if err := json.Unmarshal(sc.Body, st); err != nil {
			return execution.NewProblem(execution.ProblemInternal, "the script could not be read")
		}
		s.scripts.put(key, st)
	}
	s.m.ScriptRuns.WithLabelValues(decoded).Inc()
	env := maps.Clone(st.Env)
	if env == nil {
		env = map[string]any{}
	}
	maps.Copy(env, job.Env)
	job.Env = env
	job.Modules, job.MainModule = maps.Clone(st.Modules), st.MainModule
	job.CompatibilityDate, job.CompatibilityFlags = st.CompatibilityDate, st.CompatibilityFlags
	job.Packages, job.Wasm, job.Dependencies, job.DependencyKey = st.Packages, st.Wasm, st.Dependencies, st.DependencyKey
	job.Script = name + "@" + sc.Version
	return nil
}

// GetScript returns the latest version of c's script name.
func (s *Service) GetScript(ctx context.Context, c execution.Caller, name string) (execution.Script, error) {
	if s.store == nil {
		return execution.Script{}, noScripts()
	}
	sc, err := s.store.GetScript(ctx, c.Name, name, "")
	if errors.Is(err, store.ErrNotFound) {
		return execution.Script{}, execution.NewProblem(execution.ProblemNotFound, "no script %q", name)
	}
	if err != nil {
		return execution.Script{}, err
	}
	var meta execution.Script
	return meta, json.Unmarshal(sc.Meta, &meta)
}

// ListScripts lists c's scripts.
func (s *Service) ListScripts(ctx context.Context, c execution.Caller) (execution.ScriptList, error) {
	if s.store == nil {
		return execution.ScriptList{}, noScripts()
	}
	list, err := s.store.ListScripts(ctx, c.Name)
	if err != nil {
		return execution.ScriptList{}, err
	}
	out := execution.ScriptList{Scripts: []execution.Script{}}
	for _, sc := range list {
		var meta execution.Script
		if json.Unmarshal(sc.Meta, &meta) == nil {
			out.Scripts = append(out.Scripts, meta)
		}
	}
	return out, nil
}

// ScriptVersions lists the versions of c's script name.
func (s *Service) ScriptVersions(ctx context.Context, c execution.Caller, name string) (execution.ScriptVersions, error) {
	if s.store == nil {
		return execution.ScriptVersions{}, noScripts()
	}
	list, err := s.store.ScriptVersions(ctx, c.Name, name)
	if errors.Is(err, store.ErrNotFound) {
		return execution.ScriptVersions{}, execution.NewProblem(execution.ProblemNotFound, "no script %q", name)
	}
	if err != nil {
		return execution.ScriptVersions{}, err
	}
	out := execution.ScriptVersions{Name: name, Versions: []execution.Script{}}
	for _, sc := range list {
		var meta execution.Script
		if json.Unmarshal(sc.Meta, &meta) == nil {
			out.Versions = append(out.Versions, meta)
		}
	}
	return out, nil
}

// DeleteScript deletes every version of c's script name.
func (s *Service) DeleteScript(ctx context.Context, c execution.Caller, name string) error {
	if s.store == nil {
		return noScripts()
	}
	err := s.store.DeleteScript(ctx, c.Name, name)
	if errors.Is(err, store.ErrNotFound) {
		return execution.NewProblem(execution.ProblemNotFound, "no script %q", name)
	}
	return err
}
