package sqlstore

import "context"

// Sequences are gapless counters that writes take numbers from inside
// their transaction (the outbox numbers the events of each collection).
// The last number taken can be read from the database (the largest one
// stored), which costs a query in every transaction; the writer remembers
// instead the last number of each sequence it has seen and counts on from
// there, as long as no other process may have written to the database
// since (Dialect.DataVersion). A number counts as taken only once the
// write that took it has released its savepoint and its transaction has
// committed, so a write that fails leaves neither a gap nor a number taken
// twice. The flush of the stages (stage.go) takes numbers as a write of
// its own, after the others.

// sequences is the writer's memory of the sequences. Only the writer
// goroutine uses it: in runBatch, and in the fns and flushes it runs.
type sequences struct {
	committed map[string]int64 // the last number of each known sequence
	batch     map[string]int64 // taken by the released writes of the running transaction
	write     map[string]int64 // taken by the running write
	// checked is set once the running transaction has read the data
	// version, which was version.
	checked bool
	version int64
}

// last returns the last number taken from sequence name.
func (sq *sequences) last(name string) (int64, bool) {
	if n, ok := sq.write[name]; ok {
		return n, true
	}
	if n, ok := sq.batch[name]; ok {
		return n, true
	}
	n, ok := sq.committed[name]
	return n, ok
}

// take records that the running write took the numbers of sequence name
// up to n.
func (sq *sequences) take(name string, n int64) {
	if sq.write == nil {
		sq.write = map[string]int64{}
	}
	sq.write[name] = n
}

// beginTransaction starts the bookkeeping of a write transaction.
func (sq *sequences) beginTransaction() {
	sq.checked, sq.batch, sq.write = false, nil, nil
}

// endWrite keeps the numbers of the write that just ran when its
// savepoint is released (ok) and forgets them when it is rolled back.
func (sq *sequences) endWrite(ok bool) {
	if ok {
		if sq.batch == nil {
			sq.batch = sq.write
		} else {
			for name, n := range sq.write {
				sq.batch[name] = n
			}
		}
	}
	sq.write = nil
}

// committedTransaction keeps the numbers of the transaction that just
// committed.
func (sq *sequences) committedTransaction() {
	if sq.committed == nil {
		sq.committed = map[string]int64{}
	}
	for name, n := range sq.batch {
		sq.committed[name] = n
	}
	sq.batch, sq.write = nil, nil
}

// forget drops everything: after a transaction failed at a point where
// it is not known what it left behind, the sequences are computed in SQL
// again.
func (sq *sequences) forget() {
	sq.committed, sq.batch, sq.write = nil, nil, nil
}

// LastInSequence returns the last number taken from sequence name, in the
// write transaction of q, when the writer knows it. ok is false when it
// does not (the sequence was not used since the store opened, another
// process may have written to the database since, or q is not the Querier
// of a Write): the caller then reads it from the database.
func (s *Store) LastInSequence(ctx context.Context, q Querier, name string) (last int64, ok bool) {
	if !s.sequencesUsable(ctx, q) {
		return 0, false
	}
	return s.seqs.last(name)
}

// TookFromSequence records that the write running on q took the numbers
// of sequence name up to last.
func (s *Store) TookFromSequence(ctx context.Context, q Querier, name string, last int64) {
	if s.sequencesUsable(ctx, q) {
		s.seqs.take(name, last)
	}
}

// sequencesUsable reports whether q is the querier of a fn the writer runs
// and the writer may count numbers of sequences itself: once per
// transaction it reads the data version, and forgets every sequence when
// another process has written since it last read it.
func (s *Store) sequencesUsable(ctx context.Context, q Querier) bool {
	query := s.dialect.DataVersion()
	if query == "" || !s.isWriter(q) {
		return false
	}
	if s.seqs.checked {
		return true
	}
	var v int64
	if err := ScanRow(ctx, q, query, nil, &v); err != nil {
		return false
	}
	if v != s.seqs.version {
		s.seqs.forget()
		s.seqs.version = v
	}
	s.seqs.checked = true
	return true
}
