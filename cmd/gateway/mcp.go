//lint:file-ignore SA1019 MCP logging is deprecated as of protocol 2026-07-28 but works for at least twelve months; the proxy relays the remote server's log messages.

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/rs/zerolog"
	"github.com/spf13/pflag"

	"github.com/dynamic-workers/gateway/execution"
	"github.com/dynamic-workers/gateway/internal/api"
	"github.com/dynamic-workers/gateway/internal/config"
	"github.com/dynamic-workers/gateway/internal/executions"
	"github.com/dynamic-workers/gateway/internal/mcp"
	"github.com/dynamic-workers/gateway/internal/metrics"
)

const mcpUsage = `usage: gateway mcp [flags]

Serves the gateway's MCP server (the execute tool) over standard input and
output, for agent hosts that start their MCP servers as commands.

With --url (or $GATEWAY_URL) it stands in front of that gateway's /mcp,
with --key (or $GATEWAY_API_KEY): the remote gateway runs the code, under
its limits and that key's quotas. Without a URL it runs the code itself on
the embedded local runtime (workerd), with gateway serve's settings (the
flags below, a config file, GATEWAY_* variables), and keeps no records.
Either way its own log goes to standard error, never standard output.

flags:
%s`

// mcpCommand runs `gateway mcp`: an MCP server over stdin and stdout, in
// front of a gateway or on its own runtime.
func mcpCommand(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := pflag.NewFlagSet("mcp", pflag.ContinueOnError)
	fs.SetOutput(stderr)
	url := fs.String("url", "", "gateway `URL` to stand in front of (default $GATEWAY_URL; none: run code here)")
	key := fs.String("key", "", "API `key` for the gateway at --url (default $GATEWAY_API_KEY)")
	config.Flags(fs)
	fs.Usage = func() { fmt.Fprintf(stderr, mcpUsage, fs.FlagUsages()) }
	cfg, err := config.Load(fs, args, getenv)
	if errors.Is(err, pflag.ErrHelp) {
		return nil
	}
	if err != nil {
		return err
	}
	level, _ := zerolog.ParseLevel(cfg.Log.Level)
	log := zerolog.New(stderr).Level(level).With().Timestamp().Str("mode", "mcp").Logger()
	t := &sdk.IOTransport{Reader: io.NopCloser(stdin), Writer: nopWriteCloser{stdout}}
	if *url == "" {
		*url = getenv("GATEWAY_URL")
	}
	if *key == "" {
		*key = getenv("GATEWAY_API_KEY")
	}
	if *url != "" {
		return mcpRemote(ctx, t, strings.TrimSuffix(*url, "/")+"/mcp", *key, log)
	}
	return mcpLocal(ctx, t, cfg, log)
}

// mcpLocal serves t with an execution service of its own on the
// configured runtime, without a store.
func mcpLocal(ctx context.Context, t sdk.Transport, cfg *config.Config, log zerolog.Logger) error {
	own, err := ownAddresses(ctx, cfg.Listen)
	if err != nil {
		return err
	}
	m := metrics.New()
	backend, runtime, err := newBackend(ctx, cfg, own, log, m)
	if err != nil {
		return err
	}
	defer backend.Close()
	svc := executions.New(serviceOptions(cfg, own, m, log, backend, nil, apiOptions(cfg, m).Keys))
	svc.Start()
	defer closeService(svc, cfg.HTTP.ShutdownGrace, log)
	log.Info().Str("version", version).Str("runtime", runtime).Msg("serving MCP on standard input and output")
	caller := execution.Caller{Name: "stdio"}
	err = mcp.Serve(ctx, t, caller, log, mcp.Options{
		Service:      svc,
		NewID:        api.NewID,
		Version:      version,
		Capabilities: len(svc.Capabilities(caller).Capabilities) > 0,
	})
	if ctx.Err() != nil || errors.Is(err, io.EOF) {
		return nil // the client closed standard input, or we were stopped
	}
	return err
}

