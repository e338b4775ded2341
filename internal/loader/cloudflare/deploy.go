package cloudflare

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"strings"

	cf "github.com/cloudflare/cloudflare-go/v4"
	"github.com/cloudflare/cloudflare-go/v4/option"
	"github.com/cloudflare/cloudflare-go/v4/workers"

	"github.com/dynamic-workers/gateway/internal/redact"
	"github.com/dynamic-workers/gateway/worker"
)

// DeployConfig says where and how to deploy the shim to Cloudflare.
type DeployConfig struct {
	AccountID  string
	APIToken   string
	ScriptName string
	ShimSecret string // the secret the gateway signs its calls with
	// Route, if set, serves the shim on a zone's route ("shim.example.com/*")
	// instead of the account's workers.dev subdomain.
	Route      string
	ZoneID     string
	BaseURL    string // the Cloudflare API; empty for the real one
	MaxRetries int    // retries of failed API calls; negative for none
}

// workerLoaderBinding is the binding type of env.LOADER. cloudflare-go v4
// has no constant for it; the string marshals as the API expects.
const workerLoaderBinding = workers.ScriptUpdateParamsMetadataBindingsType("worker_loader")

// upload is the multipart body of a module Worker upload.
type upload struct {
	body        []byte
	contentType string
	metadata    workers.ScriptUpdateParamsMetadata
	parts       []uploadPart
}

type uploadPart struct {
	Name        string
	ContentType string
	Size        int
}

// buildUpload assembles the shim's upload: a metadata part (main module,
// compatibility date, the LOADER and SHIM_SECRET bindings) and one part per
// module. cloudflare-go v4.6.0's Scripts.Update sends JSON only, so the
// multipart body is built here and passed with option.WithRequestBody.
func buildUpload(secret string) (*upload, error) {
	date, err := worker.CompatibilityDate()
	if err != nil {
		return nil, err
	}
	u := &upload{metadata: workers.ScriptUpdateParamsMetadata{
		MainModule:        cf.F(worker.Modules[0].Name),
		CompatibilityDate: cf.F(date),
		Bindings: cf.F([]workers.ScriptUpdateParamsMetadataBindingUnion{
			workers.ScriptUpdateParamsMetadataBinding{
				Name: cf.F("LOADER"),
				Type: cf.F(workerLoaderBinding),
			},
			workers.ScriptUpdateParamsMetadataBinding{
				Name: cf.F("SHIM_SECRET"),
				Type: cf.F(workers.ScriptUpdateParamsMetadataBindingsTypeSecretText),
				Text: cf.F(secret),
			},
		}),
	}}
	meta, err := u.metadata.MarshalJSON()
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	if err := writePart(mw, "metadata", "", "application/json", meta); err != nil {
		return nil, err
	}
	for _, m := range worker.Modules {
		data, err := worker.Files.ReadFile(m.Path)
		if err != nil {
			return nil, err
		}
		ct := uploadContentType(m.Kind)
		if err := writePart(mw, m.Name, m.Name, ct, data); err != nil {
			return nil, err
		}
		u.parts = append(u.parts, uploadPart{Name: m.Name, ContentType: ct, Size: len(data)})
	}
	if err := mw.Close(); err != nil {
		return nil, err
	}
	u.body = buf.Bytes()
	u.contentType = mw.FormDataContentType()
	return u, nil
}

// uploadContentType is the part content type that makes the Workers upload
// API load a module of kind k as the shim expects it.
func uploadContentType(k worker.ModuleKind) string {
	switch k {
	case worker.ModuleText:
		return "text/plain"
	case worker.ModuleJSON:
		return "application/json"
	default:
		return "application/javascript+module"
	}
}

func writePart(mw *multipart.Writer, name, filename, contentType string, data []byte) error {
	h := textproto.MIMEHeader{}
	disposition := fmt.Sprintf(`form-data; name=%q`, name)
	if filename != "" {
		disposition += fmt.Sprintf(`; filename=%q`, filename)
	}
	h.Set("Content-Disposition", disposition)
	h.Set("Content-Type", contentType)
	w, err := mw.CreatePart(h)
	if err != nil {
		return err
	}
	_, err = w.Write(data)
	return err
}

