package cloudflare

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"

	cf "github.com/cloudflare/cloudflare-go/v4"
	"github.com/cloudflare/cloudflare-go/v4/option"
	"github.com/cloudflare/cloudflare-go/v4/workers"
)

// rollout is the shim's deployment as deploy found it.
type rollout struct {
	exists  bool     // the script has a deployment
	current []target // its versions and their shares
}

// target is one version of a deployment and its share of the traffic.
type target struct {
	id      string
	percent float64
}

// readRollout reads the script's current deployment; a script not uploaded
// yet (10007) has none.
func readRollout(ctx context.Context, client *cf.Client, cfg DeployConfig) (rollout, error) {
	d, err := client.Workers.Scripts.Deployments.Get(ctx, cfg.ScriptName, workers.ScriptDeploymentGetParams{AccountID: cf.F(cfg.AccountID)})
	if hasCode(err, codeNotFound) {
		return rollout{}, nil
	}
	if err != nil {
		return rollout{}, explainAPIError(stepDeployments, err)
	}
	if len(d.Deployments) == 0 {
		return rollout{}, nil
	}
	ro := rollout{exists: true}
	for _, v := range d.Deployments[0].Versions {
		ro.current = append(ro.current, target{id: v.VersionID, percent: v.Percentage})
	}
	return ro, nil
}

// gradual reports whether the current deployment splits traffic.
func (ro rollout) gradual() bool { return len(ro.current) > 1 }

func (ro rollout) String() string {
	var parts []string
	for _, t := range ro.current {
		parts = append(parts, fmt.Sprintf("%s %g%%", t.id, t.percent))
	}
	return strings.Join(parts, ", ")
}

// stable is the version with the largest share, which keeps the rest of
// the traffic in a percentage rollout.
func (ro rollout) stable() string {
	best := target{}
	for _, t := range ro.current {
		if t.percent > best.percent {
			best = t
		}
	}
	return best.id
}

// checkRollout refuses options that cannot apply to the deployment found.
func checkRollout(cfg DeployConfig, ro rollout) error {
	switch {
	case cfg.RollbackTo != "" && !ro.exists:
		return fmt.Errorf("--rollback-to %s: the Worker %q has no deployment to roll back", cfg.RollbackTo, cfg.ScriptName)
	case cfg.percentage() < 100 && !ro.exists:
		return fmt.Errorf("--percentage %d: the Worker %q has no deployed version to share the traffic with; deploy it at 100%% first", cfg.Percentage, cfg.ScriptName)
	}
	return nil
}

// ship makes the new deployment and returns the version it checks: a
// rollback deploys RollbackTo to 100%; a first deploy uploads the script (a
// version deployed at once); otherwise a version is uploaded and deployed at
// cfg.percentage(), the rest staying on the current stable version. A
// version upload leaves the script's settings (observability, logpush,
// tail consumers) as the operator set them.
func ship(ctx context.Context, client *cf.Client, cfg DeployConfig, up *upload, ro rollout, out io.Writer) (string, error) {
	if ro.gradual() {
		fmt.Fprintf(out, "warning: the shim is in a gradual rollout (%s); this deploy replaces it\n", ro)
	}
	if cfg.RollbackTo != "" {
		return cfg.RollbackTo, deployVersions(ctx, client, cfg, []target{{cfg.RollbackTo, 100}}, out)
	}
	if !ro.exists {
		_, err := client.Workers.Scripts.Update(ctx, cfg.ScriptName,
			workers.ScriptUpdateParams{AccountID: cf.F(cfg.AccountID)},
			option.WithRequestBody(up.contentType, up.body))
		if err != nil {
			return "", explainAPIError(stepUpload, err)
		}
		now, err := readRollout(ctx, client, cfg)
		if err != nil || len(now.current) != 1 {
			return "", errors.Join(err, fmt.Errorf("the new Worker %q has no single deployed version (%s)", cfg.ScriptName, now))
		}
		fmt.Fprintf(out, "uploaded Worker %q (%d modules, bindings %s), version %s, deployed to 100%%\n", cfg.ScriptName, len(up.parts), bindingNames(cfg), now.current[0].id)
		return now.current[0].id, nil
	}
	v, err := client.Workers.Scripts.Versions.New(ctx, cfg.ScriptName,
		workers.ScriptVersionNewParams{AccountID: cf.F(cfg.AccountID)},
		option.WithRequestBody(up.contentType, up.body))
	if err != nil {
		return "", explainAPIError(stepVersion, err)
	}
	fmt.Fprintf(out, "uploaded version %s of Worker %q (%d modules, bindings %s)\n", v.ID, cfg.ScriptName, len(up.parts), bindingNames(cfg))
	targets := []target{{v.ID, float64(cfg.percentage())}}
	if p := cfg.percentage(); p < 100 {
		targets = append(targets, target{ro.stable(), float64(100 - p)})
	}
	return v.ID, deployVersions(ctx, client, cfg, targets, out)
}

// deployVersions makes a deployment of targets.
func deployVersions(ctx context.Context, client *cf.Client, cfg DeployConfig, targets []target, out io.Writer) error {
	var versions []workers.ScriptDeploymentNewParamsVersion
	for _, t := range targets {
		versions = append(versions, workers.ScriptDeploymentNewParamsVersion{VersionID: cf.F(t.id), Percentage: cf.F(t.percent)})
	}
	_, err := client.Workers.Scripts.Deployments.New(ctx, cfg.ScriptName, workers.ScriptDeploymentNewParams{
		AccountID:   cf.F(cfg.AccountID),
		Strategy:    cf.F(workers.ScriptDeploymentNewParamsStrategyPercentage),
		Versions:    cf.F(versions),
		Annotations: cf.F(workers.DeploymentParam{WorkersMessage: cf.F("gateway deploy")}),
	})
	if err != nil {
		return explainAPIError(stepDeploy, err)
	}
	fmt.Fprintf(out, "deployed %s\n", rollout{exists: true, current: targets})
	return nil
}

func bindingNames(cfg DeployConfig) string {
	names := []string{"LOADER", "CF_VERSION_METADATA", "SHIM_SECRET"}
	if cfg.PreviousSecret != "" {
		names = append(names, "SHIM_SECRET_PREVIOUS")
	}
	for _, name := range slices.Sorted(maps.Keys(cfg.VPCServices)) {
		names = append(names, VPCBinding(name))
	}
	return strings.Join(names[:len(names)-1], ", ") + " and " + names[len(names)-1]
}

// percentage is the share of traffic the new version gets: 100 unless set.
func (cfg DeployConfig) percentage() int {
	if cfg.Percentage == 0 {
		return 100
	}
	return cfg.Percentage
}
