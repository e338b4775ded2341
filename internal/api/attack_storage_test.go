package api_test

import (
	"bytes"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dynamic-workers/gateway/execution"
	"github.com/dynamic-workers/gateway/internal/api"
	"github.com/dynamic-workers/gateway/internal/executions"
	"github.com/dynamic-workers/gateway/internal/store"
	"github.com/dynamic-workers/gateway/internal/store/storetest"
	"github.com/dynamic-workers/gateway/internal/testwait"
)

// TestAttackReadYourWrites: a synchronous execution's record was written
// off the request's path, so for up to ~60 ms after its answer GET
// /executions/{id} said 404: a client that runs and then fetches its record
// was told it does not exist. Every way of answering (one JSON result,
// NDJSON, SSE), many at once: the record is there, finished with its
// result, as soon as the answer is.
func TestAttackReadYourWrites(t *testing.T) {
	t.Parallel()
	g := newHistoryGateway(t, executions.RecordOptions{})
	for _, accept := range []string{"application/json", "application/x-ndjson", "text/event-stream"} {
		t.Run(accept, func(t *testing.T) {
			t.Parallel()
			var wg sync.WaitGroup
			for i := range 12 {
				wg.Go(func() {
					code := guest(fmt.Sprintf(`console.log("run %d");`, i))
					if i%3 == 0 { // and some that outlive the 50 ms hold
						code = guest(fmt.Sprintf(`await new Promise((r) => setTimeout(r, 80)); console.log("run %d");`, i))
					}
					resp, body := g.call(t, g.alice, http.MethodPost, "/execute", map[string]any{"code": code}, "Accept", accept)
					id := resp.Header.Get(api.ExecutionIDHeader)
					if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), fmt.Sprintf("run %d", i)) {
						t.Errorf("POST /execute = %d %s", resp.StatusCode, body)
						return
					}
					code2, rec := g.record(t, g.alice, id)
					if code2 != http.StatusOK || rec.Status != execution.StatusFinished || rec.Result == nil || rec.Result.Stdout != fmt.Sprintf("run %d", i) {
						t.Errorf("GET /executions/%s right after its answer = %d %+v, want finished with its result", id, code2, rec)
					}
				})
			}
			wg.Wait()
		})
	}
}

// TestAttackStorageBound: one key could fill the disk (no bound on what
// its records take; retention 7 days). Each key's records are bounded: past
// its bound its oldest ended records go first, whichever way they were
// made (synchronous, streamed, queued), and another key's records stay.
func TestAttackStorageBound(t *testing.T) {
	t.Parallel()
	const bound = 1_500_000
	g := newHistoryGateway(t, executions.RecordOptions{MaxStoredBytesPerKey: bound, StoredBytesPerKey: map[string]int64{"bob": 10 * bound}})
	bobs := g.submit(t, g.bob, map[string]any{"code": guest(`for (let i = 0; i < 100; i++) console.log("b".repeat(1000));`)})
	g.await(t, g.bob, bobs, execution.StatusFinished)
	// ~100 KB of output each, about 420 KB stored (as events, in the
	// result's logs and stdout, and in its result event): three fit.
	flood := guest(`for (let i = 0; i < 100; i++) console.log("a".repeat(1000));`)
	var ids []string
	for i := range 12 {
		var id string
		switch i % 3 {
		case 0:
			resp, body := g.call(t, g.alice, http.MethodPost, "/execute", map[string]any{"code": flood})
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("POST /execute = %d %s", resp.StatusCode, body)
			}
			id = resp.Header.Get(api.ExecutionIDHeader)
		case 1:
			resp, body := g.call(t, g.alice, http.MethodPost, "/execute", map[string]any{"code": flood}, "Accept", "application/x-ndjson")
			if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), `"type":"result"`) {
				t.Fatalf("POST /execute (NDJSON) = %d", resp.StatusCode)
			}
			id = resp.Header.Get(api.ExecutionIDHeader)
		default:
			id = g.submit(t, g.alice, map[string]any{"code": flood})
			g.await(t, g.alice, id, execution.StatusFinished)
		}
		ids = append(ids, id)
	}
	var used int64
	if !testwait.Until(10*time.Second, func() bool {
		used, _ = g.store.Usage(t.Context(), "alice")
		return used <= bound
	}) {
		t.Errorf("alice's records take %d bytes, want at most her bound %d", used, bound)
	}
	if code, _ := g.record(t, g.alice, ids[0]); code != http.StatusNotFound {
		t.Errorf("alice's oldest record = %d, want 404 (evicted)", code)
	}
	if code, rec := g.record(t, g.alice, ids[len(ids)-1]); code != http.StatusOK || rec.Result == nil {
		t.Errorf("alice's newest record = %d %+v, want kept", code, rec)
	}
	if code, rec := g.record(t, g.bob, bobs); code != http.StatusOK || rec.Result == nil {
		t.Errorf("bob's record = %d, want kept: alice's records do not evict another key's", code)
	}
}