// Deploy uploads the shim as a Worker with the Cloudflare API and makes it
// reachable (workers.dev, or a route), writing what it does to out. With
// dryRun it only prints what it would upload, the secret masked.
func Deploy(ctx context.Context, cfg DeployConfig, dryRun bool, out io.Writer) error {
	if err := cfg.validate(dryRun); err != nil {
		return err
	}
	up, err := buildUpload(cfg.ShimSecret)
	if err != nil {
		return err
	}
	if dryRun {
		return printPlan(cfg, up, out)
	}
	opts := []option.RequestOption{option.WithAPIToken(cfg.APIToken)}
	if cfg.BaseURL != "" {
		opts = append(opts, option.WithBaseURL(cfg.BaseURL))
	}
	if cfg.MaxRetries != 0 {
		opts = append(opts, option.WithMaxRetries(max(cfg.MaxRetries, 0)))
	}
	client := cf.NewClient(opts...)

	_, err = client.Workers.Scripts.Update(ctx, cfg.ScriptName,
		workers.ScriptUpdateParams{AccountID: cf.F(cfg.AccountID)},
		option.WithRequestBody(up.contentType, up.body))
	if err != nil {
		return explainAPIError("upload the shim", err)
	}
	fmt.Fprintf(out, "uploaded Worker %q (%d modules, bindings LOADER and SHIM_SECRET)\n", cfg.ScriptName, len(up.parts))

	if cfg.Route != "" {
		_, err = client.Workers.Routes.New(ctx, workers.RouteNewParams{
			ZoneID:  cf.F(cfg.ZoneID),
			Pattern: cf.F(cfg.Route),
			Script:  cf.F(cfg.ScriptName),
		})
		if err != nil {
			return explainAPIError("add the route", err)
		}
		fmt.Fprintf(out, "route %s serves it; set cloudflare.url to https://%s\n", cfg.Route, strings.TrimSuffix(strings.TrimSuffix(cfg.Route, "*"), "/"))
		return nil
	}
	_, err = client.Workers.Scripts.Subdomain.New(ctx, cfg.ScriptName, workers.ScriptSubdomainNewParams{
		AccountID: cf.F(cfg.AccountID),
		Enabled:   cf.F(true),
	})
	if err != nil {
		return explainAPIError("enable its workers.dev route", err)
	}
	sub, err := client.Workers.Subdomains.Get(ctx, workers.SubdomainGetParams{AccountID: cf.F(cfg.AccountID)})
	if err != nil {
		return explainAPIError("read the account's workers.dev subdomain", err)
	}
	fmt.Fprintf(out, "enabled on workers.dev; set cloudflare.url to https://%s.%s.workers.dev\n", cfg.ScriptName, sub.Subdomain)
	return nil
}

func (cfg DeployConfig) validate(dryRun bool) error {
	var errs []error
	if cfg.ScriptName == "" {
		errs = append(errs, errors.New("cloudflare.script_name is empty"))
	}
	if len(cfg.ShimSecret) < 32 {
		errs = append(errs, errors.New("cloudflare.shim_secret must be at least 32 characters (the gateway signs its calls with it)"))
	}
	if cfg.Route != "" && cfg.ZoneID == "" {
		errs = append(errs, errors.New("cloudflare.route needs cloudflare.zone_id"))
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

func printPlan(cfg DeployConfig, up *upload, out io.Writer) error {
	masked := up.metadata
	masked.Bindings = cf.F([]workers.ScriptUpdateParamsMetadataBindingUnion{
		workers.ScriptUpdateParamsMetadataBinding{Name: cf.F("LOADER"), Type: cf.F(workerLoaderBinding)},
		workers.ScriptUpdateParamsMetadataBinding{
			Name: cf.F("SHIM_SECRET"),
			Type: cf.F(workers.ScriptUpdateParamsMetadataBindingsTypeSecretText),
			Text: cf.F(redact.Text),
		},
	})
	meta, err := masked.MarshalJSON()
	if err != nil {
		return err
	}
	var pretty bytes.Buffer
	_ = json.Indent(&pretty, meta, "  ", "  ")
	target := "the account's workers.dev subdomain"
	if cfg.Route != "" {
		target = "route " + cfg.Route + " in zone " + cfg.ZoneID
	}
	fmt.Fprintf(out, "dry run: would PUT accounts/%s/workers/scripts/%s as multipart/form-data:\n  metadata:\n  %s\n", orUnset(cfg.AccountID), cfg.ScriptName, pretty.String())
	for _, p := range up.parts {
		fmt.Fprintf(out, "  %-24s %-30s %6d bytes\n", p.Name, p.ContentType, p.Size)
	}
	fmt.Fprintf(out, "then serve it on %s.\n", target)
	return nil
}

func orUnset(s string) string {
	if s == "" {
		return "(CLOUDFLARE_ACCOUNT_ID unset)"
	}
	return s
}

// explainAPIError turns the Cloudflare API's failures into what to do.
func explainAPIError(action string, err error) error {
	var apiErr *cf.Error
	if !errors.As(err, &apiErr) {
		return fmt.Errorf("%s: %w", action, err)
	}
	for _, e := range apiErr.Errors {
		if e.Code == 10021 { // "binding LOADER of type worker_loader is invalid"
			return fmt.Errorf("%s: Cloudflare refused the worker_loader binding (code 10021: %s). "+
				"The account is not enabled for Worker Loaders (Dynamic Workers), which need a Workers Paid plan: "+
				"upgrade the plan or ask for access, then deploy again", action, e.Message)
		}
	}
	switch {
	case apiErr.StatusCode == http.StatusUnauthorized || apiErr.StatusCode == http.StatusForbidden:
		return fmt.Errorf("%s: Cloudflare answered %d (%s): check CLOUDFLARE_API_TOKEN, and that it may edit Workers scripts of this account (permission Account > Workers Scripts > Edit)",
			action, apiErr.StatusCode, apiMessages(apiErr))
	case apiErr.StatusCode >= 500:
		return fmt.Errorf("%s: the Cloudflare API failed (%d: %s); nothing is wrong with the request, try again later", action, apiErr.StatusCode, apiMessages(apiErr))
	}
	return fmt.Errorf("%s: Cloudflare answered %d: %s", action, apiErr.StatusCode, apiMessages(apiErr))
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
