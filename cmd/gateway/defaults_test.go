package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/spf13/pflag"

	"github.com/dynamic-workers/gateway/execution"
	"github.com/dynamic-workers/gateway/internal/auth"
	"github.com/dynamic-workers/gateway/internal/config"
	"github.com/dynamic-workers/gateway/internal/metrics"
)

// TestDefaultsServeOneBusyCaller: with the default configuration (only the
// workerd binary and a free port given), one local caller runs 1,500
// executions 40 at a time without a single error: no quota throttles the
// anonymous caller, and the pool's queue absorbs what does not run at once.
func TestDefaultsServeOneBusyCaller(t *testing.T) {
	g := startServing(t, map[string]string{})
	base := g.base

	const total, concurrency = 1500, 40
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: concurrency}}
	var next atomic.Int64
	var mu sync.Mutex
	failures := map[string]int{}
	var wg sync.WaitGroup
	for range concurrency {
		wg.Go(func() {
			for next.Add(1) <= total {
				if problem := helloWorld(client, base); problem != "" {
					mu.Lock()
					failures[problem]++
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	if len(failures) > 0 {
		t.Errorf("%d executions at concurrency %d with the defaults: failures %v, want none", total, concurrency, failures)
	}
	g.stop(t)
}

// helloWorld runs one execution; it returns what went wrong, or "".
func helloWorld(client *http.Client, base string) string {
	body := `{"code": "export default { fetch() { return new Response('hello'); } }"}`
	resp, err := client.Post(base+"/execute", "application/json", strings.NewReader(body))
	if err != nil {
		return err.Error()
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		var p struct{ Code string }
		_ = json.Unmarshal(data, &p)
		return fmt.Sprintf("%d %s", resp.StatusCode, p.Code)
	}
	var res execution.Result
	if err := json.Unmarshal(data, &res); err != nil || !res.Success || res.Response == nil || res.Response.Body != "hello" {
		code := "undecodable"
		if res.Error != nil {
			code = string(res.Error.Code)
		}
		return "200 " + code
	}
	return ""
}

// TestAPIOptionsQuota: the API gets the quotas in effect: none for the
// anonymous caller, the pool's capacity with keys, and what is set.
func TestAPIOptionsQuota(t *testing.T) {
	key := "ci=sha256:" + strings.Repeat("0", 64)
	tests := []struct {
		env                   map[string]string
		requests, concurrency int
	}{
		{map[string]string{}, 0, 0},
		{map[string]string{"GATEWAY_AUTH_KEYS": key}, 40 * 60, 40},
		{map[string]string{"GATEWAY_AUTH_KEYS": key, "GATEWAY_QUOTA_CONCURRENCY": "3"}, 180, 3},
		{map[string]string{"GATEWAY_QUOTA_REQUESTS": "9"}, 9, 0},
	}
	for _, tt := range tests {
		tt.env["GATEWAY_RUNTIME_PROCESSES"] = "3"
		tt.env["GATEWAY_RUNTIME_MAX_CONCURRENCY"] = "8"
		tt.env["GATEWAY_RUNTIME_QUEUE_SIZE"] = "16"
		fs := pflag.NewFlagSet("serve", pflag.ContinueOnError)
		config.Flags(fs)
		cfg, err := config.Load(fs, nil, func(k string) string { return tt.env[k] })
		if err != nil {
			t.Fatal(err)
		}
		q := serviceOptions(cfg, nil, metrics.New(), zerolog.Nop(), nil, nil, auth.NewKeyring(cfg.Keys())).Quota
		if q.Requests != tt.requests || q.Concurrency != tt.concurrency || q.Window != time.Minute {
			t.Errorf("serviceOptions(%v).Quota = %+v, want %d requests, %d concurrency per minute", tt.env, q, tt.requests, tt.concurrency)
		}
	}
}
