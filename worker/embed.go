// Package worker embeds the shim Worker: the same files `wrangler deploy`
// takes from this folder, so the gateway binary is self-contained.
package worker

// src/guest/min/ holds the guest modules minified from src/guest/.
//go:generate go run ./guestbuild -dir src/guest

import (
	"bytes"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
)

// Files holds wrangler.jsonc and the shim's modules under src/.
//
//go:embed wrangler.jsonc src/*.js src/*.json src/guest/*.js src/guest/min/*.js
var Files embed.FS

// DenyRanges is src/deny-ranges.json, the address ranges guest code never
// reaches: the shim imports it as a JSON module, internal/egress parses it.
//
//go:embed src/deny-ranges.json
var DenyRanges []byte

// Caps are the caps the shim and the gateway share, read from
// src/caps.json, which the shim imports as a JSON module: each is defined
// there once.
var Caps = mustParseCaps(capsJSON)

//go:embed src/caps.json
var capsJSON []byte

// CapsFile is the shape of src/caps.json.
type CapsFile struct {
	MaxJobBytes        int64 `json:"maxJobBytes"`        // the largest job body the shim reads
	MaxOutboundRecords int   `json:"maxOutboundRecords"` // outbound requests recorded per execution
	MaxErrorName       int   `json:"maxErrorName"`       // longest error name the wrapper sends, in UTF-16 units
	MaxErrorText       int   `json:"maxErrorText"`       // longest error message or stack, in UTF-16 units
	LogLineCost        int   `json:"logLineCost"`        // a console line's cost against the log budget besides its bytes
	MaxWarmIsolates    int   `json:"maxWarmIsolates"`    // warm isolates per reuse key (per gateway on Cloudflare)
	ChannelWindow      int   `json:"channelWindowBytes"` // bytes of one execution's answer the shim sends on the channel before the gateway's credit
	ChannelPiece       int   `json:"channelPieceBytes"`  // the largest piece of a job or an answer in one channel message
}

func mustParseCaps(data []byte) CapsFile {
	caps, err := parseCaps(data)
	if err != nil {
		panic("worker: src/caps.json: " + err.Error())
	}
	return caps
}

// capNames are the members of the caps file, spelled exactly: the shim reads
// them by name, while encoding/json matches names in any case.
var capNames = []string{"maxJobBytes", "maxOutboundRecords", "maxErrorName", "maxErrorText", "logLineCost", "maxWarmIsolates", "channelWindowBytes", "channelPieceBytes"}

// parseCaps reads the caps file: every cap present and positive, no member
// but them and the comment.
func parseCaps(data []byte) (CapsFile, error) {
	c, err := decodeStrict[CapsFile](data, capNames)
	if err != nil {
		return CapsFile{}, err
	}
	for i, value := range []int64{c.MaxJobBytes, int64(c.MaxOutboundRecords), int64(c.MaxErrorName), int64(c.MaxErrorText), int64(c.LogLineCost), int64(c.MaxWarmIsolates), int64(c.ChannelWindow), int64(c.ChannelPiece)} {
		if value <= 0 {
			return CapsFile{}, fmt.Errorf("%s must be present and positive", capNames[i])
		}
	}
	return c, nil
}

// decodeStrict decodes the JSON object data into a T, refusing a member
// other than names and "comment" (which it drops): spelled exactly, since
// the shim reads them by name while encoding/json matches names in any
// case.
func decodeStrict[T any](data []byte, names []string) (T, error) {
	var v T
	var members map[string]json.RawMessage
	if err := json.Unmarshal(data, &members); err != nil {
		return v, err
	}
	for _, name := range slices.Sorted(maps.Keys(members)) {
		if name != "comment" && !slices.Contains(names, name) {
			return v, fmt.Errorf("unknown member %q", name)
		}
	}
	delete(members, "comment")
	rest, err := json.Marshal(members)
	if err != nil {
		return v, err
	}
	dec := json.NewDecoder(bytes.NewReader(rest))
	dec.DisallowUnknownFields()
	err = dec.Decode(&v)
	return v, err
}

// CapabilityRules are what a capability call may pass on, read from
// src/capability-rules.json, which the shim imports as a JSON module: the
// headers forwarded by default, those never forwarded, and the bounds on
// an answer and a form body.
var CapabilityRules = mustParseCapabilityRules(capabilityRulesJSON)

//go:embed src/capability-rules.json
var capabilityRulesJSON []byte

