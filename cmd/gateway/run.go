package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/rs/zerolog"
	"github.com/spf13/pflag"

	gateway "github.com/dynamic-workers/gateway"
	"github.com/dynamic-workers/gateway/execution"
	"github.com/dynamic-workers/gateway/internal/api"
	"github.com/dynamic-workers/gateway/internal/auth"
	"github.com/dynamic-workers/gateway/internal/config"
	"github.com/dynamic-workers/gateway/internal/executions"
	"github.com/dynamic-workers/gateway/internal/loader/cloudflare"
	"github.com/dynamic-workers/gateway/internal/loader/local"
	"github.com/dynamic-workers/gateway/internal/metrics"
	"github.com/dynamic-workers/gateway/internal/packages"
	"github.com/dynamic-workers/gateway/internal/store"
)

const usage = `usage: gateway <command> [flags]

commands:
  serve             run the HTTP server
  keys new NAME     make an API key; prints the key (give it to its user) and
                    the hash to configure as auth.keys.NAME
  deploy            upload the shim to Cloudflare (--dry-run: print the plan;
                    --rotate-secret: make a new shim secret); reads cloudflare.*
                    settings and CLOUDFLARE_API_TOKEN, CLOUDFLARE_ACCOUNT_ID
  healthcheck URL   exit 0 if GET URL answers 200 (the container's HEALTHCHECK)
  exec [FILE|-]     run Worker code through a gateway, printing its output live;
                    exit 1: the guest failed, 2: usage, 3: gateway error
                    (see "gateway exec --help")
  mcp               serve MCP over stdin and stdout, in front of a gateway
                    (--url) or on the embedded runtime (see "gateway mcp --help")
  version           print the gateway's version
  scripts push NAME DIR | list | show NAME | rm NAME
                    the gateway's stored scripts (see "gateway scripts help")
  help              show this help

Run "gateway serve --help" for the server's flags.
`

// run is the whole program; main only supplies its context and environment.
func run(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return errors.New("no command given")
	}
	switch args[0] {
	case "serve":
		return serve(ctx, args[1:], getenv, stdout, stderr)
	case "keys":
		return keysCommand(args[1:], stdout)
	case "deploy":
		return deploy(ctx, args[1:], getenv, stdout, stderr)
	case "healthcheck":
		return healthcheck(ctx, args[1:])
	case "exec":
		return execCommand(ctx, args[1:], getenv, stdin, stdout, stderr)
	case "mcp":
		return mcpCommand(ctx, args[1:], getenv, stdin, stdout, stderr)
	case "version", "--version":
		fmt.Fprintln(stdout, version)
		return nil
	case "scripts":
		return scriptsCommand(ctx, args[1:], getenv, stdout, stderr)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	default:
		fmt.Fprint(stderr, usage)
		return fmt.Errorf("unknown command %q", args[0])
	}
}

func serve(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := pflag.NewFlagSet("serve", pflag.ContinueOnError)
	fs.SetOutput(stderr)
	config.Flags(fs)
	cfg, err := config.Load(fs, args, getenv)
	if errors.Is(err, pflag.ErrHelp) {
		return nil
	}
	if err != nil {
		return err
	}
	level, _ := zerolog.ParseLevel(cfg.Log.Level)
	log := zerolog.New(stdout).Level(level).With().Timestamp().Logger()

	own, err := ownAddresses(ctx, cfg.Listen)
	if err != nil {
		return err
	}
	// Listen before anything starts, so a port in use stops the gateway
	// with that error alone, not with the teardown of a started service.
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return err
	}
	defer ln.Close()
	tr, err := startTracing(ctx, getenv, log)
	if err != nil {
		return err
	}
	defer stopTracing(tr, log)
	m := metrics.New()
	backend, runtime, err := newBackend(ctx, cfg, own, log, m)
	if err != nil {
		return err
	}
	defer backend.Close()

	st, err := openStore(ctx, cfg, log)
	if err != nil {
		return err
	}
	if st != nil {
		defer st.Close()
	}
	front := apiOptions(cfg, m)
	front.Tracing = tr
	opts := serviceOptions(cfg, own, m, log, backend, st, front.Keys)
	opts.Tracer = tr.Tracer()
	if opts.Packages, err = packageManager(cfg, m); err != nil {
		return err
	}
	if opts.Packages != nil && !cfg.Packages.Offline {
		if err := opts.Packages.NPMPresent(); err != nil {
			log.Warn().Msg(err.Error() + ": requests with dependencies get 503 dependency_unavailable (install npm, or set packages.enabled=false to refuse them with 422)")
		}
	}
	svc := executions.New(opts)
	svc.Start()
	handler := api.NewHandler(log, svc, front)
	srv := &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: cfg.HTTP.ReadHeaderTimeout,
		ReadTimeout:       cfg.HTTP.ReadTimeout,
		IdleTimeout:       cfg.HTTP.IdleTimeout,
		MaxHeaderBytes:    cfg.HTTP.MaxHeaderBytes,
		// No WriteTimeout: the API bounds each write (http.write_timeout)
		// and each execution's whole answer (http.max_request_lifetime).
	}
	// One line with everything that decides behaviour (secrets redacted by
	// config.Secret; keys appear as names and hashes only).
	log.Info().
		Str("listen", ln.Addr().String()).
		Str("version", version).
		Str("backend", cfg.Backend).
		Str("runtime", runtime).
		Str("compatibility_date", cfg.Execution.CompatibilityDate).
		Str("tracing", tracingDescription(tr)).
		Interface("config", cfg.Effective).
		Msg("gateway listening")
	for _, w := range cfg.BackendWarnings() {
		log.Warn().Msg(w)
	}

	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	select {
	case err := <-served:
		return err
	case <-ctx.Done():
	}
	stop(svc, srv, cfg, log)
	return nil
}

