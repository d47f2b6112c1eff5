package postgres

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"
)

// channel is the LISTEN/NOTIFY channel of Underhood's change notices.
const channel = "underhood"

// NotifyStatement sends the change notice $1 to every node listening on
// the database, when the transaction it runs in commits.
func (Dialect) NotifyStatement() string { return "SELECT pg_notify('" + channel + "', $1)" }

// Listen receives the change notices of the database at dsn until ctx
// ends, calling notify with each payload, on a connection of its own that
// it opens again (with a growing pause, up to 2s) whenever it is lost.
// After every (re)connection it calls notify("") first: notices sent while
// it was not listening are lost, so the caller reloads what it caches.
func (Dialect) Listen(ctx context.Context, dsn string, notify func(payload string)) {
	pause := 100 * time.Millisecond
	for ctx.Err() == nil {
		if listenOnce(ctx, dsn, notify) {
			pause = 100 * time.Millisecond // it was connected: retry soon
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(pause):
		}
		pause = min(2*pause, 2*time.Second)
	}
}

// listenOnce listens on one connection until it fails; connected reports
// whether it got as far as listening.
func listenOnce(ctx context.Context, dsn string, notify func(payload string)) (connected bool) {
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return false
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, "LISTEN "+channel); err != nil {
		return false
	}
	notify("")
	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			return true
		}
		notify(n.Payload)
	}
}