// CapabilityRulesFile is the shape of src/capability-rules.json.
type CapabilityRulesFile struct {
	ForwardHeaders []string      `json:"forwardHeaders"` // forwarded unless a capability's forward_headers says otherwise
	NeverForward   []HeaderGroup `json:"neverForward"`   // never forwarded, never set by a capability if framing
	PathPlain      string        `json:"pathPlain"`      // what a path segment may hold as it is
	PathEscapable  string        `json:"pathEscapable"`  // ASCII a path segment may hold percent-encoded
	MaxAnswerBytes int64         `json:"maxAnswerBytes"` // default of max_answer_bytes
	MaxFormBytes   int64         `json:"maxFormBytes"`   // the longest form body a call may send
}

// HeaderGroup is a group of header names no capability call forwards, and
// why.
type HeaderGroup struct {
	Group      string   `json:"group"`
	Why        string   `json:"why"`
	Names      []string `json:"names"`      // spelled exactly, lower case
	Prefixes   []string `json:"prefixes"`   // a name starting so
	Containing []string `json:"containing"` // a name holding one
}

// Matches reports whether name (lower case) is in the group.
func (g HeaderGroup) Matches(name string) bool {
	if slices.Contains(g.Names, name) {
		return true
	}
	for _, p := range g.Prefixes {
		if strings.HasPrefix(name, p) {
			return true
		}
	}
	for _, c := range g.Containing {
		if strings.Contains(name, c) {
			return true
		}
	}
	return false
}

// NeverForwarded returns why no capability call forwards the header name
// (any case), or "" if one may: a name spelled with "_" (which servers
// behind CGI, PHP, nginx or WSGI read as "-"), or one in a group of
// NeverForward.
func (r CapabilityRulesFile) NeverForwarded(name string) string {
	name = strings.ToLower(name)
	if strings.Contains(name, "_") {
		return "servers behind CGI, PHP, nginx or WSGI read _ as -, so a name with _ stands for other headers"
	}
	for _, g := range r.NeverForward {
		if g.Matches(name) {
			return g.Why
		}
	}
	return ""
}

// Group returns the group of NeverForward named name.
func (r CapabilityRulesFile) Group(name string) HeaderGroup {
	for _, g := range r.NeverForward {
		if g.Group == name {
			return g
		}
	}
	return HeaderGroup{}
}

func mustParseCapabilityRules(data []byte) CapabilityRulesFile {
	rules, err := parseCapabilityRules(data)
	if err != nil {
		panic("worker: src/capability-rules.json: " + err.Error())
	}
	return rules
}

// capabilityRuleNames are the members of the rules file, spelled exactly.
var capabilityRuleNames = []string{"forwardHeaders", "neverForward", "pathPlain", "pathEscapable", "maxAnswerBytes", "maxFormBytes"}

// parseCapabilityRules reads the rules file strictly (no unknown member),
// and refuses one whose default list forwards a header it never forwards,
// names not in lower case, a group without why, or a bound not positive.
func parseCapabilityRules(data []byte) (CapabilityRulesFile, error) {
	r, err := decodeStrict[CapabilityRulesFile](data, capabilityRuleNames)
	if err != nil {
		return CapabilityRulesFile{}, err
	}
	var errs []error
	if r.MaxAnswerBytes <= 0 || r.MaxFormBytes <= 0 {
		errs = append(errs, errors.New("maxAnswerBytes and maxFormBytes must be present and positive"))
	}
	if len(r.ForwardHeaders) == 0 || len(r.NeverForward) == 0 || r.PathPlain == "" || r.PathEscapable == "" {
		errs = append(errs, errors.New("forwardHeaders, neverForward, pathPlain and pathEscapable must not be empty"))
	}
	if strings.ContainsAny(r.PathPlain+r.PathEscapable, "/\\%;?#") {
		errs = append(errs, errors.New("pathPlain and pathEscapable must not hold / \\ % ; ? or #"))
	}
	for _, g := range r.NeverForward {
		if g.Group == "" || g.Why == "" {
			errs = append(errs, fmt.Errorf("a neverForward group without group or why: %+v", g))
		}
		for _, n := range slices.Concat(g.Names, g.Prefixes, g.Containing) {
			if n != strings.ToLower(n) || n == "" {
				errs = append(errs, fmt.Errorf("%q in group %s must be lower case and not empty", n, g.Group))
			}
		}
	}
	for _, h := range r.ForwardHeaders {
		if h != strings.ToLower(h) {
			errs = append(errs, fmt.Errorf("forwardHeaders: %q must be lower case", h))
		}
		if why := r.NeverForwarded(h); why != "" {
			errs = append(errs, fmt.Errorf("forwardHeaders: %q is never forwarded: %s", h, why))
		}
	}
	if r.Group("framing").Group == "" {
		errs = append(errs, errors.New("neverForward has no group named framing"))
	}
	return r, errors.Join(errs...)
}

