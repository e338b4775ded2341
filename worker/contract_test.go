package worker

import (
	"strings"
	"testing"
)

// TestParseContractRefusesMalformedFiles: a contract file with a member
// missing, empty, unknown or misspelled, an error code execution does not
// define or listed twice, a level on a stream that is not one, or a line
// type that collides stops the gateway at start, rather than leaving the
// shim and the gateway to read different words.
func TestParseContractRefusesMalformedFiles(t *testing.T) {
	t.Parallel()
	good := `{"comment": "c",
 "errorCodes": ["exception", "timeout"],
 "gatewayErrorCodes": ["runtime_crashed"],
 "levelStreams": {"log": "stdout", "error": "stderr"},
 "malformedRecord": "malformed",
 "mask": "[M]",
 "reservedModulePrefix": "__x_",
 "vpcBindingPrefix": "VPC_",
 "pingType": "ping",
 "netType": "net"}`
	c, err := parseContract([]byte(good))
	if err != nil || len(c.ErrorCodes) != 2 || c.GatewayErrorCodes[0] != "runtime_crashed" || c.LevelStreams["error"] != "stderr" ||
		c.MalformedRecord != "malformed" || c.Mask != "[M]" || c.ReservedModulePrefix != "__x_" || c.VPCBindingPrefix != "VPC_" || c.PingType != "ping" || c.NetType != "net" {
		t.Fatalf("parseContract(good) = %+v, %v; want every member", c, err)
	}
	bad := map[string]string{
		"unknown member":         strings.Replace(good, `"mask"`, `"extra": 1, "mask"`, 1),
		"misspelled member":      strings.Replace(good, `"netType"`, `"nettype"`, 1),
		"mask missing":           strings.Replace(good, `"mask": "[M]",`, ``, 1),
		"mask empty":             strings.Replace(good, `"[M]"`, `""`, 1),
		"malformedRecord empty":  strings.Replace(good, `"malformed",`, `"",`, 1),
		"prefix empty":           strings.Replace(good, `"__x_"`, `""`, 1),
		"prefix with a slash":    strings.Replace(good, `"__x_"`, `"__x/"`, 1),
		"an unknown code":        strings.Replace(good, `"timeout"]`, `"timeout", "disk_full"]`, 1),
		"a code in another case": strings.Replace(good, `"timeout"]`, `"Timeout"]`, 1),
		"a code twice":           strings.Replace(good, `"timeout"]`, `"timeout", "exception"]`, 1),
		"a code in both lists":   strings.Replace(good, `["runtime_crashed"]`, `["runtime_crashed", "timeout"]`, 1),
		"no shim codes":          strings.Replace(good, `["exception", "timeout"]`, `[]`, 1),
		"no gateway codes":       strings.Replace(good, `["runtime_crashed"]`, `[]`, 1),
		"a code not a string":    strings.Replace(good, `"timeout"]`, `7]`, 1),
		"no levels":              strings.Replace(good, `{"log": "stdout", "error": "stderr"}`, `{}`, 1),
		"an unknown stream":      strings.Replace(good, `"stderr"}`, `"stdlog"}`, 1),
		"an empty level":         strings.Replace(good, `"log":`, `"":`, 1),
		"vpc prefix missing":     strings.Replace(good, `"vpcBindingPrefix": "VPC_",`, ``, 1),
		"vpc prefix lower case":  strings.Replace(good, `"VPC_"`, `"vpc_"`, 1),
		"vpc prefix a dash":      strings.Replace(good, `"VPC_"`, `"VPC-"`, 1),
		"ping is net":            strings.Replace(good, `"ping"`, `"net"`, 1),
		"ping is an event":       strings.Replace(good, `"ping"`, `"log"`, 1),
		"net is an event":        strings.Replace(good, `"net"}`, `"result"}`, 1),
		"not an object":          `["exception"]`,
		"empty":                  ``,
	}
	for name, data := range bad {
		if c, err := parseContract([]byte(data)); err == nil {
			t.Errorf("%s: parseContract = %+v, want an error", name, c)
		}
	}
}

// TestContractErrorCode: the shim may send exactly the codes of
// errorCodes, none of those only the gateway gives.
func TestContractErrorCode(t *testing.T) {
	t.Parallel()
	for _, code := range Contract.ErrorCodes {
		if !Contract.ErrorCode(code) {
			t.Errorf("ErrorCode(%q) = false, want true", code)
		}
	}
	for _, code := range append(Contract.GatewayErrorCodes, "", "Exception", "success") {
		if Contract.ErrorCode(code) {
			t.Errorf("ErrorCode(%q) = true, want false", code)
		}
	}
}
