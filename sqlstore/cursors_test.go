package sqlstore_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/underhood/underhood/sqlstore"
	"github.com/underhood/underhood/sqlstore/postgres"
	"github.com/underhood/underhood/sqlstore/sqlite"
	"github.com/underhood/underhood/sqlstore/storetest"
)

// onEachEngine runs test on a new SQLite database and, when DATABASE_URL
// is set, on a new PostgreSQL schema: the statements of the outbox, the
// relay and the webhooks are written once for both.
func onEachEngine(t *testing.T, test func(t *testing.T, s *sqlstore.Store)) {
	t.Helper()
	open := func(t *testing.T, cfg sqlstore.Config) *sqlstore.Store {
		t.Helper()
		s, err := sqlstore.Open(context.Background(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}
	t.Run("sqlite", func(t *testing.T) {
		test(t, open(t, sqlstore.Config{Dialect: sqlite.Dialect{}, Dir: t.TempDir()}))
	})
	t.Run("postgres", func(t *testing.T) {
		test(t, open(t, sqlstore.Config{Dialect: postgres.Dialect{}, DSN: storetest.PostgresDSN(t)}))
	})
}

// appendEvents appends n events of collection c to the outbox.
func appendEvents(t *testing.T, s *sqlstore.Store, c string, n int) {
	t.Helper()
	ctx := context.Background()
	write(t, s, func(q sqlstore.Querier) error {
		last, err := s.LastOutboxSequence(ctx, q, c)
		if err != nil {
			return err
		}
		var rows []sqlstore.OutboxRow
		for i := range n {
			seq := last + int64(i) + 1
			rows = append(rows, sqlstore.OutboxRow{ID: fmt.Sprintf("%s-%d", c, seq), Sequence: seq, Action: "create", CollectionID: c,
				Collection: c, RecordID: "r", Record: []byte(`{}`), Created: time.Now()})
		}
		return s.InsertOutbox(ctx, q, rows)
	})
}

// TestCursorMovesOnlyFromWhereItIs: a consumer starts at the newest event,
// and of two nodes that consumed the same batch from the same position,
// only the first moves the position, so the work of that batch commits
// once.
func TestCursorMovesOnlyFromWhereItIs(t *testing.T) {
	onEachEngine(t, func(t *testing.T, s *sqlstore.Store) {
		ctx := context.Background()
		write(t, s, func(q sqlstore.Querier) error {
			if err := s.CreateOutbox(ctx, q); err != nil {
				return err
			}
			return s.CreateCursorTable(ctx, q)
		})
		appendEvents(t, s, "posts", 3)

		var start int64
		write(t, s, func(q sqlstore.Querier) error {
			var err error
			start, err = s.RegisterCursor(ctx, q, "webhooks")
			return err
		})
		if start != 3 {
			t.Fatalf("RegisterCursor = %d, want 3, the newest event", start)
		}
		appendEvents(t, s, "posts", 2)

		steps := []struct {
			name     string
			from, to int64
			want     bool
		}{
			{"the first node", 3, 5, true},
			{"a second node from the same position", 3, 5, false},
			{"from a position it never had", 4, 5, false},
			{"on from where it is", 5, 6, true},
		}
		for _, st := range steps {
			var moved bool
			write(t, s, func(q sqlstore.Querier) error {
				var err error
				moved, err = s.AdvanceCursor(ctx, q, "webhooks", st.from, st.to)
				return err
			})
			if moved != st.want {
				t.Errorf("AdvanceCursor(%d → %d) by %s = %v, want %v", st.from, st.to, st.name, moved, st.want)
			}
		}
		err := s.Read(ctx, func(q sqlstore.Querier) error {
			pos, err := s.CursorPosition(ctx, q, "webhooks")
			if err != nil || pos != 6 {
				t.Errorf("CursorPosition(webhooks) = %d, %v; want 6", pos, err)
			}
			if _, err := s.CursorPosition(ctx, q, "nats"); !errors.Is(err, sql.ErrNoRows) {
				t.Errorf("CursorPosition(nats) = %v, want sql.ErrNoRows: never registered", err)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	})
}
