package storetest

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/dynamic-workers/gateway/internal/store"
)

// testScripts: versions of a script, per caller: a new version is the
// latest, an identical one changes nothing, an older one stored again is
// the latest again; listings carry no bodies; another caller sees none of
// them; deleting removes every version.
func testScripts(t *testing.T, s store.Store) {
	ctx := t.Context()
	put := func(caller, name, version string) bool {
		t.Helper()
		created, err := s.PutScript(ctx, &store.Script{Caller: caller, Name: name, Version: version, CreatedAt: t0.Add(time.Minute),
			Meta: []byte(`{"v":"` + version + `"}`), Body: []byte(`{"code":"` + version + `"}`)}, 0)
		if err != nil {
			t.Fatalf("PutScript(%s, %s, %s) = %v", caller, name, version, err)
		}
		return created
	}
	latest := func(caller, name string) string {
		t.Helper()
		sc, err := s.GetScript(ctx, caller, name, "")
		if err != nil {
			t.Fatalf("GetScript(%s, %s) = %v", caller, name, err)
		}
		return sc.Version
	}
	if !put("alice", "app", "v1") || put("alice", "app", "v1") {
		t.Errorf("PutScript: want created for a new version, not for the same again")
	}
	if !put("alice", "app", "v2") || latest("alice", "app") != "v2" {
		t.Errorf("after v2, latest = %s, want v2", latest("alice", "app"))
	}
	if put("alice", "app", "v1") || latest("alice", "app") != "v1" {
		t.Errorf("v1 stored again: latest = %s, want v1, not created", latest("alice", "app"))
	}
	put("alice", "other", "x1")
	put("bob", "app", "b1")
	sc, err := s.GetScript(ctx, "alice", "app", "v2")
	if err != nil || string(sc.Body) != `{"code":"v2"}` || string(sc.Meta) != `{"v":"v2"}` || !sc.CreatedAt.Equal(t0.Add(time.Minute)) {
		t.Errorf("GetScript(app@v2) = %+v, %v", sc, err)
	}
	for _, tt := range []struct{ caller, name, version string }{{"bob", "app", "v1"}, {"alice", "app", "v9"}, {"alice", "none", ""}, {"bob", "other", ""}} {
		if _, err := s.GetScript(ctx, tt.caller, tt.name, tt.version); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("GetScript(%s, %s@%s) = %v, want ErrNotFound", tt.caller, tt.name, tt.version, err)
		}
	}
	list, err := s.ListScripts(ctx, "alice")
	if err != nil || len(list) != 2 || list[0].Name != "app" || list[0].Version != "v1" || list[1].Name != "other" || list[0].Body != nil {
		t.Errorf("ListScripts = %+v, %v; want app@v1 and other@x1, without bodies", list, err)
	}
	versions, err := s.ScriptVersions(ctx, "alice", "app")
	if err != nil || len(versions) != 2 || versions[0].Version != "v1" || versions[1].Version != "v2" {
		t.Errorf("ScriptVersions = %+v, %v; want v1 (latest), v2", versions, err)
	}
	if err := s.DeleteScript(ctx, "bob", "other"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("DeleteScript(another caller's) = %v, want ErrNotFound", err)
	}
	if err := s.DeleteScript(ctx, "alice", "app"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetScript(ctx, "alice", "app", "v2"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("GetScript after delete = %v, want ErrNotFound", err)
	}
	if _, err := s.ScriptVersions(ctx, "alice", "app"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("ScriptVersions after delete = %v, want ErrNotFound", err)
	}
	if latest("bob", "app") != "b1" {
		t.Errorf("another caller's script of the same name was touched")
	}
}

// testScriptsBound: a caller's scripts take at most the bound given, their
// meta and bodies counted: a new version past it is ErrScriptsFull,
// whatever its name; one stored before still becomes the latest again;
// another caller has room of its own; deleting frees the room.
func testScriptsBound(t *testing.T, s store.Store) {
	ctx := t.Context()
	const bound = 1000
	put := func(caller, name, version string, size int) error {
		_, err := s.PutScript(ctx, &store.Script{Caller: caller, Name: name, Version: version, CreatedAt: t0,
			Meta: []byte("{}"), Body: []byte(strings.Repeat("x", size-2))}, bound)
		return err
	}
	for i, v := range []string{"v1", "v2", "v3"} {
		if err := put("carol", "big", v, 300); err != nil {
			t.Fatalf("version %d of 300 bytes under a bound of %d = %v", i+1, bound, err)
		}
	}
	for _, tt := range []struct{ name, version string }{{"big", "v4"}, {"another", "a1"}} {
		if err := put("carol", tt.name, tt.version, 200); !errors.Is(err, store.ErrScriptsFull) {
			t.Errorf("%s@%s past the bound = %v, want ErrScriptsFull", tt.name, tt.version, err)
		}
	}
	if err := put("carol", "big", "v1", 300); err != nil {
		t.Errorf("an old version stored again (no new bytes) = %v", err)
	}
	if err := put("dave", "big", "d1", 900); err != nil {
		t.Errorf("another caller's first script = %v, want room of its own", err)
	}
	if err := s.DeleteScript(ctx, "carol", "big"); err != nil {
		t.Fatal(err)
	}
	if err := put("carol", "another", "a1", 900); err != nil {
		t.Errorf("after deleting, a script of 900 bytes = %v", err)
	}
}
