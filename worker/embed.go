// Package worker embeds the shim Worker: the same files `wrangler deploy`
// takes from this folder, so the gateway binary is self-contained.
package worker

import (
	"bytes"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
)

// Files holds wrangler.jsonc and the shim's modules under src/.
//
//go:embed wrangler.jsonc src/*.js src/*.json src/guest/*.js
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
var capNames = []string{"maxJobBytes", "maxOutboundRecords", "maxErrorName", "maxErrorText", "logLineCost"}

// parseCaps reads the caps file: every cap present and positive, no member
// but them and the comment.
func parseCaps(data []byte) (CapsFile, error) {
	var members map[string]json.RawMessage
	if err := json.Unmarshal(data, &members); err != nil {
		return CapsFile{}, err
	}
	for name := range members {
		if name != "comment" && !slices.Contains(capNames, name) {
			return CapsFile{}, fmt.Errorf("unknown member %q", name)
		}
	}
	var file struct {
		Comment string `json:"comment"`
		CapsFile
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&file); err != nil {
		return CapsFile{}, err
	}
	c := file.CapsFile
	for i, value := range []int64{c.MaxJobBytes, int64(c.MaxOutboundRecords), int64(c.MaxErrorName), int64(c.MaxErrorText), int64(c.LogLineCost)} {
		if value <= 0 {
			return CapsFile{}, fmt.Errorf("%s must be present and positive", capNames[i])
		}
	}
	return c, nil
}

// Modules lists the shim's modules as workerd names them: the main module
// first, then the guest-side sources it imports as text.
var Modules = []Module{
	{Name: "index.js", Path: "src/index.js", Kind: ModuleES},
	{Name: "auth.js", Path: "src/auth.js", Kind: ModuleES},
	{Name: "egress.js", Path: "src/egress.js", Kind: ModuleES},
	{Name: "outbound.js", Path: "src/outbound.js", Kind: ModuleES},
	{Name: "capability.js", Path: "src/capability.js", Kind: ModuleES},
	{Name: "scope.js", Path: "src/scope.js", Kind: ModuleES},
	{Name: "tail.js", Path: "src/tail.js", Kind: ModuleES},
	{Name: "limits.js", Path: "src/limits.js", Kind: ModuleES},
	{Name: "records.js", Path: "src/records.js", Kind: ModuleES},
	{Name: "lines.js", Path: "src/lines.js", Kind: ModuleES},
	{Name: "ledger.js", Path: "src/ledger.js", Kind: ModuleES},
	{Name: "warm.js", Path: "src/warm.js", Kind: ModuleES},
	{Name: "relay.js", Path: "src/relay.js", Kind: ModuleES},
	{Name: "modules.js", Path: "src/modules.js", Kind: ModuleES},
	{Name: "deny-ranges.json", Path: "src/deny-ranges.json", Kind: ModuleJSON},
	{Name: "caps.json", Path: "src/caps.json", Kind: ModuleJSON},
	{Name: "guest/__dw_wrapper.js", Path: "src/guest/__dw_wrapper.js", Kind: ModuleText},
	{Name: "guest/__dw_format.js", Path: "src/guest/__dw_format.js", Kind: ModuleText},
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
)

var compatDatePattern = regexp.MustCompile(`"compatibility_date"\s*:\s*"(\d{4}-\d{2}-\d{2})"`)

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
