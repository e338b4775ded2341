package main

import (
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/dynamic-workers/gateway/internal/loader/cloudflare/cftest"
	"github.com/dynamic-workers/gateway/internal/loader/loadertest"
	"github.com/dynamic-workers/gateway/internal/loader/shim"
)

// deployEnv is the environment of `gateway deploy` against fake f; the
// shim is checked at the fake's loopback shim (cloudflare.url).
func deployEnv(f *cftest.Fake, secret string) func(string) string {
	env := map[string]string{
		"CLOUDFLARE_ACCOUNT_ID":           "acct",
		"CLOUDFLARE_API_TOKEN":            "tok",
		"GATEWAY_CLOUDFLARE_API_BASE_URL": f.BaseURL(),
		"GATEWAY_CLOUDFLARE_URL":          f.PlainShim.URL,
		"GATEWAY_CLOUDFLARE_SHIM_SECRET":  secret,
	}
	return func(k string) string { return env[k] }
}

func newDeployFake(t *testing.T) *cftest.Fake {
	return cftest.New(t, cftest.Options{Token: "tok", AccountID: "acct", Subdomain: "team"})
}

// TestRunDeploy drives `gateway deploy` as a user would: a dry run writes
// nothing, a deploy uploads and checks the shim, and a second deploy (CI
// deploying again) succeeds too.
func TestRunDeploy(t *testing.T) {
	f := newDeployFake(t)
	getenv := deployEnv(f, strings.Repeat("k", 40))
	var out, errOut loadertest.Buffer
	if err := run(t.Context(), []string{"deploy", "--dry-run"}, getenv, nil, &out, &errOut); err != nil {
		t.Fatalf("deploy --dry-run: %v", err)
	}
	if f.Writes() != 0 || !strings.Contains(out.String(), "dry run") || !strings.Contains(out.String(), "would enable it") {
		t.Errorf("dry run called %v and printed:\n%s", f.Calls(), out.String())
	}
	for i := range 2 {
		out = loadertest.Buffer{}
		if err := run(t.Context(), []string{"deploy"}, getenv, nil, &out, &errOut); err != nil {
			t.Fatalf("deploy %d: %v", i+1, err)
		}
		if !strings.Contains(out.String(), "the shim at "+f.PlainShim.URL+" accepts") {
			t.Errorf("deploy %d output:\n%s", i+1, out.String())
		}
	}
	if strings.Contains(out.String()+errOut.String(), strings.Repeat("k", 40)) {
		t.Error("deploy printed the configured secret")
	}
}

// TestRunDeployNeverRotatesUnasked: deploy never makes a new secret
// unasked. Without cloudflare.shim_secret it refuses and changes nothing;
// with --rotate-secret and --secret-out - it deploys a new secret, printed
// once, to stdout only.
func TestRunDeployNeverRotatesUnasked(t *testing.T) {
	f := newDeployFake(t)
	var out, errOut loadertest.Buffer
	err := run(t.Context(), []string{"deploy"}, deployEnv(f, ""), nil, &out, &errOut)
	if err == nil || !strings.Contains(err.Error(), "--rotate-secret") {
		t.Errorf("deploy without a secret = %v, want an error naming --rotate-secret", err)
	}
	if len(f.Calls()) != 0 || strings.Contains(out.String(), "SHIM_SECRET=") {
		t.Errorf("deploy without a secret called %v and printed:\n%s", f.Calls(), out.String())
	}

	old := strings.Repeat("k", 40)
	out = loadertest.Buffer{}
	if err := run(t.Context(), []string{"deploy", "--rotate-secret", "--secret-out", "-"}, deployEnv(f, old), nil, &out, &errOut); err != nil {
		t.Fatalf("deploy --rotate-secret: %v", err)
	}
	m := regexp.MustCompile(`GATEWAY_CLOUDFLARE_SHIM_SECRET=([0-9a-f]{64})\n`).FindAllStringSubmatch(out.String(), -1)
	if len(m) != 1 {
		t.Fatalf("stdout shows the new secret %d times, want once:\n%s", len(m), out.String())
	}
	secret := m[0][1]
	if got := f.Script("dynamic-workers-shim").Secret; got != secret || got == old {
		t.Errorf("deployed secret %q, printed %q, old %q: want the printed, new one", got, secret, old)
	}
	if strings.Count(out.String(), secret) != 1 || strings.Contains(errOut.String(), secret) {
		t.Errorf("the new secret appears more than once on stdout or on stderr:\n%s\n--\n%s", out.String(), errOut.String())
	}
	// Gateways still signing with the old secret keep working until the
	// next deploy with the new one retires it.
	if got := shimAnswer(t, f, old); got != http.StatusNoContent {
		t.Errorf("after the rotation the shim answers the old secret %d, want 204", got)
	}
	if err := run(t.Context(), []string{"deploy"}, deployEnv(f, secret), nil, &out, &errOut); err != nil {
		t.Fatalf("deploy with the new secret: %v", err)
	}
	if got := shimAnswer(t, f, old); got != http.StatusUnauthorized {
		t.Errorf("after the next deploy the shim answers the old secret %d, want 401", got)
	}
}