// diskFull is a store that can be made to refuse writes as a full disk
// does, and be given room again.
type diskFull struct {
	st   store.Store
	fill func(t *testing.T)
	free func(t *testing.T)
}

// TestAttackDiskFull: with the store full, another key's /execute still
// succeeded but left no record (404), POST /executions answered 500, and
// /readyz said ready. Now, on SQLite (a file at its size bound, SQLITE_FULL
// as on a full disk) and PostgreSQL (the server refusing writes with
// disk_full): /readyz answers 503, executions that need a record are
// refused 503 storage_unavailable before anything runs, no answer reports
// a result whose record was not stored, and when there is room again the
// gateway takes executions again by itself.
func TestAttackDiskFull(t *testing.T) {
	t.Parallel()
	t.Run("sqlite", func(t *testing.T) {
		t.Parallel()
		path := filepath.Join(t.TempDir(), "executions.db")
		st, err := store.OpenWith(t.Context(), path, store.Options{MaxFileBytes: 3 << 20})
		if err != nil {
			t.Fatal(err)
		}
		raw, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(10000)")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { raw.Close() })
		attackDiskFull(t, diskFull{st: st, free: func(t *testing.T) {
			// Room again: an operator deletes old records.
			for _, q := range []string{`DELETE FROM execution_events WHERE execution_id IN (SELECT id FROM executions WHERE caller = 'alice')`,
				`DELETE FROM executions WHERE caller = 'alice'`} {
				if _, err := raw.Exec(q); err != nil {
					t.Fatal(err)
				}
			}
		}})
	})
	t.Run("postgres", func(t *testing.T) {
		t.Parallel()
		pg, err := storetest.SharedPostgres()
		if err != nil {
			t.Fatalf("PostgreSQL for the disk-full test: %v", err)
		}
		url := pg.NewDatabase(t)
		st, err := store.Open(t.Context(), url)
		if err != nil {
			t.Fatal(err)
		}
		raw, err := sql.Open("pgx", url)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { raw.Close() })
		// The server refuses every write to the records as it does when its
		// disk is full (SQLSTATE 53100), while full holds a row.
		for _, q := range []string{
			`CREATE TABLE full_disk (on_ BOOLEAN)`,
			`CREATE FUNCTION refuse_when_full() RETURNS trigger AS $$ BEGIN
			   IF EXISTS (SELECT 1 FROM full_disk) THEN
			     RAISE EXCEPTION 'could not extend file: No space left on device' USING ERRCODE = 'disk_full';
			   END IF; RETURN NEW; END $$ LANGUAGE plpgsql`,
			`CREATE TRIGGER full_events BEFORE INSERT OR UPDATE ON execution_events FOR EACH ROW EXECUTE FUNCTION refuse_when_full()`,
			`CREATE TRIGGER full_records BEFORE INSERT OR UPDATE ON executions FOR EACH ROW EXECUTE FUNCTION refuse_when_full()`,
			`CREATE TRIGGER full_secrets BEFORE INSERT OR UPDATE ON gateway_secrets FOR EACH ROW EXECUTE FUNCTION refuse_when_full()`,
		} {
			if _, err := raw.Exec(q); err != nil {
				t.Fatalf("%s: %v", q, err)
			}
		}
		attackDiskFull(t, diskFull{st: st,
			fill: func(t *testing.T) {
				if _, err := raw.Exec(`INSERT INTO full_disk VALUES (TRUE)`); err != nil {
					t.Fatal(err)
				}
			},
			free: func(t *testing.T) {
				if _, err := raw.Exec(`DELETE FROM full_disk`); err != nil {
					t.Fatal(err)
				}
			}})
	})
}

