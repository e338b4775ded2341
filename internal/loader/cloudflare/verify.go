package cloudflare

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/dynamic-workers/gateway/internal/backoff"
	"github.com/dynamic-workers/gateway/internal/loader/shim"
)

// verifyDeployed makes the signed /verify call a gateway makes at start
// against the deployed shim at url, retrying while the new Worker or its
// route is still reaching Cloudflare's edge, until cfg.VerifyTimeout. It
// returns nil once the shim answers 204: the shim runs and holds the
// secret the gateways sign with.
func verifyDeployed(ctx context.Context, cfg DeployConfig, url, version string) error {
	ctx, cancel := context.WithTimeout(ctx, cfg.VerifyTimeout)
	defer cancel()
	client := cfg.HTTPClient
	if client == nil {
		client = &http.Client{Timeout: 10 * time.Second}
	}
	wait := backoff.Policy{Min: 250 * time.Millisecond, Max: 5 * time.Second}
	var last error
	for attempt := 0; ; attempt++ {
		err := verifyOnce(ctx, client, url, cfg, version)
		if err == nil {
			return nil
		}
		if last == nil || ctx.Err() == nil { // keep the shim's answer over the deadline's
			last = err
		}
		if wait.Wait(ctx, attempt) != nil {
			return fmt.Errorf("check the deployed shim with a signed call to %s/verify (for %s): %w", url, cfg.VerifyTimeout, last)
		}
	}
}

// versionOverrides is the header that asks Cloudflare for one version of a
// Worker in a gradual deployment: script="version-id".
const versionOverrides = "Cloudflare-Workers-Version-Overrides"

// verifyOnce makes one signed /verify call, asking for version (the one
// the deploy made) and checking that it answered: in a gradual rollout the
// old version would answer most calls, and pass a check of the secret.
func verifyOnce(ctx context.Context, client *http.Client, url string, cfg DeployConfig, version string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url+"/verify", nil)
	if err != nil {
		return err
	}
	req.Header.Set(versionOverrides, fmt.Sprintf("%s=%q", cfg.ScriptName, version))
	shim.Sign(req, nil, cfg.ShimSecret, time.Now())
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	switch got := resp.Header.Get("X-Shim-Version"); {
	case resp.StatusCode == http.StatusNoContent && got == version:
		return nil
	case resp.StatusCode == http.StatusNoContent && got == "":
		return fmt.Errorf("the shim answered without its version id: is %s the shim this deploy made (deployed with the CF_VERSION_METADATA binding)?", url)
	case resp.StatusCode == http.StatusNoContent:
		return fmt.Errorf("version %s answered, not the deployed %s (the new version may not have reached the edge yet)", got, version)
	}
	switch resp.StatusCode {
	case http.StatusUnauthorized:
		return fmt.Errorf("the shim refuses the signature (%s): it holds another SHIM_SECRET than the one deployed; is %s this deploy's shim?", resp.Status, url)
	}
	return fmt.Errorf("the shim answered %s, not 204", resp.Status)
}

// shimURL is where the shim is reached: cloudflare.url if set (the URL the
// gateways use), else the URL the deploy made.
func shimURL(cfg DeployConfig, deployed string) string {
	if cfg.URL != "" {
		return strings.TrimRight(cfg.URL, "/")
	}
	return deployed
}
