package cloudflare

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"slices"
	"time"

	cf "github.com/cloudflare/cloudflare-go/v4"
	"github.com/cloudflare/cloudflare-go/v4/option"
	"github.com/cloudflare/cloudflare-go/v4/workers"

	"github.com/dynamic-workers/gateway/execution"
	"github.com/dynamic-workers/gateway/internal/redact"
)

// DeployConfig says where and how to deploy the shim to Cloudflare.
type DeployConfig struct {
	AccountID  string
	APIToken   string
	ScriptName string
	ShimSecret string // the secret the gateway signs its calls with
	// PreviousSecret, if set, is deployed as SHIM_SECRET_PREVIOUS, which the
	// shim still accepts while gateways move to ShimSecret (a rotation).
	PreviousSecret string
	// Route, if set, serves the shim on a zone's route ("shim.example.com/*")
	// instead of the account's workers.dev subdomain.
	Route string
	// CustomDomain, if set, serves the shim on that hostname as a Custom
	// Domain of ZoneID (Cloudflare makes the DNS record and certificate)
	// instead of workers.dev or a route.
	CustomDomain string
	ZoneID       string
	// URL, if set, is where the gateways reach the shim (cloudflare.url):
	// deploy checks the shim there rather than at the URL it made.
	URL        string
	BaseURL    string // the Cloudflare API; empty for the real one
	MaxRetries int    // retries of failed API calls; negative for none
	// VerifyTimeout bounds the wait for the deployed shim to answer the
	// signed check; 0 means a minute.
	VerifyTimeout time.Duration
	HTTPClient    *http.Client // for the check; nil for a default
	// Percentage is the share of traffic the new version gets (1 to 100;
	// 0 means 100), the rest staying on the current version: a gradual
	// rollout, continued by deploying again with a larger share.
	Percentage int
	// RollbackTo, if set, deploys that version (an id from an earlier
	// deploy) to 100% instead of uploading.
	RollbackTo string
	// VPCServices are the capabilities reached through a Workers VPC
	// service, by name, with the service's id: each becomes a vpc_service
	// binding of the shim, VPCBinding(name).
	VPCServices map[string]string
}

// Deploy uploads the shim as a Worker with the Cloudflare API, makes it
// reachable (workers.dev, or a route) and checks with a signed /verify call
// that it answers with the secret the gateways sign with, writing what it
// does to out. It changes only what differs: a route already serving the
// shim is kept, so deploying again succeeds. With dryRun it reads what it
// can (given credentials) and prints the plan, the secret masked, writing
// nothing.
func Deploy(ctx context.Context, cfg DeployConfig, dryRun bool, out io.Writer) error {
	if err := cfg.validate(dryRun); err != nil {
		return err
	}
	if cfg.VerifyTimeout <= 0 {
		cfg.VerifyTimeout = time.Minute
	}
	up, err := buildUpload(cfg.ShimSecret, cfg.PreviousSecret, cfg.VPCServices)
	if err != nil {
		return err
	}
	var client *cf.Client
	if cfg.AccountID != "" && cfg.APIToken != "" {
		client = newClient(cfg)
	}
	var pl plan
	if client != nil {
		if pl, err = readPlan(ctx, client, cfg); err != nil {
			return err
		}
	}
	if dryRun {
		return printPlan(cfg, up, pl, client != nil, out)
	}
	url, version, err := apply(ctx, client, cfg, up, pl, out)
	if err != nil {
		return err
	}
	return verifyAndReport(ctx, cfg, url, version, out)
}

// verifyAndReport checks the deployed shim and prints its URL, the one to
// set as cloudflare.url.
func verifyAndReport(ctx context.Context, cfg DeployConfig, url, version string, out io.Writer) error {
	target := shimURL(cfg, url)
	if target == "" {
		return fmt.Errorf("route %s names no one host, so deploy cannot check the shim: set cloudflare.url to the shim's URL on a host the route matches, and deploy again", cfg.Route)
	}
	if err := verifyDeployed(ctx, cfg, target, version); err != nil {
		return err
	}
	fmt.Fprintf(out, "the shim at %s accepts the gateway's signed calls (version %s answered)\n", target, version)
	switch {
	case cfg.URL == "":
		fmt.Fprintf(out, "set cloudflare.url to %s\n", target)
	case url != "" && url != target:
		fmt.Fprintf(out, "(checked at cloudflare.url; the deploy serves it at %s)\n", url)
	}
	return nil
}

func newClient(cfg DeployConfig) *cf.Client {
	opts := []option.RequestOption{option.WithAPIToken(cfg.APIToken)}
	if cfg.BaseURL != "" {
		opts = append(opts, option.WithBaseURL(cfg.BaseURL))
	}
	if cfg.MaxRetries != 0 {
		opts = append(opts, option.WithMaxRetries(max(cfg.MaxRetries, 0)))
	}
	return cf.NewClient(opts...)
}