// healthcheck probes a URL for the container's HEALTHCHECK, which has no curl.
func healthcheck(ctx context.Context, args []string) error {
	if len(args) != 1 {
		return errors.New("usage: gateway healthcheck URL")
	}
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, args[0], nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s answered %s", args[0], resp.Status)
	}
	return nil
}

// keysUsage is the help of `gateway keys`.
const keysUsage = `usage: gateway keys new NAME

Makes an API key named NAME (lower case letters, digits, '.', '_' and '-',
up to 64) and prints it with the hash to configure as auth.keys.NAME.hash;
the gateway keeps only the hash. A key's scope (auth.keys.NAME.scope) says
what it may do: "execute" (the default) or "metrics" (only GET /metrics).
`

// keysCommand runs `gateway keys new NAME`.
func keysCommand(args []string, stdout io.Writer) error {
	if len(args) == 1 && (args[0] == "--help" || args[0] == "-h" || args[0] == "help") {
		fmt.Fprint(stdout, keysUsage)
		return nil
	}
	if len(args) != 2 || args[0] != "new" {
		return errors.New("usage: gateway keys new NAME (see gateway keys --help)")
	}
	name := args[1]
	if err := auth.ValidName(name); err != nil {
		return err
	}
	key, hash, err := auth.Generate()
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, `API key for %[1]q (shown once; give it to its user, store it as a secret):

  %[2]s

Configure its hash (not the key) in the gateway, in the config file:

  auth:
    keys:
      %[1]s:
        hash: %[3]s

or in the environment (comma-separate several keys):

  GATEWAY_AUTH_KEYS=%[1]s=%[3]s

Clients send: Authorization: Bearer <key>
`, name, key, hash)
	return nil
}

// newBackend starts the configured backend and describes it for the log.
func newBackend(ctx context.Context, cfg *config.Config, own []string, log zerolog.Logger, m *metrics.Metrics) (execution.Backend, string, error) {
	if cfg.Backend == "cloudflare" {
		b, err := cloudflare.New(cloudflare.Config{
			URL:           cfg.Cloudflare.URL,
			Secret:        cfg.Cloudflare.ShimSecret.Value(),
			MaxEventBytes: maxEventBytes(cfg),
			MaxTimeout:    cfg.Execution.MaxTimeout,
		}, log)
		return b, cfg.Cloudflare.URL, err
	}
	workerd, err := local.FindWorkerd(cfg.Runtime.Workerd)
	if err != nil {
		return nil, "", err
	}
	workerdVersion, err := local.WorkerdVersion(ctx, workerd)
	if err != nil {
		return nil, "", err
	}
	b, err := local.New(local.Config{
		Workerd:          workerd,
		DenyAddresses:    own,
		CapabilityURLs:   capabilityURLs(cfg),
		VPCCapabilities:  vpcCapabilities(cfg),
		Processes:        cfg.Runtime.Processes,
		MaxConcurrency:   cfg.MaxConcurrency(),
		MaxStarting:      cfg.Runtime.MaxStarting,
		QueueSize:        cfg.QueueSize(),
		QueueTimeout:     cfg.Runtime.QueueTimeout,
		StartTimeout:     cfg.Runtime.StartTimeout,
		ProbeInterval:    cfg.Runtime.ProbeInterval,
		RecycleAfter:     cfg.Runtime.RecycleAfter,
		RecycleRSS:       int64(cfg.Runtime.RecycleRSSMB) << 20,
		DrainTimeout:     cfg.Runtime.DrainTimeout,
		V8HeapMB:         cfg.Runtime.V8HeapMB,
		ReuseKeys:        cfg.Runtime.ReuseKeys,
		Spare:            cfg.Runtime.Spare,
		MaxEventBytes:    maxEventBytes(cfg),
		OnReplace:        m.RuntimeEvent,
		OnLogDropped:     m.RuntimeLogLinesDropped,
		MemoryLimit:      int64(cfg.MemoryLimitMB()) << 20,
		UnresponsiveKill: cfg.Runtime.UnresponsiveKill,
	}, log)
	if err != nil {
		return nil, "", err
	}
	m.WatchRuntime(func() metrics.RuntimeStats {
		processes, queued := b.Stats()
		running, _ := b.InFlight()
		perExecution, _ := b.Admitted()
		return metrics.RuntimeStats{Processes: processes, Queued: queued, Running: running, PerExecution: perExecution}
	})
	return b, workerd + " (" + workerdVersion + ")", nil
}

