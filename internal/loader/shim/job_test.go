package shim

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/dynamic-workers/gateway/execution"
)

// TestEncodeJob: HTML characters cost one byte each, and a job over the
// shim's bound is refused before anything is sent, whatever makes it large.
func TestEncodeJob(t *testing.T) {
	t.Parallel()
	body, err := encodeJob(&execution.Job{ID: "ex_1", Modules: map[string]string{"main.js": "a<b && c>d"}})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(body, []byte(`"a<b && c>d"`)) {
		t.Errorf("encodeJob = %s, want HTML characters unescaped", body)
	}
	big := strings.Repeat("x", MaxJobBytes)
	for name, job := range map[string]*execution.Job{
		"module":  {Modules: map[string]string{"main.js": big}},
		"env":     {Env: map[string]any{"A": big}},
		"request": {Request: execution.GuestRequest{Body: big}},
		"escapes": {Modules: map[string]string{"main.js": strings.Repeat("\x01", MaxJobBytes/5)}},
	} {
		_, err := encodeJob(job)
		var rejected *execution.RejectedError
		if !errors.As(err, &rejected) {
			t.Errorf("encodeJob(%s over the bound) = %v, want a *execution.RejectedError", name, err)
		}
	}
}
