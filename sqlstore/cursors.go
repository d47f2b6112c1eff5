package sqlstore

import (
	"context"
	"fmt"
	"time"

	"github.com/underhood/underhood"
)

// This file holds the statements of _eventConsumers, where the relay of
// package events keeps, per named consumer (webhooks, NATS), the outbox
// position it has passed. Nodes sharing a database share the positions.

// CreateCursorTable creates the table of the consumers' positions when it
// is missing.
func (s *Store) CreateCursorTable(ctx context.Context, q Querier) error {
	_, err := q.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS _eventConsumers (
		name     TEXT PRIMARY KEY NOT NULL,
		position BIGINT NOT NULL,
		updated  TEXT NOT NULL
	)`)
	if err != nil {
		return fmt.Errorf("create _eventConsumers: %w", err)
	}
	return nil
}

// CursorPosition returns the position of consumer name; an error that is
// sql.ErrNoRows (errors.Is) when the consumer is not registered.
func (s *Store) CursorPosition(ctx context.Context, q Querier, name string) (int64, error) {
	var pos int64
	if err := q.QueryRowContext(ctx, s.numbered(`SELECT position FROM _eventConsumers WHERE name = $1`), name).Scan(&pos); err != nil {
		return 0, fmt.Errorf("read position of %s: %w", name, err)
	}
	return pos, nil
}

// RegisterCursor registers consumer name at the outbox's newest event
// and returns that position. It reads the position in q's transaction, so
// in a Write no event commits between reading and storing it: the
// consumer gets every event committed after it.
func (s *Store) RegisterCursor(ctx context.Context, q Querier, name string) (int64, error) {
	pos, err := s.OutboxHead(ctx, q)
	if err != nil {
		return 0, err
	}
	_, err = q.ExecContext(ctx, s.numbered(`INSERT INTO _eventConsumers (name, position, updated) VALUES ($1, $2, $3)`),
		name, pos, underhood.FormatTime(time.Now()))
	if err != nil {
		return 0, fmt.Errorf("register consumer %s: %w", name, err)
	}
	return pos, nil
}

// AdvanceCursor moves consumer name from position from to position to,
// only if it is still at from, and reports whether it did. Nodes sharing
// the database run the same consumers: the condition is the
// compare-and-set that lets the work committed with a move commit once.
func (s *Store) AdvanceCursor(ctx context.Context, q Querier, name string, from, to int64) (bool, error) {
	res, err := q.ExecContext(ctx, s.numbered(`UPDATE _eventConsumers SET position = $1, updated = $2 WHERE name = $3 AND position = $4`),
		to, underhood.FormatTime(time.Now()), name, from)
	if err != nil {
		return false, fmt.Errorf("move position of %s: %w", name, err)
	}
	return changedOne(res, "move position of "+name)
}
