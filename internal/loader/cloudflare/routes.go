package cloudflare

import (
	"context"
	"errors"
	"fmt"
	"strings"

	cf "github.com/cloudflare/cloudflare-go/v4"
	"github.com/cloudflare/cloudflare-go/v4/workers"
)

// routeAction is what deploy does to the zone's route for the shim.
type routeAction int

const (
	routeAdd  routeAction = iota // no route has the pattern: add one
	routeKeep                    // the route serves the shim already
)

// routePlan is the route change deploy makes, read from the zone's routes:
// the route for cloudflare.route, and the routes to the shim left from an
// earlier cloudflare.route, which are removed.
type routePlan struct {
	action routeAction
	stale  []workers.RouteListResponse
}

// describe says what the change is, done or (future) to be done.
func (p routePlan) describe(future bool) string {
	var s string
	switch {
	case p.action == routeKeep:
		s = "unchanged (it serves the shim already)"
	case future:
		s = "would add it"
	default:
		s = "added"
	}
	for _, r := range p.stale {
		if future {
			s += "; would remove the shim's old route " + r.Pattern
		} else {
			s += "; removed the shim's old route " + r.Pattern
		}
	}
	return s
}

// planRoute reads the zone's routes and decides, as wrangler does, to add
// the route only if no route has its pattern. A route with the pattern
// that serves another Worker, or none (a route kept on purpose to serve no
// Worker), is an error: taking it could break what it was made for; as
// wrangler, deploy refuses. Routes of the zone that serve the shim under
// another pattern are left from an earlier cloudflare.route: stale.
func planRoute(ctx context.Context, client *cf.Client, cfg DeployConfig) (routePlan, error) {
	var p routePlan
	pager := client.Workers.Routes.ListAutoPaging(ctx, workers.RouteListParams{ZoneID: cf.F(cfg.ZoneID)})
	for pager.Next() {
		r := pager.Current()
		switch {
		case r.Pattern != cfg.Route && r.Script == cfg.ScriptName:
			p.stale = append(p.stale, r)
		case r.Pattern != cfg.Route:
		case r.Script == cfg.ScriptName:
			p.action = routeKeep
		case r.Script == "":
			return routePlan{}, fmt.Errorf("route %s in zone %s exists and serves no Worker (requests to it go to the origin): remove it, or point it at %q yourself, or pick another cloudflare.route",
				cfg.Route, cfg.ZoneID, cfg.ScriptName)
		default:
			return routePlan{}, fmt.Errorf("route %s in zone %s serves the Worker %q, not %q: remove that route or pick another cloudflare.route",
				cfg.Route, cfg.ZoneID, r.Script, cfg.ScriptName)
		}
	}
	if err := pager.Err(); err != nil {
		return routePlan{}, explainAPIError(stepListRoutes, err)
	}
	return p, nil
}

// applyRoute makes the change p plans: the new route first, then the stale
// ones removed, so the shim is never without one. A 409 (10020) on adding
// means a route with the pattern appeared since the list: it is planned
// again.
func applyRoute(ctx context.Context, client *cf.Client, cfg DeployConfig, p routePlan) error {
	if p.action == routeAdd {
		_, err := client.Workers.Routes.New(ctx, workers.RouteNewParams{
			ZoneID: cf.F(cfg.ZoneID), Pattern: cf.F(cfg.Route), Script: cf.F(cfg.ScriptName),
		})
		if hasCode(err, codeRouteExists) {
			again, perr := planRoute(ctx, client, cfg)
			if perr != nil {
				return perr
			}
			if again.action != routeAdd {
				return applyRoute(ctx, client, cfg, again)
			}
		}
		if err != nil {
			return explainAPIError(stepChangeRoutes, err)
		}
	}
	for _, r := range p.stale {
		if _, err := client.Workers.Routes.Delete(ctx, r.ID, workers.RouteDeleteParams{ZoneID: cf.F(cfg.ZoneID)}); err != nil && !hasCode(err, codeRouteNotFound) {
			return explainAPIError(stepChangeRoutes, err)
		}
	}
	return nil
}

// devEnabled reads whether the script is served on workers.dev; a script
// not uploaded yet (10007) is not.
func devEnabled(ctx context.Context, client *cf.Client, cfg DeployConfig) (bool, error) {
	st, err := client.Workers.Scripts.Subdomain.Get(ctx, cfg.ScriptName, workers.ScriptSubdomainGetParams{AccountID: cf.F(cfg.AccountID)})
	if hasCode(err, codeNotFound) {
		return false, nil
	}
	if err != nil {
		return false, explainAPIError(stepDevState, err)
	}
	return st.Enabled, nil
}

// setDev turns the script's workers.dev route on or off, only if it is not
// so already.
func setDev(ctx context.Context, client *cf.Client, cfg DeployConfig, on bool) (changed bool, err error) {
	now, err := devEnabled(ctx, client, cfg)
	if err != nil || now == on {
		return false, err
	}
	_, err = client.Workers.Scripts.Subdomain.New(ctx, cfg.ScriptName, workers.ScriptSubdomainNewParams{
		AccountID: cf.F(cfg.AccountID), Enabled: cf.F(on),
	})
	if err != nil {
		return false, explainAPIError(stepDevToggle, err)
	}
	return true, nil
}

// routeURL is the shim's URL on a route pattern: "shim.example.com/*" is
// https://shim.example.com, "example.com/shim/*" https://example.com/shim.
// A pattern whose host starts with a wildcard names no one host: "".
func routeURL(pattern string) string {
	p := strings.TrimPrefix(strings.TrimPrefix(pattern, "https://"), "http://")
	if strings.HasPrefix(p, "*") {
		return ""
	}
	p = strings.TrimRight(strings.TrimSuffix(p, "*"), "/")
	return "https://" + p
}

// checkRoute refuses patterns the shim cannot be served on: it needs /run
// and /verify under the route's path, so the pattern must end in "*".
func checkRoute(pattern string) error {
	if !strings.HasSuffix(pattern, "*") {
		return errors.New("cloudflare.route " + pattern + " matches only that one path; the shim serves /run and /verify under it: end it in /* (" + strings.TrimRight(pattern, "/") + "/*)")
	}
	host, _, _ := strings.Cut(strings.TrimPrefix(strings.TrimPrefix(pattern, "https://"), "http://"), "/")
	if host == "" || strings.Contains(strings.TrimPrefix(host, "*"), "*") {
		return errors.New("cloudflare.route " + pattern + " has no host: write it as host/path/* (shim.example.com/*)")
	}
	return nil
}
