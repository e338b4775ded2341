package storetest

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver "pgx"

	"github.com/dynamic-workers/gateway/internal/testwait"
)

// Postgres is a private PostgreSQL server for tests: a fresh cluster in a
// temporary directory, reachable only through a Unix socket there. Start it
// once per test binary (in TestMain) and Stop it after the tests.
type Postgres struct {
	dir      string
	bin      string
	asUser   string // run the server's commands as this user ("" = as we are)
	uid, gid int    // asUser's ids
	port     int
	server   *exec.Cmd
	created  atomic.Int64
}

var (
	pgOnce   sync.Once
	pgShared *Postgres
	pgErr    error
)

// SharedPostgres starts the binary's server on first use. StopShared stops it.
func SharedPostgres() (*Postgres, error) {
	pgOnce.Do(func() { pgShared, pgErr = StartPostgres() })
	return pgShared, pgErr
}

// StopShared stops the server SharedPostgres started, if it did.
func StopShared() {
	if pgShared != nil {
		pgShared.Stop()
	}
}

// binDir finds the directory of initdb and pg_ctl: on PATH, or Debian's
// /usr/lib/postgresql/<version>/bin.
func binDir() (string, error) {
	if p, err := exec.LookPath("initdb"); err == nil {
		return filepath.Dir(p), nil
	}
	matches, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb")
	if len(matches) == 0 {
		return "", errors.New("PostgreSQL server binaries (initdb, pg_ctl) not found: install the postgresql package (make test installs it when missing: make system-deps)")
	}
	return filepath.Dir(matches[len(matches)-1]), nil
}

// StartPostgres initialises a cluster and starts its server. initdb refuses
// to run as root, so as root the cluster belongs to the postgres user.
func StartPostgres() (*Postgres, error) {
	bin, err := binDir()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "gateway-pg-")
	if err != nil {
		return nil, err
	}
	p := &Postgres{dir: dir, bin: bin, port: 20000 + os.Getpid()%20000}
	if os.Getuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			return nil, fmt.Errorf("running as root needs the postgres user to own the test cluster: %w", err)
		}
		p.uid, _ = strconv.Atoi(u.Uid)
		p.gid, _ = strconv.Atoi(u.Gid)
		if err := os.Chown(dir, p.uid, p.gid); err != nil {
			return nil, err
		}
		p.asUser = "postgres"
	}
	data := filepath.Join(dir, "data")
	if out, err := p.command("initdb", "-D", data, "-A", "trust", "-U", "postgres", "--no-sync").CombinedOutput(); err != nil {
		return nil, fmt.Errorf("initdb: %w: %s", err, out)
	}
	// The server runs as our child, not daemonized by pg_ctl: it stops
	// with the test binary, even one that panics (see serverAttr).
	p.server = exec.Command(filepath.Join(bin, "postgres"), "-D", data, "-p", strconv.Itoa(p.port), "-k", dir,
		"-c", "listen_addresses=", "-c", "fsync=off", "-c", "max_connections=200")
	p.server.SysProcAttr = serverAttr(p.uid, p.gid, p.asUser != "")
	log, err := os.Create(filepath.Join(dir, "log"))
	if err != nil {
		return nil, err
	}
	p.server.Stdout, p.server.Stderr = log, log
	if err := p.server.Start(); err != nil {
		return nil, fmt.Errorf("start postgres: %w", err)
	}
	if err := p.waitReady(); err != nil {
		p.Stop()
		out, _ := os.ReadFile(filepath.Join(dir, "log"))
		return nil, fmt.Errorf("postgres did not start: %w\n%s", err, out)
	}
	return p, nil
}

func (p *Postgres) command(name string, args ...string) *exec.Cmd {
	path := filepath.Join(p.bin, name)
	if p.asUser != "" {
		return exec.Command("runuser", append([]string{"-u", p.asUser, "--", path}, args...)...)
	}
	return exec.Command(path, args...)
}

// URL is the connection URL of database name.
func (p *Postgres) URL(name string) string {
	return fmt.Sprintf("postgres://postgres@/%s?host=%s&port=%d", name, p.dir, p.port)
}

// NewDatabase creates an empty database and returns its URL.
func (p *Postgres) NewDatabase(t testing.TB) string {
	t.Helper()
	db, err := sql.Open("pgx", p.URL("postgres"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	name := fmt.Sprintf("test_%d", p.created.Add(1))
	if _, err := db.ExecContext(context.Background(), "CREATE DATABASE "+name); err != nil {
		t.Fatalf("create database: %v", err)
	}
	return p.URL(name)
}

// waitReady waits until the server accepts connections, for 30s at most:
// its start signals nothing, so it asks again and again.
func (p *Postgres) waitReady() error {
	var err error
	testwait.Until(30*time.Second, func() bool {
		var db *sql.DB
		db, err = sql.Open("pgx", p.URL("postgres"))
		if err == nil {
			err = db.Ping()
			db.Close()
		}
		return err == nil
	})
	return err
}

// Stop stops the server (immediate shutdown) and deletes its cluster.
func (p *Postgres) Stop() {
	if p.server != nil && p.server.Process != nil {
		_ = p.server.Process.Signal(syscall.SIGQUIT)
		_ = p.server.Wait()
	}
	_ = os.RemoveAll(p.dir)
}