func attackDiskFull(t *testing.T, d diskFull) {
	g := newHistoryGatewayOn(t, d.st, executions.RecordOptions{Poll: 50 * time.Millisecond})
	if d.fill != nil {
		d.fill(t)
	}
	// alice fills the store; every answer that reports a result must have
	// its record.
	flood := guest(`for (let i = 0; i < 200; i++) console.log("f".repeat(1000));`)
	answered, refused := 0, 0
	for i := 0; i < 60 && refused == 0; i++ {
		accept := []string{"application/json", "application/x-ndjson"}[i%2]
		resp, body, cut := postExecute(t, g, g.alice, flood, accept)
		id := resp.Header.Get(api.ExecutionIDHeader)
		switch {
		case resp.StatusCode == http.StatusServiceUnavailable:
			refused++
			if !strings.Contains(string(body), execution.ProblemStorageUnavailable) {
				t.Errorf("503 = %s, want storage_unavailable", body)
			}
		case resp.StatusCode == http.StatusInternalServerError:
			refused++ // it ran, and its record could not be stored: not reported
			if !strings.Contains(string(body), execution.ProblemRecordNotStored) {
				t.Errorf("500 = %s, want record_not_stored", body)
			}
		case resp.StatusCode == http.StatusOK && accept == "application/json":
			answered++
			if code, rec := g.record(t, g.alice, id); code != http.StatusOK || rec.Result == nil {
				t.Errorf("execution %s answered its result, but its record = %d %+v", id, code, rec)
			}
		case resp.StatusCode == http.StatusOK:
			if cut != nil {
				if strings.Contains(string(body), `"type":"result"`) {
					t.Errorf("execution %s: its stream was cut after its result", id)
				}
				refused++ // cut before its result: not reported as kept
				continue
			}
			answered++
			if code, rec := g.record(t, g.alice, id); code != http.StatusOK || rec.Result == nil {
				t.Errorf("execution %s streamed its result, but its record = %d %+v", id, code, rec)
			}
		default:
			t.Fatalf("POST /execute = %d %s", resp.StatusCode, body)
		}
	}
	if refused == 0 {
		t.Fatalf("the store never filled up (%d executions answered)", answered)
	}
	if !testwait.Until(10*time.Second, func() bool { return statusOf(t, g.url+"/readyz") == http.StatusServiceUnavailable }) {
		t.Fatal("/readyz does not answer 503 with the store refusing writes")
	}
	for _, tt := range []struct{ method, path string }{{http.MethodPost, "/execute"}, {http.MethodPost, "/executions"}} {
		resp, body := g.call(t, g.bob, tt.method, tt.path, map[string]any{"code": guest(`console.log("bob");`)})
		if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(body), execution.ProblemStorageUnavailable) || resp.Header.Get("Retry-After") == "" {
			t.Errorf("bob: %s %s with the store full = %d %s, want 503 storage_unavailable with Retry-After", tt.method, tt.path, resp.StatusCode, body)
		}
	}
	// Reads go on.
	if resp, _ := g.call(t, g.bob, http.MethodGet, "/executions", nil); resp.StatusCode != http.StatusOK {
		t.Errorf("GET /executions with the store full = %d, want 200", resp.StatusCode)
	}
	d.free(t)
	if !testwait.Until(20*time.Second, func() bool { return statusOf(t, g.url+"/readyz") == http.StatusOK }) {
		t.Fatal("/readyz does not answer 200 once the store has room again")
	}
	resp, _ := g.call(t, g.bob, http.MethodPost, "/execute", map[string]any{"code": guest(`console.log("bob");`)})
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("bob: POST /execute after the store has room = %d", resp.StatusCode)
	}
	if code, rec := g.record(t, g.bob, resp.Header.Get(api.ExecutionIDHeader)); code != http.StatusOK || rec.Result == nil || rec.Result.Stdout != "bob" {
		t.Errorf("bob's record after recovery = %d %+v", code, rec)
	}
}

// postExecute runs code as key, answered as accept: the answer, its body
// and, if the connection was cut before its end, why.
func postExecute(t *testing.T, g *historyGateway, key, code, accept string) (*http.Response, []byte, error) {
	t.Helper()
	body, _ := json.Marshal(map[string]any{"code": code})
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, g.url+"/execute", bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", accept)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	return resp, data, err
}

// statusOf is the status of a GET of url.
func statusOf(t *testing.T, url string) int {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}
