package files

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/underhood/underhood"
	"github.com/underhood/underhood/record"
)

// Files leave the storage three ways, none before the change that drops
// them has committed:
//   - record.Service publishes every committed update and delete; onChange
//     queues the files an update dropped or a deleted record held.
//   - RemoveCollection queues a deleted or truncated collection's files.
//   - The sweep removes orphans: files no record refers to (a crash between
//     a commit and its deletions, a write that died after storing its
//     uploads), once they are older than Options.OrphanAge, so that the
//     uploads of a write still in flight are left alone.

// removeTimeout bounds one queued deletion.
const removeTimeout = time.Minute

// removal is one queued deletion: a key, or every object under a prefix
// modified before a time (zero: all of them).
type removal struct {
	key    string
	prefix string
	before time.Time
}

// onChange receives every committed change (it must not block).
func (s *Service) onChange(e underhood.Event) {
	r := e.Record
	if r == nil || r.Collection == nil {
		return
	}
	var list []removal
	for _, f := range r.Collection.Fields {
		if f.Type != underhood.FieldFile {
			continue
		}
		var dropped []string
		switch e.Action {
		case record.ActionDelete:
			dropped = r.Strings(f.Name)
		case record.ActionUpdate:
			if e.Old == nil {
				continue
			}
			kept := r.Strings(f.Name)
			for _, n := range e.Old.Strings(f.Name) {
				if !contains(kept, n) {
					dropped = append(dropped, n)
				}
			}
		}
		for _, n := range dropped {
			if !ValidName(n) {
				continue
			}
			list = append(list,
				removal{key: fileKey(r.Collection, r.ID(), n)},
				removal{prefix: thumbsPrefix(r.Collection, r.ID(), n)})
		}
	}
	s.enqueue(list...)
}

// RemoveCollection queues the removal of every file of the collection
// with id collectionID stored before now (a collection that was deleted
// or truncated).
func (s *Service) RemoveCollection(collectionID string) {
	if !validRecordID(collectionID) {
		return
	}
	// Storage times may have whole-second precision: files stored in the
	// current second stay, and the sweep decides about them later.
	s.enqueue(removal{prefix: collectionID + "/", before: s.now().Truncate(time.Second)})
}

func (s *Service) enqueue(list ...removal) {
	if len(list) == 0 {
		return
	}
	s.mu.Lock()
	s.removals = append(s.removals, list...)
	s.pending += len(list)
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// removeLoop runs the queued deletions until ctx ends, then those still
// queued.
func (s *Service) removeLoop(ctx context.Context) {
	for {
		select {
		case <-s.wake:
			s.runRemovals()
		case <-ctx.Done():
			s.runRemovals()
			return
		}
	}
}

func (s *Service) runRemovals() {
	for {
		s.mu.Lock()
		list := s.removals
		s.removals = nil
		s.mu.Unlock()
		if len(list) == 0 {
			return
		}
		for _, rm := range list {
			ctx, cancel := context.WithTimeout(context.Background(), removeTimeout)
			var err error
			if rm.key != "" {
				err = s.store.Delete(ctx, rm.key)
			} else {
				err = deletePrefix(ctx, s.store, rm.prefix, rm.before)
			}
			cancel()
			s.mu.Lock()
			s.pending--
			s.mu.Unlock()
			if err != nil {
				// The sweep gets another chance at it.
				s.log.Warn("files: delete", "key", rm.key+rm.prefix, "err", err)
			}
		}
	}
}

// WaitRemovals blocks until the deletions queued so far have run. Tests
// use it to observe the state after a change.
func (s *Service) WaitRemovals(ctx context.Context) error {
	for {
		s.mu.Lock()
		n := s.pending
		s.mu.Unlock()
		if n == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(2 * time.Millisecond):
		}
	}
}

func (s *Service) sweepLoop(ctx context.Context) {
	t := time.NewTicker(s.opts.SweepInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if n, err := s.Sweep(ctx); err != nil {
				s.log.Warn("files: orphan sweep", "err", err)
			} else if n > 0 {
				s.log.Info("files: orphan sweep", "removed", n)
			}
		}
	}
}

// Sweep removes orphaned files older than Options.OrphanAge: files of
// collections that no longer exist, of records that no longer exist, and
// files (with their thumbnails) that their record no longer names. It
// returns how many objects it removed.
func (s *Service) Sweep(ctx context.Context) (int, error) {
	all, err := s.store.List(ctx, "")
	if err != nil {
		return 0, err
	}
	cutoff := s.now().Add(-s.opts.OrphanAge)
	removed := 0
	type group struct{ collection, record string }
	groups := map[group][]Info{}
	var order []group
	for _, o := range all {
		parts := strings.SplitN(o.Key, "/", 3)
		if len(parts) < 3 {
			continue
		}
		g := group{parts[0], parts[1]}
		if _, seen := groups[g]; !seen {
			order = append(order, g)
		}
		groups[g] = append(groups[g], o)
	}
	for _, g := range order {
		if err := ctx.Err(); err != nil {
			return removed, err
		}
		objects := groups[g]
		var referenced []string
		c, err := s.records.Collection(g.collection)
		gone := err != nil || c.ID != g.collection
		if !gone {
			r, err := s.records.FindRecord(ctx, c, g.record)
			switch {
			case err == nil:
				for _, f := range c.Fields {
					if f.Type == underhood.FieldFile {
						referenced = append(referenced, r.Strings(f.Name)...)
					}
				}
			case underhood.ErrorCode(err) != underhood.ENotFound:
				s.log.Warn("files: orphan sweep", "record", g.record, "err", err)
				continue
			}
		}
		for _, o := range objects {
			name := strings.TrimPrefix(o.Key, recordDir(g.collection, g.record))
			if rest, ok := strings.CutPrefix(name, "thumbs_"); ok {
				name, _, _ = strings.Cut(rest, "/")
			}
			if contains(referenced, name) || (!gone && !o.ModTime.Before(cutoff)) {
				continue
			}
			if err := s.store.Delete(ctx, o.Key); err != nil {
				return removed, err
			}
			removed++
		}
	}
	removed += s.sweepStaging(cutoff)
	return removed, nil
}

// sweepStaging removes uploads a crashed process left in the local
// staging directory.
func (s *Service) sweepStaging(cutoff time.Time) int {
	st, ok := s.store.(stager)
	if !ok {
		return 0
	}
	entries, err := os.ReadDir(st.StagingDir())
	if err != nil {
		return 0
	}
	n := 0
	for _, e := range entries {
		info, err := e.Info()
		if err != nil || !info.Mode().IsRegular() || !info.ModTime().Before(cutoff) {
			continue
		}
		if os.Remove(filepath.Join(st.StagingDir(), e.Name())) == nil {
			n++
		}
	}
	return n
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
