package cloudflare

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	cf "github.com/cloudflare/cloudflare-go/v4"
	"github.com/cloudflare/cloudflare-go/v4/dns"
	"github.com/cloudflare/cloudflare-go/v4/workers"
)

// checkDomain refuses a Custom Domain the shim cannot be served on.
func checkDomain(cfg DeployConfig) error {
	var errs []error
	if cfg.Route != "" {
		errs = append(errs, errors.New("cloudflare.custom_domain and cloudflare.route are two ways to serve the shim: set one"))
	}
	if cfg.ZoneID == "" {
		errs = append(errs, errors.New("cloudflare.custom_domain needs cloudflare.zone_id"))
	}
	if h := cfg.CustomDomain; strings.ContainsAny(h, "/*: ") || !strings.Contains(h, ".") || strings.HasPrefix(h, ".") || strings.HasSuffix(h, ".") {
		errs = append(errs, fmt.Errorf("cloudflare.custom_domain %q is not a host name (shim.example.com)", h))
	}
	return errors.Join(errs...)
}

// planDomain reads the account's Custom Domains: true if the hostname
// serves the shim already; one that serves another Worker is an error.
func planDomain(ctx context.Context, client *cf.Client, cfg DeployConfig) (bool, error) {
	pager := client.Workers.Domains.ListAutoPaging(ctx, workers.DomainListParams{AccountID: cf.F(cfg.AccountID), Hostname: cf.F(cfg.CustomDomain)})
	for pager.Next() {
		d := pager.Current()
		if !strings.EqualFold(d.Hostname, cfg.CustomDomain) {
			continue
		}
		if d.Service != cfg.ScriptName {
			return false, fmt.Errorf("the Custom Domain %s serves the Worker %q, not %q: detach it or pick another cloudflare.custom_domain", cfg.CustomDomain, d.Service, cfg.ScriptName)
		}
		return true, nil
	}
	if err := pager.Err(); err != nil {
		return false, explainAPIError(stepDomains, err)
	}
	return false, nil
}

// applyDomain attaches the Custom Domain to the shim unless it serves it
// already; Cloudflare makes the DNS record and the certificate.
func applyDomain(ctx context.Context, client *cf.Client, cfg DeployConfig, attached bool, out io.Writer) error {
	if attached {
		fmt.Fprintf(out, "Custom Domain %s: unchanged (it serves the shim already)\n", cfg.CustomDomain)
		return nil
	}
	_, err := client.Workers.Domains.Update(ctx, workers.DomainUpdateParams{
		AccountID: cf.F(cfg.AccountID), Environment: cf.F("production"), Hostname: cf.F(cfg.CustomDomain),
		Service: cf.F(cfg.ScriptName), ZoneID: cf.F(cfg.ZoneID),
	})
	if err != nil {
		return explainAPIError(stepDomains, err)
	}
	fmt.Fprintf(out, "Custom Domain %s: attached (Cloudflare makes its DNS record and certificate)\n", cfg.CustomDomain)
	return nil
}

// routeDNSWarning says why a route may receive no traffic, or "": a
// route's host needs a proxied DNS record in the zone (a Custom Domain
// makes its own), and without one the check after the upload would wait a
// minute for nothing. A token that may not read DNS gets a reminder only.
func routeDNSWarning(ctx context.Context, client *cf.Client, cfg DeployConfig) string {
	host := strings.TrimPrefix(routeURL(cfg.Route), "https://")
	host, _, _ = strings.Cut(host, "/")
	if host == "" {
		return ""
	}
	page, err := client.DNS.Records.List(ctx, dns.RecordListParams{ZoneID: cf.F(cfg.ZoneID), Name: cf.F(dns.RecordListParamsName{Exact: cf.F(host)})})
	if err != nil {
		return fmt.Sprintf("could not read zone %s's DNS records (%v): make sure %s has a proxied DNS record, or the route receives no traffic", cfg.ZoneID, err, host)
	}
	for _, r := range page.Result {
		if strings.EqualFold(r.Name, host) && r.Proxied {
			return ""
		}
	}
	return fmt.Sprintf("%s has no proxied DNS record in zone %s: the route receives no traffic until it has one (a proxied AAAA record to 100:: is the usual placeholder), or use cloudflare.custom_domain, which makes its own", host, cfg.ZoneID)
}