// plan is what deploy read before changing anything.
type plan struct {
	subdomain  string    // the account's workers.dev subdomain (workers.dev mode)
	route      routePlan // the route change (route mode)
	devEnabled bool      // the script is on workers.dev now
	rollout    rollout   // the script's deployment now
	domain     bool      // the Custom Domain serves the shim already
	dnsWarning string    // why the route may get no traffic (route mode)
}

// readPlan reads the account's state. Every refusal that can come before
// the upload (no subdomain, a route taken by another Worker, a token
// without the routes permission) comes here, so nothing is half done.
func readPlan(ctx context.Context, client *cf.Client, cfg DeployConfig) (plan, error) {
	var pl plan
	var err error
	switch {
	case cfg.CustomDomain != "":
		if pl.domain, err = planDomain(ctx, client, cfg); err != nil {
			return pl, err
		}
	case cfg.Route == "":
		sub, err := client.Workers.Subdomains.Get(ctx, workers.SubdomainGetParams{AccountID: cf.F(cfg.AccountID)})
		if err != nil {
			return pl, explainAPIError(stepSubdomain, err)
		}
		pl.subdomain = sub.Subdomain
	default:
		if pl.route, err = planRoute(ctx, client, cfg); err != nil {
			return pl, err
		}
		pl.dnsWarning = routeDNSWarning(ctx, client, cfg)
	}
	if pl.devEnabled, err = devEnabled(ctx, client, cfg); err != nil {
		return pl, err
	}
	if pl.rollout, err = readRollout(ctx, client, cfg); err != nil {
		return pl, err
	}
	return pl, checkRollout(cfg, pl.rollout)
}

// apply uploads and deploys the shim (ship) and makes the route changes pl
// plans; it returns the URL the deploy made and the version to check.
func apply(ctx context.Context, client *cf.Client, cfg DeployConfig, up *upload, pl plan, out io.Writer) (string, string, error) {
	version, err := ship(ctx, client, cfg, up, pl.rollout, out)
	if err != nil {
		return "", "", err
	}
	if cfg.CustomDomain != "" {
		if err := applyDomain(ctx, client, cfg, pl.domain, out); err != nil {
			return "", "", err
		}
		if changed, err := setDev(ctx, client, cfg, false); err != nil {
			return "", "", err
		} else if changed {
			fmt.Fprintf(out, "workers.dev: turned off (the Custom Domain serves the shim)\n")
		}
		return "https://" + cfg.CustomDomain, version, nil
	}
	if cfg.Route == "" {
		changed, err := setDev(ctx, client, cfg, true)
		if err != nil {
			return "", "", err
		}
		fmt.Fprintf(out, "workers.dev: %s\n", map[bool]string{true: "enabled", false: "enabled already"}[changed])
		return fmt.Sprintf("https://%s.%s.workers.dev", cfg.ScriptName, pl.subdomain), version, nil
	}
	if pl.dnsWarning != "" {
		fmt.Fprintf(out, "warning: %s\n", pl.dnsWarning)
	}
	if err := applyRoute(ctx, client, cfg, pl.route); err != nil {
		return "", "", err
	}
	fmt.Fprintf(out, "route %s: %s\n", cfg.Route, pl.route.describe(false))
	// The upload may have put a new script on workers.dev: read it again.
	changed, err := setDev(ctx, client, cfg, false)
	if err != nil {
		return "", "", err
	}
	if changed {
		fmt.Fprintf(out, "workers.dev: turned off (the route serves the shim)\n")
	}
	return routeURL(cfg.Route), version, nil
}

func (cfg DeployConfig) validate(dryRun bool) error {
	var errs []error
	if cfg.ScriptName == "" {
		errs = append(errs, errors.New("cloudflare.script_name is empty"))
	}
	if len(cfg.ShimSecret) < 32 {
		errs = append(errs, errors.New("cloudflare.shim_secret must be at least 32 characters (the gateway signs its calls with it)"))
	}
	if cfg.PreviousSecret != "" && (len(cfg.PreviousSecret) < 32 || cfg.PreviousSecret == cfg.ShimSecret) {
		errs = append(errs, errors.New("the previous shim secret must be at least 32 characters and differ from the new one"))
	}
	for _, name := range slices.Sorted(maps.Keys(cfg.VPCServices)) {
		if !execution.ValidCapabilityName(name) || cfg.VPCServices[name] == "" {
			errs = append(errs, fmt.Errorf("capability %q: a VPC service binding needs a capability's name and the service's id", name))
		}
	}
	if cfg.Route != "" && cfg.ZoneID == "" {
		errs = append(errs, errors.New("cloudflare.route needs cloudflare.zone_id"))
	}
	if cfg.CustomDomain != "" {
		errs = append(errs, checkDomain(cfg))
	}
	if cfg.Route != "" {
		errs = append(errs, checkRoute(cfg.Route))
	}
	if cfg.Percentage < 0 || cfg.Percentage > 100 {
		errs = append(errs, fmt.Errorf("--percentage %d: give 1 to 100", cfg.Percentage))
	}
	if cfg.RollbackTo != "" && cfg.Percentage != 0 && cfg.Percentage != 100 {
		errs = append(errs, errors.New("--rollback-to deploys that version to 100%: leave out --percentage"))
	}
	if !dryRun {
		if cfg.AccountID == "" {
			errs = append(errs, errors.New("no account id: set CLOUDFLARE_ACCOUNT_ID or cloudflare.account_id"))
		}
		if cfg.APIToken == "" {
			errs = append(errs, errors.New("no API token: set CLOUDFLARE_API_TOKEN or cloudflare.api_token"))
		}
	}
	return errors.Join(errs...)
}

