package store_test

import (
	"context"
	"errors"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dynamic-workers/gateway/execution"
	"github.com/dynamic-workers/gateway/internal/store"
	"github.com/dynamic-workers/gateway/internal/store/storetest"
)

// TestAttackPostgresURLPasswordNotInError opens storage.url spellings that
// pgx cannot parse or reach, with the password written in ways its own
// best-effort redaction misses (an unescaped @, several hosts, a query
// parameter): the error, which the gateway prints when it cannot start,
// never carries the password.
func TestAttackPostgresURLPasswordNotInError(t *testing.T) {
	t.Parallel()
	const pw = "S3CRETPW"
	urls := []string{
		"postgres://u:pa@" + pw + "@127.0.0.1:notaport/db",
		"postgresql://u:x@y@" + pw + "@127.0.0.1:1:2/db",
		"postgres://u:a@" + pw + "@h1:x,h2/db",
		"postgres://u:" + pw + "@127.0.0.1:notaport/db",
		"postgres://u:" + pw + "@[::1/db",
		"postgres://u:" + pw + "@h/db?sslmode=bogus",
		"postgres://u:" + pw + " x@h:1/db",
		"postgres://h:1/db?password=" + pw + "&sslmode=bogus",
		"postgres://u:" + pw + "@127.0.0.1:1/db?connect_timeout=1",
	}
	for _, u := range urls {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		st, err := store.Open(ctx, u)
		cancel()
		if err == nil {
			st.Close()
			t.Errorf("Open(%q) = nil error, want one", u)
			continue
		}
		if strings.Contains(err.Error(), pw) {
			t.Errorf("Open(%q) = %q, which carries the password", u, err)
		}
	}
}

// openBoth runs fn on a fresh SQLite file and a fresh PostgreSQL database.
func openBoth(t *testing.T, fn func(t *testing.T, s store.Store)) {
	t.Helper()
	engines := map[string]func(t *testing.T) string{
		"sqlite": func(t *testing.T) string { return filepath.Join(t.TempDir(), "executions.db") },
		"postgres": func(t *testing.T) string {
			pg, err := storetest.SharedPostgres()
			if err != nil {
				t.Fatalf("PostgreSQL for the store tests: %v", err)
			}
			return pg.NewDatabase(t)
		},
	}
	for name, location := range engines {
		t.Run(name, func(t *testing.T) {
			s, err := store.Open(t.Context(), location(t))
			if err != nil {
				t.Fatalf("Open = %v", err)
			}
			t.Cleanup(func() { s.Close() })
			fn(t, s)
		})
	}
}

// endWithCallback stores a finished execution of caller with a pending
// callback, ended at end.
func endWithCallback(t *testing.T, s store.Store, id, caller string, end time.Time) {
	t.Helper()
	e := &store.Execution{ID: id, Caller: caller, Status: store.Running, Owner: "gw", CreatedAt: end,
		CallbackURL: "https://hooks.example.com/" + id}
	if err := s.Create(t.Context(), e); err != nil {
		t.Fatal(err)
	}
	if err := s.Finish(t.Context(), id, "gw", store.Finished, &execution.Result{ID: id}, nil, end); err != nil {
		t.Fatal(err)
	}
}

// TestAttackClaimCallbackSkipsBusyKeys: the pending callbacks of keys the
// gateway already sends its share of are left for later, whatever their
// age and however their names are spelled (quotes, SQL, several of them):
// a key's hostile receiver cannot take every delivery slot.
func TestAttackClaimCallbackSkipsBusyKeys(t *testing.T) {
	openBoth(t, func(t *testing.T, s store.Store) {
		now := time.Now()
		busy := []string{"a", "o'brien", "x') OR 1=1 --", "b\"; DROP TABLE executions; --"}
		for i, c := range busy {
			endWithCallback(t, s, "ex_busy"+strconv.Itoa(i), c, now.Add(-time.Hour))
		}
		endWithCallback(t, s, "ex_other", "other", now)
		if err := s.Lease(t.Context(), "gw1", now.Add(time.Minute), false); err != nil {
			t.Fatal(err)
		}
		c, err := s.ClaimCallback(t.Context(), "gw1", now, busy...)
		if err != nil || c.ID != "ex_other" {
			t.Fatalf("ClaimCallback(skip %q) = %+v, %v; want ex_other", busy, c, err)
		}
		if c, err := s.ClaimCallback(t.Context(), "gw1", now, busy...); !errors.Is(err, store.ErrEmpty) {
			t.Errorf("ClaimCallback(only skipped left) = %+v, %v; want ErrEmpty", c, err)
		}
		if c, err := s.ClaimCallback(t.Context(), "gw1", now, busy[1:]...); err != nil || c.ID != "ex_busy0" {
			t.Errorf("ClaimCallback(a no longer skipped) = %+v, %v; want ex_busy0", c, err)
		}
	})
}

