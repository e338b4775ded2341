package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/spf13/pflag"

	"github.com/dynamic-workers/gateway/internal/config"
	"github.com/dynamic-workers/gateway/internal/loader/cloudflare"
)

// deploy runs `gateway deploy [--dry-run] [--percentage N | --rollback-to VERSION] [--rotate-secret --secret-out FILE]`.
func deploy(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := pflag.NewFlagSet("deploy", pflag.ContinueOnError)
	fs.SetOutput(stderr)
	config.Flags(fs)
	dryRun := fs.Bool("dry-run", false, "print what would be uploaded and the route changes; change nothing")
	rotate := fs.Bool("rotate-secret", false, "give the shim a new signing secret, written where --secret-out says; it keeps accepting cloudflare.shim_secret (as SHIM_SECRET_PREVIOUS) until the next deploy")
	percentage := fs.Int("percentage", 100, "the share of traffic (1-100) the new version gets; the rest stays on the current version (a gradual rollout: deploy again with a larger share, or 100)")
	rollbackTo := fs.String("rollback-to", "", "deploy this earlier version id to 100% instead of uploading (the ids are in deploy's output)")
	secretOut := fs.String("secret-out", "", "with --rotate-secret: a new file (mode 0600) to write the new secret to, or - for stdout (which a CI job's log keeps)")
	cfg, err := config.Load(fs, args, getenv)
	if errors.Is(err, pflag.ErrHelp) {
		return nil
	}
	if err != nil {
		return err
	}
	configured := cfg.Cloudflare.ShimSecret.Value()
	secret, err := deploySecret(configured, secretSink{rotate: *rotate, out: *secretOut, stdout: stdout}, *dryRun)
	if err != nil {
		return err
	}
	previous := ""
	if *rotate {
		previous = configured // the shim keeps accepting it until the next deploy
	}
	return cloudflare.Deploy(ctx, cloudflare.DeployConfig{
		AccountID:      cfg.Cloudflare.AccountID,
		APIToken:       cfg.Cloudflare.APIToken.Value(),
		ScriptName:     cfg.Cloudflare.ScriptName,
		ShimSecret:     secret,
		PreviousSecret: previous,
		Route:          cfg.Cloudflare.Route,
		CustomDomain:   cfg.Cloudflare.CustomDomain,
		ZoneID:         cfg.Cloudflare.ZoneID,
		URL:            cfg.Cloudflare.URL,
		BaseURL:        cfg.Cloudflare.APIBaseURL,
		Percentage:     *percentage,
		RollbackTo:     *rollbackTo,
		VPCServices:    vpcServices(cfg),
	}, *dryRun, stdout)
}

// vpcServices are the capabilities reached on Cloudflare through a Workers
// VPC service, by name, with the service's id.
func vpcServices(cfg *config.Config) map[string]string {
	out := map[string]string{}
	for name, c := range cfg.Capabilities {
		if id := c.Cloudflare.VPCServiceID; id != "" {
			out[name] = id
		}
	}
	return out
}

// secretSink says whether deploy makes a new secret and where it goes:
// out names a new file, or "-" for stdout; only where asked, since stdout
// is often a CI job's log.
type secretSink struct {
	rotate bool
	out    string
	stdout io.Writer
}

// deploySecret is the secret to deploy: the configured one, or with rotate
// a new one, written once where sink says (never to a log), before anything
// is uploaded. Without either, deploying would break every gateway signing
// with the shim's old secret.
func deploySecret(configured string, sink secretSink, dryRun bool) (string, error) {
	if sink.out != "" && !sink.rotate {
		return "", errors.New("--secret-out goes with --rotate-secret")
	}
	if !sink.rotate {
		if configured == "" {
			return "", errors.New("cloudflare.shim_secret is not set: set it (GATEWAY_CLOUDFLARE_SHIM_SECRET) to the secret the gateways sign with, " +
				"or pass --rotate-secret to give the shim a new one (see docs/cloudflare.md, rotating the secret)")
		}
		return configured, nil
	}
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	secret := hex.EncodeToString(b[:])
	switch {
	case dryRun: // the secret is shown nowhere: it is never deployed
	case sink.out == "":
		return "", errors.New("--rotate-secret needs --secret-out FILE (a new file, mode 0600) or --secret-out - (stdout, which a CI job's log keeps): the new secret is shown nowhere else")
	case sink.out == "-":
		fmt.Fprintf(sink.stdout, "the shim gets a new secret. Configure it on every gateway (shown once), then deploy again with it to retire the old one:\n\n  GATEWAY_CLOUDFLARE_SHIM_SECRET=%s\n\n", secret)
	default:
		f, err := os.OpenFile(sink.out, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return "", fmt.Errorf("--secret-out: %w (it must be a new file)", err)
		}
		_, err = fmt.Fprintf(f, "GATEWAY_CLOUDFLARE_SHIM_SECRET=%s\n", secret)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return "", fmt.Errorf("--secret-out: %w", err)
		}
		fmt.Fprintf(sink.stdout, "the shim gets a new secret, written to %s: configure it on every gateway, then deploy again with it to retire the old one\n", sink.out)
	}
	return secret, nil
}