// Modules lists the shim's modules as workerd names them: the main module
// first, then the guest-side sources it imports as text.
var Modules = []Module{
	{Name: "index.js", Path: "src/index.js", Kind: ModuleES},
	{Name: "auth.js", Path: "src/auth.js", Kind: ModuleES},
	{Name: "egress.js", Path: "src/egress.js", Kind: ModuleES},
	{Name: "outbound.js", Path: "src/outbound.js", Kind: ModuleES},
	{Name: "capability.js", Path: "src/capability.js", Kind: ModuleES},
	{Name: "channel.js", Path: "src/channel.js", Kind: ModuleES},
	{Name: "scope.js", Path: "src/scope.js", Kind: ModuleES},
	{Name: "mask.js", Path: "src/mask.js", Kind: ModuleES},
	{Name: "override.js", Path: "src/override.js", Kind: ModuleES},
	{Name: "tail.js", Path: "src/tail.js", Kind: ModuleES},
	{Name: "limits.js", Path: "src/limits.js", Kind: ModuleES},
	{Name: "records.js", Path: "src/records.js", Kind: ModuleES},
	{Name: "lines.js", Path: "src/lines.js", Kind: ModuleES},
	{Name: "ledger.js", Path: "src/ledger.js", Kind: ModuleES},
	{Name: "warm.js", Path: "src/warm.js", Kind: ModuleES},
	{Name: "relay.js", Path: "src/relay.js", Kind: ModuleES},
	{Name: "modules.js", Path: "src/modules.js", Kind: ModuleES},
	{Name: "packages.js", Path: "src/packages.js", Kind: ModuleES},
	{Name: "reserved.js", Path: "src/reserved.js", Kind: ModuleES},
	{Name: "deny-ranges.json", Path: "src/deny-ranges.json", Kind: ModuleJSON},
	{Name: "caps.json", Path: "src/caps.json", Kind: ModuleJSON},
	{Name: "capability-rules.json", Path: "src/capability-rules.json", Kind: ModuleJSON},
	{Name: "contract.json", Path: "src/contract.json", Kind: ModuleJSON},
	// The guest modules as the shim loads them: minified from src/guest/ by
	// guestbuild (go generate, make build).
	{Name: "guest/min/__dw_wrapper.js", Path: "src/guest/min/__dw_wrapper.js", Kind: ModuleText},
	{Name: "guest/min/__dw_format.js", Path: "src/guest/min/__dw_format.js", Kind: ModuleText},
}

// Module is one file of the shim.
type Module struct {
	Name string // the module's name inside the Worker
	Path string // its path in Files
	Kind ModuleKind
}

// ModuleKind says how a module is loaded.
type ModuleKind int

// Module kinds.
const (
	ModuleES   ModuleKind = iota // an ES module
	ModuleText                   // imported as a string
	ModuleJSON                   // imported (with { type: "json" }) as the value it holds
	ModuleWasm                   // a WebAssembly binary, imported compiled (a WebAssembly.Module)
	ModuleData                   // bytes, imported as an ArrayBuffer
)

var (
	compatDatePattern  = regexp.MustCompile(`"compatibility_date"\s*:\s*"(\d{4}-\d{2}-\d{2})"`)
	compatFlagsPattern = regexp.MustCompile(`"compatibility_flags"\s*:\s*(\[[^\]]*\])`)
)

// CompatibilityFlags returns the shim's own compatibility flags from
// wrangler.jsonc, which both backends run it with.
func CompatibilityFlags() ([]string, error) {
	data, err := Files.ReadFile("wrangler.jsonc")
	if err != nil {
		return nil, err
	}
	m := compatFlagsPattern.FindSubmatch(data)
	if m == nil {
		return nil, errors.New("wrangler.jsonc has no compatibility_flags")
	}
	var flags []string
	if err := json.Unmarshal(m[1], &flags); err != nil {
		return nil, fmt.Errorf("wrangler.jsonc: compatibility_flags: %w", err)
	}
	return flags, nil
}

// CompatibilityDate returns the shim's own compatibility date from wrangler.jsonc,
// so the local runtime runs the shim exactly as Cloudflare would.
func CompatibilityDate() (string, error) {
	data, err := Files.ReadFile("wrangler.jsonc")
	if err != nil {
		return "", err
	}
	m := compatDatePattern.FindSubmatch(data)
	if m == nil {
		return "", errors.New("wrangler.jsonc has no compatibility_date")
	}
	return string(m[1]), nil
}
