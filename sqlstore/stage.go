package sqlstore

import (
	"context"
	"errors"
)

// A Stage collects values that the writes of a transaction add (the
// outbox's events) and writes them all at once, in the order they were
// added, just before the transaction commits: on a server engine one
// statement for a whole group commit instead of one round trip per write.
// The values of a write whose savepoint is rolled back (an error or a
// panic) are dropped with it. When writing them fails, the transaction
// fails and every write of it gets the error.
type Stage[T any] struct {
	store *Store
	flush func(ctx context.Context, q Querier, values []T) error
	write []T // added by the running write
	batch []T // added by the writes of the running transaction released so far
}

// stager is a Stage as the writer sees it. Only the writer goroutine
// calls its methods.
type stager interface {
	beginTransaction()
	endWrite(ok bool)
	staged() bool
	flushStaged(ctx context.Context, q Querier) error
}

// NewStage returns a Stage of s whose values flush writes with q, in the
// transaction that is about to commit. Stages are meant to be made once,
// before the writes that use them.
func NewStage[T any](s *Store, flush func(ctx context.Context, q Querier, values []T) error) *Stage[T] {
	st := &Stage[T]{store: s, flush: flush}
	s.stagesMu.Lock()
	s.stages = append(s.stages[:len(s.stages):len(s.stages)], st)
	s.stagesMu.Unlock()
	return st
}

// errNotWriting is the error of a Stage used outside a Write.
var errNotWriting = errors.New("sqlstore: staged outside a write")

// Add stages v in the write running on q, the Querier of a Write fn.
func (st *Stage[T]) Add(q Querier, v T) error {
	if !st.store.isWriter(q) {
		return errNotWriting
	}
	st.write = append(st.write, v)
	return nil
}

func (st *Stage[T]) beginTransaction() {
	clear(st.write)
	clear(st.batch)
	st.write, st.batch = st.write[:0], st.batch[:0]
}

func (st *Stage[T]) endWrite(ok bool) {
	if ok {
		st.batch = append(st.batch, st.write...)
	}
	clear(st.write)
	st.write = st.write[:0]
}

func (st *Stage[T]) staged() bool { return len(st.batch) > 0 }

func (st *Stage[T]) flushStaged(ctx context.Context, q Querier) error {
	return st.flush(ctx, q, st.batch)
}

// loadStages returns the stages made so far.
func (s *Store) loadStages() []stager {
	s.stagesMu.Lock()
	defer s.stagesMu.Unlock()
	return s.stages
}

// isWriter reports whether q is the Querier of a fn the writer runs.
func (s *Store) isWriter(q Querier) bool {
	cq, ok := q.(*querier)
	return ok && cq.detach && cq.cn == s.writer
}

// flushStages writes what the stages hold, before the COMMIT. pending are
// the statements that end the savepoint of the last write: when it was
// released (lastOK), the values are written inside it and pending is
// returned to be sent with the COMMIT; otherwise pending is sent first.
func (s *Store) flushStages(ctx context.Context, w *conn, stages []stager, pending []string, lastOK bool) ([]string, error) {
	staged := false
	for _, st := range stages {
		staged = staged || st.staged()
	}
	if !staged {
		return pending, nil
	}
	if !lastOK {
		if err := s.control(ctx, w, pending); err != nil {
			return nil, err
		}
		pending = pending[:0]
	}
	q := &querier{cn: w, detach: true, ctx: ctx}
	for _, st := range stages {
		if !st.staged() {
			continue
		}
		if err := st.flushStaged(ctx, q); err != nil {
			return nil, err
		}
	}
	return pending, nil
}