// shimAnswer is the status of a /verify call to f's shim signed with secret.
func shimAnswer(t *testing.T, f *cftest.Fake, secret string) int {
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, f.PlainShim.URL+"/verify", nil)
	shim.Sign(req, nil, secret, time.Now())
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestRunDeployDryRunNeverShowsARotatedSecret: a rotating dry run makes
// no secret anyone would configure.
func TestRunDeployDryRunNeverShowsARotatedSecret(t *testing.T) {
	f := newDeployFake(t)
	var out, errOut loadertest.Buffer
	if err := run(t.Context(), []string{"deploy", "--dry-run", "--rotate-secret"}, deployEnv(f, ""), nil, &out, &errOut); err != nil {
		t.Fatal(err)
	}
	if f.Writes() != 0 || strings.Contains(out.String(), "SHIM_SECRET=") {
		t.Errorf("dry run wrote %v or printed a secret:\n%s", f.Calls(), out.String())
	}
}

// TestRunDeployRotatedSecretGoesOnlyWhereAsked: --rotate-secret without
// --secret-out refuses before anything is made or uploaded (stdout is
// often a CI log); with a file it writes the secret there alone (0600, a
// new file, never one that exists), and stdout and stderr never show it.
func TestRunDeployRotatedSecretGoesOnlyWhereAsked(t *testing.T) {
	f := newDeployFake(t)
	old := strings.Repeat("k", 40)
	var out, errOut loadertest.Buffer
	err := run(t.Context(), []string{"deploy", "--rotate-secret"}, deployEnv(f, old), nil, &out, &errOut)
	if err == nil || !strings.Contains(err.Error(), "--secret-out") || len(f.Calls()) != 0 {
		t.Errorf("deploy --rotate-secret alone = %v after calls %v, want an error naming --secret-out and no call", err, f.Calls())
	}
	if err := run(t.Context(), []string{"deploy", "--secret-out", "-"}, deployEnv(f, old), nil, &out, &errOut); err == nil {
		t.Error("deploy --secret-out without --rotate-secret succeeded")
	}
	exists := filepath.Join(t.TempDir(), "exists")
	if err := os.WriteFile(exists, []byte("keep"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := run(t.Context(), []string{"deploy", "--rotate-secret", "--secret-out", exists}, deployEnv(f, old), nil, &out, &errOut); err == nil || len(f.Calls()) != 0 {
		t.Errorf("deploy --secret-out <an existing file> = %v after calls %v, want an error and no call", err, f.Calls())
	}
	if data, _ := os.ReadFile(exists); string(data) != "keep" {
		t.Errorf("an existing --secret-out file was changed: %q", data)
	}
	file := filepath.Join(t.TempDir(), "shim-secret.env")
	out = loadertest.Buffer{}
	if err := run(t.Context(), []string{"deploy", "--rotate-secret", "--secret-out", file}, deployEnv(f, old), nil, &out, &errOut); err != nil {
		t.Fatalf("deploy --rotate-secret --secret-out FILE: %v", err)
	}
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	st, _ := os.Stat(file)
	secret := f.Script("dynamic-workers-shim").Secret
	if string(data) != "GATEWAY_CLOUDFLARE_SHIM_SECRET="+secret+"\n" || secret == old || len(secret) != 64 || st.Mode().Perm() != 0o600 {
		t.Errorf("file holds %q (mode %v), deployed %q: want the deployed new secret, mode 0600", data, st.Mode().Perm(), secret)
	}
	if strings.Contains(out.String()+errOut.String(), secret) {
		t.Errorf("stdout or stderr shows the new secret:\n%s\n--\n%s", out.String(), errOut.String())
	}
}

// TestRunDeployRollout: `gateway deploy --percentage 25` sends a quarter
// of the traffic to a new version; `--rollback-to` puts the first back.
func TestRunDeployRollout(t *testing.T) {
	f := newDeployFake(t)
	getenv := deployEnv(f, strings.Repeat("k", 40))
	var out, errOut loadertest.Buffer
	if err := run(t.Context(), []string{"deploy"}, getenv, nil, &out, &errOut); err != nil {
		t.Fatal(err)
	}
	first := f.Script("dynamic-workers-shim").Versions[0].ID
	if err := run(t.Context(), []string{"deploy", "--percentage", "25"}, getenv, nil, &out, &errOut); err != nil {
		t.Fatal(err)
	}
	s := f.Script("dynamic-workers-shim")
	d := s.Deployments[len(s.Deployments)-1]
	if len(d.Versions) != 2 || d.Versions[0].Percentage != 25 || d.Versions[1] != (cftest.DeploymentTarget{VersionID: first, Percentage: 75}) {
		t.Errorf("deployment %+v, want the new version at 25%% beside %s", d, first)
	}
	if err := run(t.Context(), []string{"deploy", "--rollback-to", first}, getenv, nil, &out, &errOut); err != nil {
		t.Fatal(err)
	}
	s = f.Script("dynamic-workers-shim")
	if d := s.Deployments[len(s.Deployments)-1]; len(d.Versions) != 1 || d.Versions[0].VersionID != first {
		t.Errorf("after the rollback: %+v, want %s alone", d, first)
	}
}