// TestAttackPurgeKeepsPendingCallbacks: records past the retention whose
// callback is still to be delivered (a gateway down longer than the
// retention, a retention shorter than the retry time) are kept until it
// is: the callback "fires either way". Delivered, failed and callback-less
// ones go.
func TestAttackPurgeKeepsPendingCallbacks(t *testing.T) {
	openBoth(t, func(t *testing.T, s store.Store) {
		old := time.Now().Add(-48 * time.Hour)
		endWithCallback(t, s, "ex_pending", "a", old)
		endWithCallback(t, s, "ex_claimed", "a", old)
		endWithCallback(t, s, "ex_delivered", "a", old)
		if err := s.Lease(t.Context(), "gw1", time.Now().Add(time.Minute), false); err != nil {
			t.Fatal(err)
		}
		for _, id := range []string{"ex_pending", "ex_claimed", "ex_delivered"} {
			if c, err := s.ClaimCallback(t.Context(), "gw1", time.Now()); err != nil || c.ID != id {
				t.Fatalf("ClaimCallback = %+v, %v; want %s", c, err, id)
			}
		}
		if err := s.SaveCallback(t.Context(), "ex_pending", "gw1", store.Callback{State: store.CallbackPending}, true); err != nil {
			t.Fatal(err)
		}
		if err := s.SaveCallback(t.Context(), "ex_delivered", "gw1", store.Callback{State: store.CallbackDelivered}, false); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Purge(t.Context(), time.Now()); err != nil {
			t.Fatal(err)
		}
		for id, kept := range map[string]bool{"ex_pending": true, "ex_claimed": true, "ex_delivered": false} {
			_, err := s.Get(t.Context(), "a", id)
			if got := err == nil; got != kept {
				t.Errorf("after Purge, Get(%s) = %v; want kept %v", id, err, kept)
			}
		}
	})
}

// TestAttackCrashLoopBounded: an execution that was running each time its
// gateway died (a guest that brings its gateway down would be one) is
// queued again after each crash only until it has been claimed
// store.MaxRuns times; then it ends as runtime_crashed instead of taking
// every gateway that claims it down, forever.
func TestAttackCrashLoopBounded(t *testing.T) {
	openBoth(t, func(t *testing.T, s store.Store) {
		ctx := t.Context()
		now := time.Now()
		if err := s.Create(ctx, &store.Execution{ID: "ex_poison", Caller: "a", Status: store.Queued, Async: true,
			Request: []byte(`{}`), CreatedAt: now}); err != nil {
			t.Fatal(err)
		}
		for run := 1; run <= store.MaxRuns; run++ {
			if e, err := s.Claim(ctx, "gw_"+strconv.Itoa(run), now, store.Limits{}); err != nil || e.ID != "ex_poison" {
				t.Fatalf("run %d: Claim = %+v, %v; want ex_poison", run, e, err)
			}
			rec, err := s.Recover(ctx, now.Add(time.Duration(run)*time.Minute))
			if err != nil {
				t.Fatal(err)
			}
			requeued := len(rec.Requeued) == 1
			if want := run < store.MaxRuns; requeued != want || len(rec.Crashed) == 1 == want {
				t.Fatalf("run %d: Recover = %+v; want requeued %v", run, rec, want)
			}
		}
		e, err := s.Get(ctx, "a", "ex_poison")
		var res *execution.Result
		if err == nil {
			res, err = e.DecodedResult()
		}
		if err != nil || e.Status != store.Finished || res == nil || res.Error == nil || res.Error.Code != execution.CodeRuntimeCrashed {
			t.Errorf("Get(ex_poison) = %+v, %v; want finished runtime_crashed", e, err)
		}
		if _, err := s.Claim(ctx, "gw_next", now, store.Limits{}); !errors.Is(err, store.ErrEmpty) {
			t.Errorf("Claim after the bound = %v, want ErrEmpty", err)
		}
	})
}
