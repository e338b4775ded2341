package worker

import (
	"strings"
	"testing"
)

// TestParseCapsRefusesMalformedFiles: a cap missing, not positive, of the
// wrong type or unknown stops the gateway at start rather than leaving Go
// with a zero the shim does not have.
func TestParseCapsRefusesMalformedFiles(t *testing.T) {
	t.Parallel()
	good := `"maxJobBytes": 100, "maxOutboundRecords": 10, "maxErrorName": 5, "maxErrorText": 50, "logLineCost": 8, "maxWarmIsolates": 4, "channelWindowBytes": 64, "channelPieceBytes": 16`
	bad := map[string]string{
		"maxJobBytes missing":   `{"maxOutboundRecords": 10, "maxErrorName": 5, "maxErrorText": 50, "logLineCost": 8}`,
		"logLineCost missing":   `{"maxJobBytes": 100, "maxOutboundRecords": 10, "maxErrorName": 5, "maxErrorText": 50}`,
		"logLineCost 0":         `{"maxJobBytes": 100, "maxOutboundRecords": 10, "maxErrorName": 5, "maxErrorText": 50, "logLineCost": 0}`,
		"maxOutboundRecords 0":  `{"maxJobBytes": 100, "maxOutboundRecords": 0, "maxErrorName": 5, "maxErrorText": 50}`,
		"maxErrorName negative": `{"maxJobBytes": 100, "maxOutboundRecords": 10, "maxErrorName": -5, "maxErrorText": 50}`,
		"maxErrorText string":   `{"maxJobBytes": 100, "maxOutboundRecords": 10, "maxErrorName": 5, "maxErrorText": "50"}`,
		"maxErrorText fraction": `{"maxJobBytes": 100, "maxOutboundRecords": 10, "maxErrorName": 5, "maxErrorText": 50.5}`,
		"unknown member":        `{` + good + `, "maxWarm": 4}`,
		"maxWarmIsolates 0":     `{"maxJobBytes": 100, "maxOutboundRecords": 10, "maxErrorName": 5, "maxErrorText": 50, "logLineCost": 8, "maxWarmIsolates": 0}`,
		"channelPieceBytes 0":   `{"maxJobBytes": 100, "maxOutboundRecords": 10, "maxErrorName": 5, "maxErrorText": 50, "logLineCost": 8, "maxWarmIsolates": 4, "channelWindowBytes": 64, "channelPieceBytes": 0}`,
		"misspelled member":     `{"maxJobbytes": 100, "maxOutboundRecords": 10, "maxErrorName": 5, "maxErrorText": 50}`,
		"not an object":         `[100, 10, 5, 50]`,
		"empty":                 ``,
	}
	for name, data := range bad {
		if caps, err := parseCaps([]byte(data)); err == nil {
			t.Errorf("%s: parseCaps = %+v, want an error", name, caps)
		}
	}
	caps, err := parseCaps([]byte(`{"comment": "c", ` + good + `}`))
	if err != nil || caps != (CapsFile{MaxJobBytes: 100, MaxOutboundRecords: 10, MaxErrorName: 5, MaxErrorText: 50, LogLineCost: 8, MaxWarmIsolates: 4, ChannelWindow: 64, ChannelPiece: 16}) {
		t.Errorf("parseCaps = %+v, %v; want the eight caps", caps, err)
	}
}

// TestShimModulesIncludeItsData: every JSON file the shim imports is one of
// its modules, so the runtime and a deployment both have it.
func TestShimModulesIncludeItsData(t *testing.T) {
	t.Parallel()
	listed := map[string]bool{}
	for _, m := range Modules {
		listed[m.Path] = true
	}
	entries, err := Files.ReadDir("src")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if name := "src/" + e.Name(); strings.HasSuffix(name, ".json") || strings.HasSuffix(name, ".js") {
			if !listed[name] {
				t.Errorf("%s is not in Modules", name)
			}
		}
	}
}

// TestParseCapabilityRulesRefusesMalformedFiles: a rules file whose default
// list forwards a header it never forwards, with a member unknown, a bound
// missing or names not in lower case stops the gateway at start.
func TestParseCapabilityRulesRefusesMalformedFiles(t *testing.T) {
	t.Parallel()
	group := `"neverForward": [{"group": "framing", "why": "w", "names": ["host"], "prefixes": ["x-forwarded-"], "containing": ["override"]}]`
	rest := `"pathPlain": "abc", "pathEscapable": " ", "maxAnswerBytes": 10, "maxFormBytes": 10`
	good := `{"forwardHeaders": ["accept"], ` + group + `, ` + rest + `}`
	if _, err := parseCapabilityRules([]byte(good)); err != nil {
		t.Fatalf("parseCapabilityRules(good) = %v", err)
	}
	bad := map[string]string{
		"forwards a framing header":  strings.Replace(good, `["accept"]`, `["accept", "host"]`, 1),
		"forwards by prefix":         strings.Replace(good, `["accept"]`, `["x-forwarded-for"]`, 1),
		"forwards by containing":     strings.Replace(good, `["accept"]`, `["x-method-override"]`, 1),
		"forwards an underscore":     strings.Replace(good, `["accept"]`, `["x_custom"]`, 1),
		"upper case":                 strings.Replace(good, `["accept"]`, `["Accept"]`, 1),
		"no framing group":           strings.Replace(good, `"framing"`, `"other"`, 1),
		"no why":                     strings.Replace(good, `"why": "w"`, `"why": ""`, 1),
		"bound missing":              strings.Replace(good, `, "maxFormBytes": 10`, ``, 1),
		"unknown member":             strings.Replace(good, `"maxFormBytes": 10`, `"maxFormBytes": 10, "extra": 1`, 1),
		"member in another case":     strings.Replace(good, `"pathPlain"`, `"pathplain"`, 1),
		"a separator in pathPlain":   strings.Replace(good, `"pathPlain": "abc"`, `"pathPlain": "ab;"`, 1),
		"a percent in pathEscapable": strings.Replace(good, `"pathEscapable": " "`, `"pathEscapable": "%"`, 1),
	}
	for name, data := range bad {
		if _, err := parseCapabilityRules([]byte(data)); err == nil {
			t.Errorf("%s: parseCapabilityRules succeeded, want an error", name)
		}
	}
}
