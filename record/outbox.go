package record

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/underhood/underhood"
	"github.com/underhood/underhood/sqlstore"
)

// The outbox: every committed change is also a row of the system table
// _events, appended by the write's own transaction, so a change and its
// event commit together or not at all. The events of a group commit are
// staged until it is about to commit and written together, numbered then
// (writeOutbox). Consumers that must not miss an event (webhooks, other
// nodes) read the table after the commit, in the order of its id, which
// is the global sequence: with one writer, ids commit in increasing
// order, so a reader that has seen id n has seen every event before it.
//
// The record an event carries is presented as a superuser sees it, minus
// password hashes and token keys. Changes of the auth state collections
// (one-time passwords, MFA, TOTP secrets, external auths, auth origins)
// stay in the process: they are not events anyone outside should get.

// OutboxTable is the system table of the outbox.
const OutboxTable = sqlstore.OutboxTable

// OutboxEvent is one event as the outbox keeps it.
type OutboxEvent struct {
	Position     int64  // the global sequence: the row id, in commit order
	ID           string // unique event id
	Sequence     int64  // per-collection sequence, from 1
	Action       string // "create" | "update" | "delete"
	CollectionID string
	Collection   string // the collection's name at the time of the change
	RecordID     string
	Record       json.RawMessage // presented as a superuser sees it, minus password and tokenKey
	Created      time.Time
}

// JSON returns the event as its consumers receive it.
func (e *OutboxEvent) JSON() []byte {
	b := make([]byte, 0, 160+len(e.Record))
	b = append(b, `{"id":`...)
	b = underhood.AppendJSONString(b, e.ID)
	b = append(b, `,"position":`...)
	b = fmt.Appendf(b, "%d", e.Position)
	b = append(b, `,"sequence":`...)
	b = fmt.Appendf(b, "%d", e.Sequence)
	b = append(b, `,"action":`...)
	b = underhood.AppendJSONString(b, e.Action)
	b = append(b, `,"collectionId":`...)
	b = underhood.AppendJSONString(b, e.CollectionID)
	b = append(b, `,"collection":`...)
	b = underhood.AppendJSONString(b, e.Collection)
	b = append(b, `,"created":`...)
	b = underhood.AppendJSONString(b, underhood.FormatTime(e.Created))
	b = append(b, `,"record":`...)
	b = append(b, e.Record...)
	return append(b, '}')
}

// outboxSkips are the collections whose changes stay out of the outbox.
var outboxSkips = map[string]bool{MFAsName: true, OTPsName: true, ExternalAuthsName: true, AuthOriginsName: true, TOTPsName: true}

// initOutbox creates the outbox table when it is missing.
func (s *Service) initOutbox(ctx context.Context) error {
	err := s.store.Write(ctx, func(q sqlstore.Querier) error { return s.store.CreateOutbox(ctx, q) })
	if err != nil {
		return err
	}
	s.outbox = sqlstore.NewStage(s.store, s.writeOutbox)
	return nil
}

// outboxRow is an event staged for the outbox until its transaction is
// about to commit.
type outboxRow struct {
	event        *underhood.Event // its Sequence is set when it is written
	collectionID string
	collection   string
	recordID     string
	record       []byte
	created      time.Time
}

// appendOutbox stages the event e of a change of r in the write's
// transaction q; its sequence is set when the outbox is written, before
// the transaction commits.
func (s *Service) appendOutbox(q sqlstore.Querier, e *underhood.Event, r *underhood.Record) error {
	c := r.Collection
	if outboxSkips[c.Name] || s.outbox == nil {
		return nil
	}
	row := &outboxRow{event: e, collectionID: c.ID, collection: c.Name, recordID: r.ID(),
		record: encodeEventRecord(r), created: s.now()}
	if err := s.outbox.Add(q, row); err != nil {
		return fmt.Errorf("append event: %w", err)
	}
	return nil
}

// writeOutbox writes the events the writes of a transaction staged, in
// their order, just before it commits: a few statements for a whole group
// commit. Each collection's events are numbered after its last number,
// which the writer remembers or reads here, inside the transaction, so a
// write rolled back (its events dropped) leaves no gap. Retention keeps
// each collection's last event, so the sequence never starts over.
func (s *Service) writeOutbox(ctx context.Context, q sqlstore.Querier, rows []*outboxRow) error {
	last := map[string]int64{}
	for _, row := range rows {
		n, ok := last[row.collectionID]
		if !ok {
			var err error
			if n, err = s.lastOutboxSequence(ctx, q, row.collectionID); err != nil {
				return err
			}
		}
		n++
		last[row.collectionID] = n
		row.event.Sequence = n
	}
	out := make([]sqlstore.OutboxRow, len(rows))
	for i, row := range rows {
		e := row.event
		out[i] = sqlstore.OutboxRow{ID: e.ID, Sequence: e.Sequence, Action: e.Action, CollectionID: row.collectionID,
			Collection: row.collection, RecordID: row.recordID, Record: row.record, Created: row.created}
	}
	if err := s.store.InsertOutbox(ctx, q, out); err != nil {
		return err
	}
	for id, n := range last {
		s.store.TookFromSequence(ctx, q, OutboxTable+" "+id, n)
	}
	return nil
}

