package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/underhood/underhood"
)

// This file holds the statements of the outbox, the table _events that
// record.Service appends every committed change to (record/outbox.go)
// and that the relay of package events reads in order. Its id is the
// global sequence of the events: with one writer at a time, ids commit in
// increasing order.

// OutboxTable is the system table of the outbox.
const OutboxTable = "_events"

// OutboxRow is one event as the outbox stores it.
type OutboxRow struct {
	Position     int64  // the row id: set by the database, in commit order
	ID           string // the event id
	Sequence     int64  // the per-collection sequence, from 1
	Action       string
	CollectionID string
	Collection   string // the collection's name at the time of the change
	RecordID     string
	Record       json.RawMessage
	Created      time.Time
}

// outboxChunk bounds the events one INSERT writes, and so the number of
// statements of different lengths a connection prepares.
const outboxChunk = 64

// CreateOutbox creates the outbox table and its indexes when they are
// missing, under the schema lock, so that nodes starting together create
// them once.
func (s *Store) CreateOutbox(ctx context.Context, q Querier) error {
	// The id never comes again, even after retention has emptied the table.
	id := "id INTEGER PRIMARY KEY AUTOINCREMENT"
	if s.dialect.Name() != "sqlite" {
		id = "id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY"
	}
	stmts := []string{
		`CREATE TABLE IF NOT EXISTS _events (
			` + id + `,
			eventId      TEXT NOT NULL,
			collectionId TEXT NOT NULL,
			collection   TEXT NOT NULL,
			seq          BIGINT NOT NULL,
			action       TEXT NOT NULL,
			recordId     TEXT NOT NULL,
			record       TEXT NOT NULL,
			created      TEXT NOT NULL
		)`,
		`CREATE UNIQUE INDEX IF NOT EXISTS idx_events_seq ON _events (collectionId, seq)`,
		`CREATE INDEX IF NOT EXISTS idx_events_created ON _events (created)`,
	}
	if err := s.LockSchema(ctx, q); err != nil {
		return err
	}
	for _, st := range stmts {
		if _, err := q.ExecContext(ctx, st); err != nil {
			return fmt.Errorf("create outbox: %w", err)
		}
	}
	return nil
}

// LastOutboxSequence returns the largest sequence number stored for the
// events of collection id (0 when there is none).
func (s *Store) LastOutboxSequence(ctx context.Context, q Querier, collectionID string) (int64, error) {
	var n int64
	err := ScanRow(ctx, q, s.numbered(`SELECT COALESCE(MAX(seq), 0) FROM _events WHERE collectionId = $1`), []any{collectionID}, &n)
	if err != nil {
		return 0, fmt.Errorf("read outbox sequence: %w", err)
	}
	return n, nil
}

// InsertOutbox appends rows to the outbox in their order, a chunk of them
// per statement. Their positions are left to the database.
func (s *Store) InsertOutbox(ctx context.Context, q Querier, rows []OutboxRow) error {
	for len(rows) > 0 {
		chunk := rows[:min(len(rows), outboxChunk)]
		rows = rows[len(chunk):]
		args := make([]any, 0, 8*len(chunk))
		for _, r := range chunk {
			// The record goes in as text: bytes would be a BLOB on SQLite.
			args = append(args, r.ID, r.CollectionID, r.Collection, r.Sequence, r.Action, r.RecordID, string(r.Record), underhood.FormatTime(r.Created))
		}
		if _, err := q.ExecContext(ctx, s.outboxInsert(len(chunk)), args...); err != nil {
			return fmt.Errorf("write outbox: %w", err)
		}
	}
	return nil
}

// outboxInsert returns the statement that inserts n events.
func (s *Store) outboxInsert(n int) string {
	var b strings.Builder
	b.WriteString(`INSERT INTO _events (eventId, collectionId, collection, seq, action, recordId, record, created) VALUES `)
	for i := range n {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteByte('(')
		for j := range 8 {
			if j > 0 {
				b.WriteString(", ")
			}
			b.WriteString(s.ph(8*i + j + 1))
		}
		b.WriteByte(')')
	}
	return b.String()
}

const outboxColumns = `id, eventId, seq, action, collectionId, collection, recordId, record, created`

// OutboxAfter returns up to limit events after position after, in order.
func (s *Store) OutboxAfter(ctx context.Context, q Querier, after int64, limit int) ([]OutboxRow, error) {
	return s.queryOutbox(ctx, q, `SELECT `+outboxColumns+` FROM _events WHERE id > $1 ORDER BY id LIMIT $2`, after, limit)
}

// OutboxBetween returns up to limit events created between from and to
// (inclusive) after position after, in order.
func (s *Store) OutboxBetween(ctx context.Context, q Querier, from, to time.Time, after int64, limit int) ([]OutboxRow, error) {
	return s.queryOutbox(ctx, q, `SELECT `+outboxColumns+` FROM _events WHERE created >= $1 AND created <= $2 AND id > $3 ORDER BY id LIMIT $4`,
		underhood.FormatTime(from), underhood.FormatTime(to), after, limit)
}

// OutboxEvent returns the event whose event id is id; sql.ErrNoRows when
// the outbox does not hold it.
func (s *Store) OutboxEvent(ctx context.Context, q Querier, id string) (OutboxRow, error) {
	list, err := s.queryOutbox(ctx, q, `SELECT `+outboxColumns+` FROM _events WHERE eventId = $1 LIMIT 1`, id)
	if err != nil {
		return OutboxRow{}, err
	}
	if len(list) == 0 {
		return OutboxRow{}, sql.ErrNoRows
	}
	return list[0], nil
}

// queryOutbox runs query, written with $n parameters, through the
// statement cache: the relay runs the same one again and again.
func (s *Store) queryOutbox(ctx context.Context, q Querier, query string, args ...any) ([]OutboxRow, error) {
	var out []OutboxRow
	err := ScanRows(ctx, q, s.numbered(query), args, func(rows *sql.Rows) error {
		var (
			e       OutboxRow
			created string
		)
		if err := rows.Scan(&e.Position, &e.ID, &e.Sequence, &e.Action, &e.CollectionID, &e.Collection, &e.RecordID, (*[]byte)(&e.Record), &created); err != nil {
			return err
		}
		e.Created, _ = underhood.ParseTime(created)
		out = append(out, e)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read outbox: %w", err)
	}
	return out, nil
}

// OutboxHead returns the position of the newest event (0 when none). Read
// in a write transaction, it is the position before every event that
// commits after that transaction.
func (s *Store) OutboxHead(ctx context.Context, q Querier) (int64, error) {
	var n int64
	if err := q.QueryRowContext(ctx, `SELECT COALESCE(MAX(id), 0) FROM _events`).Scan(&n); err != nil {
		return 0, fmt.Errorf("read outbox head: %w", err)
	}
	return n, nil
}

// TrimOutbox deletes the events at or before position upTo created before
// before, except each collection's newest event, which its sequence goes
// on from. It returns how many it deleted.
func (s *Store) TrimOutbox(ctx context.Context, q Querier, upTo int64, before time.Time) (int64, error) {
	res, err := q.ExecContext(ctx, s.numbered(`DELETE FROM _events WHERE id <= $1 AND created < $2
		AND id NOT IN (SELECT MAX(id) FROM _events GROUP BY collectionId)`), upTo, underhood.FormatTime(before))
	if err != nil {
		return 0, fmt.Errorf("trim outbox: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("trim outbox: %w", err)
	}
	return n, nil
}
