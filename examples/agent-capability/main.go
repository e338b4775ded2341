// Command agent-capability runs an AI-agent style script that calls an
// internal API through a capability: the guest gets env.inventory and never
// the API's token, which the gateway adds outside the guest's isolate.
//
// It starts the internal "inventory" API on 127.0.0.1:9077 (it requires the
// token in INVENTORY_TOKEN), lists the capabilities the gateway offers, runs
// agent.js with a plan, and prints the logs, the calls the guest made (the
// result's outbound records) and its answer. Run the gateway first with
// gateway.yaml, in the same environment:
//
//	export INVENTORY_TOKEN=$(openssl rand -hex 16)
//	bin/gateway serve --config examples/agent-capability/gateway.yaml &
//	go run ./examples/agent-capability
//
// GATEWAY_URL and GATEWAY_API_KEY are read as by the other examples.
package main

import (
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"time"

	"github.com/dynamic-workers/gateway/client"
	"github.com/dynamic-workers/gateway/execution"
)

//go:embed agent.js
var agent string

// plan is what a model might have planned for the agent to do.
const plan = `{
  "goal": "Tell the customer of order A-1001 when the missing item ships.",
  "steps": [
    {"tool": "lookupOrder", "args": {"id": "A-1001"}},
    {"tool": "checkStock", "args": {"sku": "KB-42"}},
    {"tool": "addNote", "args": {"id": "A-1001", "text": "KB-42 restock expected; customer informed."}},
    {"tool": "escape", "args": {}},
    {"tool": "cancelOrder", "args": {"id": "A-1001"}}
  ]
}`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	err := run(ctx, os.Getenv, os.Stdout)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "agent-capability:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, getenv func(string) string, stdout io.Writer) error {
	token := getenv("INVENTORY_TOKEN")
	if token == "" {
		return errors.New("set INVENTORY_TOKEN, as for the gateway (see gateway.yaml)")
	}
	stopAPI, err := serveInventory(token)
	if err != nil {
		return err
	}
	defer stopAPI()
	url := getenv("GATEWAY_URL")
	if url == "" {
		url = "http://127.0.0.1:8080"
	}
	c := client.New(url, client.WithAPIKey(getenv("GATEWAY_API_KEY")))
	caps, err := c.Capabilities(ctx)
	if err != nil {
		return err
	}
	for _, cp := range caps {
		fmt.Fprintf(stdout, "capability %s: %s under %s, %d calls per execution\n", cp.Name, strings.Join(cp.Methods, ","), cp.BasePath, cp.MaxCalls)
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	res, err := c.Execute(ctx, &execution.Request{
		Code:         agent,
		Capabilities: []string{"inventory"},
		Request:      &execution.GuestRequest{Method: http.MethodPost, Body: plan},
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "\n--- stdout\n%s\n--- stderr\n%s\n--- calls\n", res.Stdout, res.Stderr)
	for _, o := range res.Outbound {
		outcome := fmt.Sprint(o.Status)
		if o.Denied {
			outcome = "refused"
		}
		fmt.Fprintf(stdout, "%s %s %s: %s\n", o.Capability, o.Method, o.URL, outcome)
	}
	if !res.Success {
		return fmt.Errorf("the agent failed: %s", res.Error.Message)
	}
	fmt.Fprintf(stdout, "--- answer\n%s\n", res.Response.Body)
	return nil
}

// serveInventory starts the internal API on loopback; it answers only
// requests that carry the token.
func serveInventory(token string) (func(), error) {
	ln, err := net.Listen("tcp", "127.0.0.1:9077")
	if err != nil {
		return nil, fmt.Errorf("start the inventory API: %w", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/orders/{id}", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, map[string]any{"id": r.PathValue("id"), "status": "partially shipped", "missing": []string{"KB-42"}})
	})
	mux.HandleFunc("GET /api/stock", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, map[string]any{"sku": r.URL.Query().Get("sku"), "onHand": 0, "restock": "2026-12-03"})
	})
	mux.HandleFunc("POST /api/orders/{id}/notes", func(w http.ResponseWriter, r *http.Request) {
		var note struct{ Text string }
		_ = json.NewDecoder(r.Body).Decode(&note)
		writeJSON(w, map[string]any{"order": r.PathValue("id"), "note": note.Text, "saved": true})
	})
	srv := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer "+token {
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		mux.ServeHTTP(w, r)
	})}
	go func() { _ = srv.Serve(ln) }()
	return func() { _ = srv.Close() }, nil
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}
