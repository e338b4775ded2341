package executions

import (
	"encoding/json"
	"fmt"
	"maps"
	"net/url"
	"slices"
	"strings"

	"github.com/dynamic-workers/gateway/execution"
)

// Capabilities are the operator's services guests may call through an env
// binding, by name (the config's capabilities section).
type Capabilities map[string]execution.Capability

// usable reports whether the API key named caller may use c.
func usable(c execution.Capability, caller string) bool {
	return len(c.Keys) == 0 || slices.Contains(c.Keys, caller)
}

// grantCapabilities checks the request's capabilities field against what
// the caller's key may use and, if job is not nil (the rest of the request
// is valid), gives them to the job: bindings for the shim, their header
// values as secrets to mask. A name that does not exist and one the key may
// not use read alike, so a key learns nothing of the others' capabilities.
func grantCapabilities(members map[string]json.RawMessage, job *execution.Job, caps Capabilities, caller string) []FieldProblem {
	v := &validator{}
	var names []string
	if !v.decode("capabilities", members["capabilities"], &names, "a list of capability names") {
		return v.problems
	}
	granted := map[string]execution.Capability{}
	for i, name := range names {
		field := fmt.Sprintf("capabilities[%d]", i)
		c, ok := caps[name]
		switch {
		case !ok || !usable(c, caller):
			v.add(field, fieldInvalid, "no capability %q is available to this API key (GET /capabilities lists them)", name)
		case granted[name].URL != "":
			v.add(field, fieldConflict, "capability %q is named twice", name)
		case job != nil && job.Env[name] != nil:
			v.add(field, fieldConflict, "%q is both a capability and a name in env or secrets", name)
		default:
			granted[name] = c
		}
	}
	if job == nil || len(v.problems) > 0 || len(granted) == 0 {
		return v.problems
	}
	job.Capabilities = granted
	for _, name := range slices.Sorted(maps.Keys(granted)) {
		job.Secrets = append(job.Secrets, granted[name].Secrets...)
	}
	return nil
}

// hosts are the hosts of every capability, sorted, each once: no guest
// reaches them by a plain fetch, whichever capabilities it was granted.
func (caps Capabilities) hosts() []string {
	var hosts []string
	for _, c := range caps {
		u, err := url.Parse(c.URL)
		if err != nil || u.Hostname() == "" {
			continue
		}
		if h := strings.TrimRight(strings.ToLower(u.Hostname()), "."); !slices.Contains(hosts, h) {
			hosts = append(hosts, h)
		}
	}
	slices.Sort(hosts)
	return hosts
}

// list describes, by name, the capabilities the API key named caller may
// use: methods, base path, the headers a call passes on and bounds, never
// the headers it adds or the host.
func (caps Capabilities) list(caller string) execution.CapabilityList {
	list := []execution.CapabilityInfo{}
	for _, name := range slices.Sorted(maps.Keys(caps)) {
		c := caps[name]
		if !usable(c, caller) {
			continue
		}
		path := "/"
		if u, err := url.Parse(c.URL); err == nil {
			path = u.Path
		}
		list = append(list, execution.CapabilityInfo{Name: name, Methods: c.Methods, BasePath: path, MaxCalls: c.MaxCalls, TimeoutMs: c.TimeoutMs,
			ForwardHeaders: c.ForwardHeaders, MaxAnswerBytes: c.MaxAnswerBytes})
	}
	return execution.CapabilityList{Capabilities: list}
}
