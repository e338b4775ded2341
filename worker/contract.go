package worker

import (
	_ "embed"
	"errors"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"

	"github.com/dynamic-workers/gateway/execution"
)

// Contract holds the words the shim and the gateway share, read from
// src/contract.json, which the shim imports as a JSON module: each is
// defined there once. The gateway refuses to start if the file names an
// error code or a stream the execution package does not define, so a code
// the shim sends is always one the gateway knows.
var Contract = mustParseContract(contractJSON)

//go:embed src/contract.json
var contractJSON []byte

// ContractFile is the shape of src/contract.json.
type ContractFile struct {
	// ErrorCodes are the codes of an execution's error the shim sends
	// (and the capture wrapper writes): the gateway takes no other from it.
	ErrorCodes []execution.Code `json:"errorCodes"`
	// GatewayErrorCodes are the codes only the gateway gives. With
	// ErrorCodes they are execution's Code constants.
	GatewayErrorCodes []execution.Code `json:"gatewayErrorCodes"`
	// LevelStreams maps each console level the shim sends to its stream,
	// execution.StreamStdout or execution.StreamStderr.
	LevelStreams map[string]string `json:"levelStreams"`
	// MalformedRecord is the message of an execution whose guest broke the
	// contract of its records; it quotes nothing the guest wrote.
	MalformedRecord string `json:"malformedRecord"`
	// Mask is what a masked secret reads as.
	Mask string `json:"mask"`
	// ReservedModulePrefix starts the names of the shim's own guest
	// modules: no part of a job's module path may start with it, in any
	// case.
	ReservedModulePrefix string `json:"reservedModulePrefix"`
	// VPCBindingPrefix starts the name of the shim's binding to a
	// capability's Workers VPC service: the prefix, then the capability's
	// name (lower case, so no other binding of the shim's can take it).
	VPCBindingPrefix string `json:"vpcBindingPrefix"`
	// PingType and NetType are the types of the two lines of the shim's
	// stream that are not events: {"type":PingType} while the guest is
	// silent, {"type":NetType} before its first outbound request.
	PingType string `json:"pingType"`
	NetType  string `json:"netType"`
}

// ErrorCode reports whether the shim may end an execution with code.
func (c ContractFile) ErrorCode(code execution.Code) bool {
	return slices.Contains(c.ErrorCodes, code)
}

func mustParseContract(data []byte) ContractFile {
	contract, err := parseContract(data)
	if err != nil {
		panic("worker: src/contract.json: " + err.Error())
	}
	return contract
}

// contractNames are the members of the contract file, spelled exactly: the
// shim reads them by name, while encoding/json matches names in any case.
var contractNames = []string{
	"errorCodes", "gatewayErrorCodes", "levelStreams", "malformedRecord", "mask",
	"reservedModulePrefix", "vpcBindingPrefix", "pingType", "netType",
}

// upperName is a binding prefix the shim's own bindings (LOADER,
// SHIM_SECRET, ...) cannot be confused with once a lower-case name follows.
var upperName = regexp.MustCompile(`^[A-Z][A-Z0-9_]*$`)

// eventTypes are the types of the events the shim sends, which neither
// line that is not an event may take.
var eventTypes = []string{
	execution.EventStart, execution.EventLog, execution.EventResult, execution.EventRestart, execution.EventOutbound,
}

// parseContract reads the contract file strictly: every member present and
// not empty, no member but them and the comment, every error code one
// execution defines (Code.Known) and in one list only, every stream one of
// execution's, and the two line types distinct and no event's.
func parseContract(data []byte) (ContractFile, error) {
	c, err := decodeStrict[ContractFile](data, contractNames)
	if err != nil {
		return ContractFile{}, err
	}
	var errs []error
	texts := map[string]string{
		"malformedRecord": c.MalformedRecord, "mask": c.Mask, "reservedModulePrefix": c.ReservedModulePrefix,
		"vpcBindingPrefix": c.VPCBindingPrefix,
		"pingType":         c.PingType, "netType": c.NetType,
	}
	for _, name := range slices.Sorted(maps.Keys(texts)) {
		if texts[name] == "" {
			errs = append(errs, fmt.Errorf("%s must be present and not empty", name))
		}
	}
	errs = append(errs, checkCodes(c.ErrorCodes, c.GatewayErrorCodes)...)
	if len(c.LevelStreams) == 0 {
		errs = append(errs, errors.New("levelStreams must be present and not empty"))
	}
	for _, level := range slices.Sorted(maps.Keys(c.LevelStreams)) {
		if s := c.LevelStreams[level]; level == "" || s != execution.StreamStdout && s != execution.StreamStderr {
			errs = append(errs, fmt.Errorf("levelStreams: level %q on stream %q, want a level on %s or %s", level, s, execution.StreamStdout, execution.StreamStderr))
		}
	}
	if strings.ContainsAny(c.ReservedModulePrefix, "/\\") {
		errs = append(errs, fmt.Errorf("reservedModulePrefix %q must not hold a path separator", c.ReservedModulePrefix))
	}
	if c.VPCBindingPrefix != "" && !upperName.MatchString(c.VPCBindingPrefix) {
		errs = append(errs, fmt.Errorf("vpcBindingPrefix %q must be upper-case letters, digits and _, starting with a letter (a capability's lower-case name follows it)", c.VPCBindingPrefix))
	}
	if c.PingType == c.NetType || slices.Contains(eventTypes, c.PingType) || slices.Contains(eventTypes, c.NetType) {
		errs = append(errs, fmt.Errorf("pingType %q and netType %q must differ from each other and from the event types %q", c.PingType, c.NetType, eventTypes))
	}
	return c, errors.Join(errs...)
}

// checkCodes refuses lists of error codes that are empty, repeat a code,
// share one, or name one execution does not define.
func checkCodes(shim, gateway []execution.Code) []error {
	var errs []error
	if len(shim) == 0 || len(gateway) == 0 {
		errs = append(errs, errors.New("errorCodes and gatewayErrorCodes must be present and not empty"))
	}
	seen := map[execution.Code]bool{}
	for _, code := range slices.Concat(shim, gateway) {
		if seen[code] {
			errs = append(errs, fmt.Errorf("error code %q is listed twice", code))
		}
		seen[code] = true
		if !code.Known() {
			errs = append(errs, fmt.Errorf("error code %q is not one of execution's Code constants", code))
		}
	}
	return errs
}