// mcpRemote serves t as a proxy of the MCP server at endpoint: at start it
// lists the remote tools and resources and offers them as they are; a
// call goes to the remote server, and the progress notifications and log
// messages it sends back reach the local client.
func mcpRemote(ctx context.Context, t sdk.Transport, endpoint, key string, log zerolog.Logger) error {
	p := &proxy{calls: map[string]*sdk.CallToolRequest{}}
	client := sdk.NewClient(&sdk.Implementation{Name: "gateway-mcp", Version: version}, &sdk.ClientOptions{
		ProgressNotificationHandler: p.progress,
		LoggingMessageHandler:       p.logMessage,
	})
	auth := &bearer{key: key}
	remote, err := client.Connect(ctx, &sdk.StreamableClientTransport{Endpoint: endpoint, HTTPClient: &http.Client{Transport: auth}}, nil)
	if err != nil {
		if refusal := auth.refusal(); refusal != "" {
			return fmt.Errorf("connecting to %s: %s", endpoint, refusal)
		}
		return fmt.Errorf("connecting to %s: %w", endpoint, err)
	}
	defer remote.Close()
	init := remote.InitializeResult()
	server := sdk.NewServer(&sdk.Implementation{Name: init.ServerInfo.Name, Title: init.ServerInfo.Title, Version: init.ServerInfo.Version},
		&sdk.ServerOptions{Instructions: init.Instructions})
	tools, err := remote.ListTools(ctx, nil)
	if err != nil {
		return err
	}
	for _, tool := range tools.Tools {
		server.AddTool(tool, p.call(remote, tool.Name))
	}
	resources, err := remote.ListResources(ctx, nil)
	if err != nil {
		return err
	}
	for _, r := range resources.Resources {
		server.AddResource(r, func(ctx context.Context, req *sdk.ReadResourceRequest) (*sdk.ReadResourceResult, error) {
			return remote.ReadResource(ctx, req.Params)
		})
	}
	server.AddReceivingMiddleware(mcp.DefaultLogLevelMiddleware)
	p.local = server
	log.Info().Str("version", version).Str("gateway", endpoint).Int("tools", len(tools.Tools)).Msg("serving MCP on standard input and output")
	err = server.Run(ctx, t)
	if ctx.Err() != nil || errors.Is(err, io.EOF) {
		return nil
	}
	return err
}

// proxy relays tool calls to a remote MCP server and what it sends about
// them back to the local client.
type proxy struct {
	local *sdk.Server

	mu    sync.Mutex
	calls map[string]*sdk.CallToolRequest // by the progress token sent on
	next  int
}

// call relays a call of tool name, with a progress token of its own when
// the local call has one.
func (p *proxy) call(remote *sdk.ClientSession, name string) sdk.ToolHandler {
	return func(ctx context.Context, req *sdk.CallToolRequest) (*sdk.CallToolResult, error) {
		params := &sdk.CallToolParams{Name: name, Arguments: req.Params.Arguments}
		if req.Params.GetProgressToken() != nil {
			p.mu.Lock()
			p.next++
			token := fmt.Sprintf("relay-%d", p.next)
			p.calls[token] = req
			p.mu.Unlock()
			defer func() { p.mu.Lock(); delete(p.calls, token); p.mu.Unlock() }()
			params.SetProgressToken(token)
		}
		return remote.CallTool(ctx, params)
	}
}

// progress hands a remote progress notification to the call it is about.
func (p *proxy) progress(ctx context.Context, n *sdk.ProgressNotificationClientRequest) {
	token, _ := n.Params.ProgressToken.(string)
	p.mu.Lock()
	req := p.calls[token]
	p.mu.Unlock()
	if req == nil {
		return
	}
	params := *n.Params
	params.ProgressToken = req.Params.GetProgressToken()
	_ = req.Session.NotifyProgress(ctx, &params)
}

// logMessage hands a remote log message to the local client.
func (p *proxy) logMessage(ctx context.Context, n *sdk.LoggingMessageRequest) {
	if p.local == nil {
		return
	}
	for ss := range p.local.Sessions() {
		_ = ss.Log(ctx, n.Params)
	}
}

// bearer sends an API key with every request, and keeps what the gateway
// said when it refused one (the SDK's error says only "Unauthorized").
type bearer struct {
	key string

	mu      sync.Mutex
	refused string
}

func (b *bearer) RoundTrip(r *http.Request) (*http.Response, error) {
	if b.key != "" {
		r = r.Clone(r.Context())
		r.Header.Set("Authorization", "Bearer "+b.key)
	}
	resp, err := http.DefaultTransport.RoundTrip(r)
	if err != nil || resp.StatusCode != http.StatusUnauthorized && resp.StatusCode != http.StatusForbidden {
		return resp, err
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
	resp.Body.Close()
	resp.Body = io.NopCloser(bytes.NewReader(body))
	var p execution.Problem
	if json.Unmarshal(body, &p) == nil && p.Detail != "" {
		b.mu.Lock()
		b.refused = resp.Status + ": " + p.Detail
		b.mu.Unlock()
	}
	return resp, nil
}

// refusal is what the gateway said when it last refused a request.
func (b *bearer) refusal() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.refused
}

// nopWriteCloser is standard output, which the transport must not close.
type nopWriteCloser struct{ io.Writer }

func (nopWriteCloser) Close() error { return nil }
