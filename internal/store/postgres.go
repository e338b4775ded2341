package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5/pgconn"
	_ "github.com/jackc/pgx/v5/stdlib" // the pgx driver for database/sql, "pgx"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"
)

// OpenPostgres connects to the PostgreSQL database at url (postgres://…)
// and applies its migrations, under a session lock so that gateways starting
// together migrate once. Any number of gateways may share the database.
func OpenPostgres(ctx context.Context, url string) (Store, error) {
	db, err := sql.Open("pgx", url)
	if err != nil {
		return nil, fmt.Errorf("storage: %w", withoutURL(err))
	}
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("storage: postgres: %w", withoutURL(err))
	}
	locker, err := lock.NewPostgresSessionLocker()
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("storage: %w", err)
	}
	if err := migrate(ctx, db, goose.DialectPostgres, "postgres", goose.WithSessionLocker(locker)); err != nil {
		db.Close()
		return nil, fmt.Errorf("storage: postgres: %w", err)
	}
	st := &sqlStore{db: db, postgres: true}
	if err := st.loadCursorKey(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("storage: postgres: %w", err)
	}
	return st, nil
}

// errUnparsableURL replaces pgx's error for a URL it cannot parse: that
// error quotes the URL with the password masked only on a best-effort
// basis (a password with an unescaped @ shows through), and the gateway
// prints it when it cannot start.
var errUnparsableURL = errors.New("storage.url cannot be parsed as a postgres:// URL " +
	"(percent-encode any @, :, /, # or space in the user name or password)")

// withoutURL returns err, or errUnparsableURL if err would quote the URL.
func withoutURL(err error) error {
	var pe *pgconn.ParseConfigError
	if errors.As(err, &pe) {
		return errUnparsableURL
	}
	return err
}
