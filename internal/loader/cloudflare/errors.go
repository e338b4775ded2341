package cloudflare

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	cf "github.com/cloudflare/cloudflare-go/v4"
)

// step is one thing deploy asks of the Cloudflare API, and the token
// permission it needs.
type step struct {
	what, permission string
}

const (
	permScripts = "Account · Workers Scripts · Edit"
	permRoutes  = "Zone · Workers Routes · Edit, on the route's zone"
	permDomains = "Zone · Workers Routes · Edit and Zone · DNS · Edit, on the domain's zone"
)

var (
	stepSubdomain    = step{"read the account's workers.dev subdomain", permScripts}
	stepUpload       = step{"upload the shim", permScripts}
	stepDevState     = step{"read whether the shim is on workers.dev", permScripts}
	stepDevToggle    = step{"change the shim's workers.dev route", permScripts}
	stepListRoutes   = step{"list the zone's Worker routes", permRoutes}
	stepChangeRoutes = step{"add the route", permRoutes}
	stepDeployments  = step{"read the shim's deployments", permScripts}
	stepVersion      = step{"upload a version of the shim", permScripts}
	stepDeploy       = step{"deploy the shim's version", permScripts}
	stepDomains      = step{"read or attach the shim's Custom Domain", permDomains}
)

// Cloudflare API error codes deploy acts on.
const (
	codeNotFound       = 10007 // a missing script, or no workers.dev subdomain
	codeRouteExists    = 10020 // a route with the same pattern exists
	codeRouteNotFound  = 10005 // the route is gone
	codeValidation     = 10021 // the upload did not validate
	codeNoSubdomain    = 10063 // the account has no workers.dev subdomain
	codeDynamicWorkers = 10195 // the plan has no Dynamic Workers
)

// hasCode reports whether err is an API error carrying code.
func hasCode(err error, code int64) bool {
	var apiErr *cf.Error
	if !errors.As(err, &apiErr) {
		return false
	}
	for _, e := range apiErr.Errors {
		if e.Code == code {
			return true
		}
	}
	return false
}

// explainAPIError turns a failure of s into what a person can do about it.
func explainAPIError(s step, err error) error {
	var apiErr *cf.Error
	if !errors.As(err, &apiErr) {
		return fmt.Errorf("%s: %w", s.what, err)
	}
	if hint := explainCode(s, apiErr); hint != "" {
		return fmt.Errorf("%s: %s", s.what, hint)
	}
	status, msgs := apiErr.StatusCode, apiMessages(apiErr)
	switch {
	case status == http.StatusUnauthorized || hasCode(err, 6003) || hasCode(err, 9109):
		return fmt.Errorf("%s: Cloudflare refused the API token (%d: %s): check CLOUDFLARE_API_TOKEN", s.what, status, msgs)
	case status == http.StatusForbidden:
		return fmt.Errorf("%s: Cloudflare answered 403 (%s): the API token lacks the permission %s", s.what, msgs, s.permission)
	case status == http.StatusTooManyRequests:
		return fmt.Errorf("%s: Cloudflare is rate-limiting this token (429: %s); try again %s", s.what, msgs, retryAfter(apiErr))
	case status >= 500:
		return fmt.Errorf("%s: the Cloudflare API failed (%d: %s); nothing is wrong with the request, try again later", s.what, status, msgs)
	}
	return fmt.Errorf("%s: Cloudflare answered %d: %s", s.what, status, msgs)
}

// explainCode maps the codes with a known remedy; "" for the others.
func explainCode(s step, apiErr *cf.Error) string {
	for _, e := range apiErr.Errors {
		switch {
		case e.Code == codeDynamicWorkers,
			e.Code == codeValidation && strings.Contains(strings.ToLower(e.Message), "worker_loader"):
			return fmt.Sprintf("the account cannot use Dynamic Workers (code %d: %s). "+
				"The shim's worker_loader binding needs the Workers Paid plan: upgrade it in the dashboard "+
				"(Workers & Pages, Plans), then deploy again", e.Code, e.Message)
		case e.Code == codeValidation:
			return fmt.Sprintf("Cloudflare did not accept the shim (code 10021), and says:\n%s", e.Message)
		case e.Code == codeNoSubdomain, e.Code == codeNotFound && s == stepSubdomain:
			return fmt.Sprintf("the account has no workers.dev subdomain (code %d: %s). "+
				"Make one in the dashboard (Workers & Pages: the workers.dev subdomain, Change/Set up) "+
				"or with the API: PUT accounts/<account>/workers/subdomain {\"subdomain\":\"<name>\"}; "+
				"or serve the shim on a route of your zone (cloudflare.route)", e.Code, e.Message)
		}
	}
	return ""
}

// retryAfter says when Cloudflare asks to be called again.
func retryAfter(e *cf.Error) string {
	if e.Response != nil {
		if v := e.Response.Header.Get("Retry-After"); v != "" {
			if _, err := strconv.Atoi(v); err == nil {
				v += " s"
			}
			return "after " + v + " (Cloudflare's Retry-After)"
		}
	}
	return "in a minute"
}

func apiMessages(e *cf.Error) string {
	if len(e.Errors) == 0 {
		return "no details"
	}
	var parts []string
	for _, d := range e.Errors {
		parts = append(parts, fmt.Sprintf("%s [code: %d]", d.Message, d.Code))
	}
	return strings.Join(parts, "; ")
}
