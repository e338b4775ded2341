package api_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/dynamic-workers/gateway/internal/executions"
)

// hostileReceivers are callback receivers that keep a delivery going for
// its whole retry time, each signalling arrived when a request reaches it.
var hostileReceivers = []struct {
	name  string
	serve func(arrived chan<- struct{}) http.HandlerFunc
}{
	{"holds the request", func(arrived chan<- struct{}) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.Copy(io.Discard, r.Body) // so the server sees the client go
			signal(arrived)
			<-r.Context().Done()
		}
	}},
	{"asks to retry in 5 minutes", func(arrived chan<- struct{}) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			signal(arrived)
			w.Header().Set("Retry-After", "300")
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	}},
	{"drops the connection", func(arrived chan<- struct{}) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			signal(arrived)
			c, _, err := http.NewResponseController(w).Hijack()
			if err == nil {
				c.Close()
			}
		}
	}},
	{"answers 500 at once", func(arrived chan<- struct{}) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			signal(arrived)
			w.WriteHeader(http.StatusInternalServerError)
		}
	}},
}

// TestAttackCallbackSlotsNotHeldByOneKey: one key submits as many
// executions as the gateway has delivery slots, each with a callback to a
// receiver that keeps its delivery going for the whole retry time (10
// minutes by default). Another key's callback to a healthy receiver must
// still go out meanwhile, not wait for those to give up.
func TestAttackCallbackSlotsNotHeldByOneKey(t *testing.T) {
	const slots = 2
	for _, tc := range hostileReceivers {
		t.Run(tc.name, func(t *testing.T) {
			arrived := make(chan struct{}, 1000)
			hostile := httptest.NewServer(tc.serve(arrived))
			t.Cleanup(hostile.Close)
			good := newHookReceiver(t, http.StatusOK)
			opts := fastRetries()
			opts.Webhook.MaxInFlight = slots
			g := newHistoryGateway(t, executions.RecordOptions{Callbacks: opts})

			var ids []string
			for i := 0; i < 2*slots; i++ {
				ids = append(ids, g.submit(t, g.alice, map[string]any{"code": guest(`console.log(1);`), "callbackUrl": hostile.URL + "/cb"}))
			}
			for _, id := range ids {
				g.await(t, g.alice, id, "finished")
			}
			select {
			case <-arrived:
			case <-time.After(60 * time.Second):
				t.Fatal("the hostile receiver got no request in 60s")
			}
			// Every one of the key's callbacks is pending, older than the
			// other key's: without a bound per key they take every slot.
			id := g.submit(t, g.bob, map[string]any{"code": guest(`console.log(2);`), "callbackUrl": good.URL + "/cb"})
			select {
			case h := <-good.got:
				if h.delivery != id || h.verifyErr != nil {
					t.Errorf("healthy receiver got delivery %q (%v), want %s, signed", h.delivery, h.verifyErr, id)
				}
			case <-time.After(30 * time.Second):
				t.Fatalf("another key's callback not sent within 30s while one key's hostile receiver held the %d delivery slots", slots)
			}
		})
	}
}

// signal tells arrived, without waiting if nobody listens any more.
func signal(arrived chan<- struct{}) {
	select {
	case arrived <- struct{}{}:
	default:
	}
}

// TestAttackCallbackBodyMasksSecrets: the callback body is the record, so
// a secret the guest prints, in several spellings, arrives masked; the
// submitted request (which holds the secret) and the signing secret are
// not in it; and the callback of one key never carries another's record.
func TestAttackCallbackBodyMasksSecrets(t *testing.T) {
	recv := newHookReceiver(t, http.StatusOK)
	g := newHistoryGateway(t, executions.RecordOptions{Callbacks: fastRetries()})
	const secret = "cb-s3cr3t-V4lue-Zq"
	code := guest(`console.log(env.TOKEN); console.log(JSON.stringify({ t: env.TOKEN })); console.error(encodeURIComponent(env.TOKEN + "/x"));
  console.log([env.TOKEN]); throw new Error("boom " + env.TOKEN);`)
	bobID := g.submit(t, g.bob, map[string]any{"code": guest(`console.log("bob's output");`)})
	g.await(t, g.bob, bobID, "finished")
	id := g.submit(t, g.alice, map[string]any{"code": code, "secrets": map[string]string{"TOKEN": secret}, "callbackUrl": recv.URL + "/cb"})
	h := recv.next(t)
	body := string(h.body)
	for _, leak := range []string{secret, url.QueryEscape(secret), string(callbackSecret), `"secrets"`, "encodeURIComponent", "bob's output", bobID} {
		if strings.Contains(body, leak) {
			t.Errorf("callback body carries %q: %s", leak, body)
		}
	}
	if !strings.Contains(body, id) || strings.Count(body, "[REDACTED]") < 5 {
		t.Errorf("callback body = %s, want %s's record with each line's secret masked", body, id)
	}
}
