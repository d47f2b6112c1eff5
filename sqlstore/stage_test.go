package sqlstore

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// stageTo returns a stage that writes its values to the table staged,
// noting each flush, and fails while *fail is set.
func stageTo(s *Store, flushes *[][]string, fail *bool) *Stage[string] {
	return NewStage(s, func(ctx context.Context, q Querier, values []string) error {
		*flushes = append(*flushes, append([]string(nil), values...))
		if *fail {
			return errors.New("flush refused")
		}
		for _, v := range values {
			if _, err := q.ExecContext(ctx, `INSERT INTO staged (v) VALUES (?)`, v); err != nil {
				return err
			}
		}
		return nil
	})
}

func texts(t *testing.T, s *Store, query string) []string {
	t.Helper()
	var out []string
	err := s.Read(context.Background(), func(q Querier) error {
		rows, err := q.QueryContext(context.Background(), query)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var v string
			if err := rows.Scan(&v); err != nil {
				return err
			}
			out = append(out, v)
		}
		return rows.Err()
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestStageWritesWhatCommittedWritesAdded checks that the values the
// writes of a group commit stage are written once, in order, inside the
// transaction, without those of the writes that failed, whether the last
// write of the transaction succeeded or failed.
func TestStageWritesWhatCommittedWritesAdded(t *testing.T) {
	tests := []struct {
		kinds []string // per write: "" succeeds, "error" or "panic" fails
		want  []string // staged values written
	}{
		{[]string{"", "error", "", "panic", ""}, []string{"w0.a", "w0.b", "w2.a", "w2.b", "w4.a", "w4.b"}},
		{[]string{"", "", "error"}, []string{"w0.a", "w0.b", "w1.a", "w1.b"}},
		{[]string{"panic", "error"}, nil},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.kinds, ","), func(t *testing.T) {
			s := openTestStore(t, t.TempDir())
			defer s.Close()
			ctx := context.Background()
			mustExec(t, s, `CREATE TABLE t (v TEXT)`, `CREATE TABLE staged (v TEXT)`)
			var flushes [][]string
			fail := false
			stage := stageTo(s, &flushes, &fail)

			release := blockWriter(t, s)
			var wg sync.WaitGroup
			for i, kind := range tt.kinds {
				wg.Add(1)
				go func() {
					defer wg.Done()
					defer func() {
						if p := recover(); p != nil && kind != "panic" {
							t.Errorf("write %d panicked: %v", i, p)
						}
					}()
					err := s.Write(ctx, func(q Querier) error {
						for _, suffix := range []string{"a", "b"} {
							if err := stage.Add(q, fmt.Sprintf("w%d.%s", i, suffix)); err != nil {
								return err
							}
						}
						if _, err := q.ExecContext(ctx, `INSERT INTO t (v) VALUES (?)`, fmt.Sprint("w", i)); err != nil {
							return err
						}
						switch kind {
						case "error":
							return errors.New("refused")
						case "panic":
							panic("boom")
						}
						return nil
					})
					if (err == nil) != (kind == "") {
						t.Errorf("write %d (%q) = %v", i, kind, err)
					}
				}()
				waitQueued()
			}
			release()
			wg.Wait()
			var want [][]string
			if tt.want != nil {
				want = [][]string{tt.want}
			}
			if !cmp.Equal(flushes, want) {
				t.Errorf("flushes = %v, want %v", flushes, want)
			}
			if got := texts(t, s, `SELECT v FROM staged ORDER BY rowid`); !cmp.Equal(got, tt.want) {
				t.Errorf("staged rows = %v, want %v", got, tt.want)
			}
		})
	}
}

// TestStageFailureFailsTheTransaction checks that when the staged values
// cannot be written, no write of the transaction commits and each of them
// gets an error, and that the next transaction starts with an empty stage.
func TestStageFailureFailsTheTransaction(t *testing.T) {
	s := openTestStore(t, t.TempDir())
	defer s.Close()
	ctx := context.Background()
	mustExec(t, s, `CREATE TABLE t (v TEXT)`, `CREATE TABLE staged (v TEXT)`)
	var flushes [][]string
	fail := true
	stage := stageTo(s, &flushes, &fail)
	write := func(v string) error {
		return s.Write(ctx, func(q Querier) error {
			if err := stage.Add(q, v); err != nil {
				return err
			}
			_, err := q.ExecContext(ctx, `INSERT INTO t (v) VALUES (?)`, v)
			return err
		})
	}

	release := blockWriter(t, s)
	var wg sync.WaitGroup
	errs := make([]error, 3)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = write(fmt.Sprint("v", i))
		}()
	}
	waitQueued()
	release()
	wg.Wait()
	for i, err := range errs {
		if err == nil {
			t.Errorf("write %d = nil, want the error of the flush", i)
		}
	}
	if got := texts(t, s, `SELECT v FROM t`); len(got) != 0 {
		t.Errorf("rows after a failed flush = %v, want none", got)
	}

	fail = false
	if err := write("next"); err != nil {
		t.Fatalf("write after a failed flush = %v", err)
	}
	if got, want := flushes[len(flushes)-1], []string{"next"}; !cmp.Equal(got, want) {
		t.Errorf("next flush = %v, want %v", got, want)
	}
	if got, want := texts(t, s, `SELECT v FROM staged`), []string{"next"}; !cmp.Equal(got, want) {
		t.Errorf("staged rows = %v, want %v", got, want)
	}
}

// TestStageAddOutsideAWrite checks that only the Querier of a Write can
// stage values: a Read's values would never be written.
func TestStageAddOutsideAWrite(t *testing.T) {
	s := openTestStore(t, t.TempDir())
	defer s.Close()
	stage := NewStage(s, func(context.Context, Querier, []int) error { return nil })
	err := s.Read(context.Background(), func(q Querier) error { return stage.Add(q, 1) })
	if err == nil {
		t.Errorf("Stage.Add in a Read = nil, want an error")
	}
}