// lastOutboxSequence returns the last sequence number of the events of
// collection id: from the writer's memory, or from the outbox.
func (s *Service) lastOutboxSequence(ctx context.Context, q sqlstore.Querier, id string) (int64, error) {
	if n, ok := s.store.LastInSequence(ctx, q, OutboxTable+" "+id); ok {
		return n, nil
	}
	return s.store.LastOutboxSequence(ctx, q, id)
}

// ReadOutbox returns up to limit events after position, in order.
func (s *Service) ReadOutbox(ctx context.Context, after int64, limit int) ([]OutboxEvent, error) {
	return s.readOutbox(ctx, func(q sqlstore.Querier) ([]sqlstore.OutboxRow, error) {
		return s.store.OutboxAfter(ctx, q, after, limit)
	})
}

// OutboxBetween returns up to limit events committed between from and to
// (inclusive) after position, in order: the events a replay of that time
// range sends again, as far as retention kept them.
func (s *Service) OutboxBetween(ctx context.Context, from, to time.Time, after int64, limit int) ([]OutboxEvent, error) {
	return s.readOutbox(ctx, func(q sqlstore.Querier) ([]sqlstore.OutboxRow, error) {
		return s.store.OutboxBetween(ctx, q, from, to, after, limit)
	})
}

// OutboxEventByID returns the event with the given event id.
func (s *Service) OutboxEventByID(ctx context.Context, id string) (*OutboxEvent, error) {
	var row sqlstore.OutboxRow
	err := s.store.Read(ctx, func(q sqlstore.Querier) error {
		var err error
		row, err = s.store.OutboxEvent(ctx, q, id)
		return err
	})
	if errors.Is(err, sql.ErrNoRows) {
		return nil, errNotFound()
	}
	if err != nil {
		return nil, err
	}
	e := OutboxEvent(row)
	return &e, nil
}

// readOutbox runs read in a Read and returns its rows as events.
func (s *Service) readOutbox(ctx context.Context, read func(q sqlstore.Querier) ([]sqlstore.OutboxRow, error)) ([]OutboxEvent, error) {
	var rows []sqlstore.OutboxRow
	err := s.store.Read(ctx, func(q sqlstore.Querier) error {
		var err error
		rows, err = read(q)
		return err
	})
	if err != nil {
		return nil, err
	}
	// An event has the fields of its row, so a row converts to it.
	out := make([]OutboxEvent, len(rows))
	for i, row := range rows {
		out[i] = OutboxEvent(row)
	}
	return out, nil
}

// OutboxHead returns the position of the newest event (0 when none).
func (s *Service) OutboxHead(ctx context.Context) (int64, error) {
	var n int64
	err := s.store.Read(ctx, func(q sqlstore.Querier) error {
		var err error
		n, err = s.store.OutboxHead(ctx, q)
		return err
	})
	return n, err
}

// TrimOutbox deletes the events at or before position upTo that are older
// than before, keeping each collection's newest event (the base of its
// sequence). It returns how many it deleted.
func (s *Service) TrimOutbox(ctx context.Context, upTo int64, before time.Time) (int64, error) {
	var n int64
	err := s.store.Write(ctx, func(q sqlstore.Querier) error {
		var err error
		n, err = s.store.TrimOutbox(ctx, q, upTo, before)
		return err
	})
	return n, err
}

// DecodeEventRecord returns the record of an outbox event with its values
// in their Go form, for rule and filter checks. A field the collection no
// longer has is dropped; a collection that no longer exists is ENotFound.
func (s *Service) DecodeEventRecord(e *OutboxEvent) (*underhood.Record, error) {
	c, err := s.Collection(e.CollectionID)
	if err != nil {
		return nil, err
	}
	var raw map[string]any
	dec := json.NewDecoder(bytes.NewReader(e.Record))
	if err := dec.Decode(&raw); err != nil {
		return nil, fmt.Errorf("decode event %s: %w", e.ID, err)
	}
	r := underhood.NewRecord(c)
	for _, f := range c.Fields {
		v, ok := raw[f.Name]
		if !ok {
			continue
		}
		nv, err := NormalizeValue(f, v)
		if err != nil {
			continue
		}
		r.Data[f.Name] = nv
	}
	if _, ok := r.Data["id"]; !ok {
		r.Data["id"] = e.RecordID
	}
	return r, nil
}