func printPlan(cfg DeployConfig, up *upload, pl plan, read bool, out io.Writer) error {
	masked := up.metadata
	previous := ""
	if cfg.PreviousSecret != "" {
		previous = redact.Text
	}
	masked.Bindings = cf.F(bindings(redact.Text, previous, cfg.VPCServices))
	meta, err := masked.MarshalJSON()
	if err != nil {
		return err
	}
	var pretty bytes.Buffer
	_ = json.Indent(&pretty, meta, "  ", "  ")
	fmt.Fprintf(out, "dry run: would PUT accounts/%s/workers/scripts/%s as multipart/form-data:\n  metadata:\n  %s\n", orUnset(cfg.AccountID), cfg.ScriptName, pretty.String())
	for _, p := range up.parts {
		fmt.Fprintf(out, "  %-24s %-30s %6d bytes\n", p.Name, p.ContentType, p.Size)
	}
	printChanges(cfg, pl, read, out)
	return nil
}

// printChanges prints the route changes of a plan.
func printChanges(cfg DeployConfig, pl plan, read bool, out io.Writer) {
	if !read {
		fmt.Fprintf(out, "then serve it on %s (without credentials the current routes were not read).\n", orDev(cfg))
		return
	}
	switch {
	case pl.rollout.gradual():
		fmt.Fprintf(out, "warning: the shim is in a gradual rollout (%s); this deploy would replace it\n", pl.rollout)
	case pl.rollout.exists:
		fmt.Fprintf(out, "deployed now: %s\n", pl.rollout)
	}
	switch {
	case cfg.RollbackTo != "":
		fmt.Fprintf(out, "would deploy version %s to 100%% (no upload)\n", cfg.RollbackTo)
	case !pl.rollout.exists:
		fmt.Fprintf(out, "a new Worker: the upload deploys it to 100%%\n")
	case cfg.percentage() < 100:
		fmt.Fprintf(out, "would upload a version and deploy it to %d%%, %s keeping %d%%\n", cfg.percentage(), pl.rollout.stable(), 100-cfg.percentage())
	default:
		fmt.Fprintf(out, "would upload a version and deploy it to 100%%\n")
	}
	dev := map[bool]string{true: "on", false: "off"}[pl.devEnabled]
	if cfg.CustomDomain != "" {
		fmt.Fprintf(out, "Custom Domain %s in zone %s: %s; the shim's URL: https://%s\n", cfg.CustomDomain, cfg.ZoneID,
			map[bool]string{true: "unchanged", false: "would attach it (Cloudflare makes its DNS record and certificate)"}[pl.domain], cfg.CustomDomain)
		return
	}
	if cfg.Route == "" {
		action := map[bool]string{true: "unchanged", false: "would enable it"}[pl.devEnabled]
		fmt.Fprintf(out, "workers.dev (now %s): %s; the shim's URL: https://%s.%s.workers.dev\n", dev, action, cfg.ScriptName, pl.subdomain)
		return
	}
	fmt.Fprintf(out, "route %s in zone %s: %s\n", cfg.Route, cfg.ZoneID, pl.route.describe(true))
	if pl.dnsWarning != "" {
		fmt.Fprintf(out, "warning: %s\n", pl.dnsWarning)
	}
	if pl.devEnabled {
		fmt.Fprintf(out, "workers.dev (now on): would turn it off\n")
	}
	if u := routeURL(cfg.Route); u != "" {
		fmt.Fprintf(out, "the shim's URL: %s\n", u)
	} else {
		fmt.Fprintf(out, "the route names no one host: set cloudflare.url to the shim's URL on a host it matches\n")
	}
}

func orDev(cfg DeployConfig) string {
	if cfg.Route != "" {
		return "route " + cfg.Route + " in zone " + cfg.ZoneID
	}
	return "the account's workers.dev subdomain"
}

func orUnset(s string) string {
	if s == "" {
		return "(CLOUDFLARE_ACCOUNT_ID unset)"
	}
	return s
}