// capabilityURLs are the base URLs of the configured capabilities not
// reached through a VPC service: the local runtime's capability network
// reaches their hosts and nothing else.
func capabilityURLs(cfg *config.Config) []string {
	var urls []string
	for _, c := range cfg.CapabilitySet() {
		if !c.VPC {
			urls = append(urls, c.URL)
		}
	}
	return urls
}

// vpcCapabilities are the capabilities reached through a Workers VPC service
// on Cloudflare, with their base URLs (locally a binding each, as there).
func vpcCapabilities(cfg *config.Config) map[string]string {
	out := map[string]string{}
	for name, c := range cfg.CapabilitySet() {
		if c.VPC {
			out[name] = c.URL
		}
	}
	return out
}

// maxEventBytes bounds one line of the shim's stream: a result carries a
// response body (base64 grows it by a third), a log event one cut line.
func maxEventBytes(cfg *config.Config) int {
	return int(2*cfg.Execution.MaxResponseBytes) + 4*cfg.Execution.MaxLogLineBytes + 1<<20
}

// apiOptions turns the configuration into the API's options.
func apiOptions(cfg *config.Config, m *metrics.Metrics) api.Options {
	return api.Options{
		Version:           version,
		MaxRequestBytes:   cfg.HTTP.MaxRequestBytes,
		OpenAPI:           gateway.OpenAPI,
		Heartbeat:         cfg.HTTP.SSEHeartbeat,
		Keys:              auth.NewKeyring(cfg.Keys()),
		Metrics:           m,
		MetricsPublic:     cfg.Metrics.Public,
		WriteTimeout:      cfg.HTTP.WriteTimeout,
		ClientBufferBytes: cfg.ClientBufferBytes(),
		MaxLifetime:       cfg.MaxRequestLifetime(),
		Runtime:           runtimeInfo(cfg),
	}
}

// runtimeInfo is what /readyz tells of the backend.
func runtimeInfo(cfg *config.Config) *api.RuntimeInfo {
	memoryMB, cpuMs := cfg.Limits()
	return &api.RuntimeInfo{Backend: cfg.Backend, Limits: api.RuntimeLimits{MemoryMB: memoryMB, CPUMs: cpuMs}}
}

// packageManager resolves executions' dependencies as cfg says, its
// cache's size watched by m; nil when packages.enabled is false.
func packageManager(cfg *config.Config, m *metrics.Metrics) (*packages.Manager, error) {
	p := cfg.Packages
	if !p.Enabled {
		return nil, nil
	}
	pm, err := packages.New(packages.Options{
		NPM: p.NPM, Registry: p.Registry, Token: p.Token.Value(), Dir: cfg.PackagesDir(),
		Policy:      packages.Policy{Allow: p.Allow, Deny: p.Deny},
		MaxPackages: p.MaxPackages, MaxBytes: p.MaxBytes, CacheMaxBytes: p.CacheMaxBytes, ResolveTimeout: p.ResolveTimeout, Refresh: p.Refresh, Offline: p.Offline,
	})
	if err == nil {
		m.WatchDependencyCache(func() metrics.DependencyCacheStats {
			s := pm.Stats()
			return metrics.DependencyCacheStats{Bytes: s.Bytes, Sets: s.Sets, Evictions: s.Evictions}
		})
	}
	return pm, err
}

// serviceOptions are the execution service's settings: the limits of a
// request, the capabilities, the keys' default quotas, and the records on
// st (nil: none).
func serviceOptions(cfg *config.Config, own []string, m *metrics.Metrics, log zerolog.Logger, backend execution.Backend, st store.Store, keys *auth.Keyring) executions.Options {
	quota := cfg.Quotas()
	lookup, all := api.KeyCallers(keys)
	return executions.Options{
		Backend:      backend,
		Store:        st,
		Capabilities: cfg.CapabilitySet(),
		Quota:        executions.Quota{Requests: quota.Requests, Window: quota.Window, Concurrency: quota.Concurrency},
		Keys:         lookup,
		Callers:      all,
		Metrics:      m,
		Log:          log,
		Limits: executions.Limits{
			CompatibilityDate: cfg.Execution.CompatibilityDate,
			DefaultTimeout:    cfg.Execution.DefaultTimeout,
			MaxTimeout:        cfg.Execution.MaxTimeout,
			MaxResponseBytes:  cfg.Execution.MaxResponseBytes,
			MaxLogLineBytes:   cfg.Execution.MaxLogLineBytes,
			MaxLogBytes:       cfg.Execution.MaxLogBytes,
			MaxCodeBytes:      cfg.Execution.MaxCodeBytes,
			MaxModules:        cfg.Execution.MaxModules,
			MaxEnvBytes:       cfg.Execution.MaxEnvBytes,
			DenyAddresses:     own,
			CPUMs:             cfg.Execution.CPUMs,
			SubRequests:       cfg.Execution.SubRequests,
		},
		Records: recordOptions(cfg),
	}
}
