// Package record is the service every adapter goes through: collections and
// their records, validation, access rules, expand and batch. A rule is
// compiled and enforced here and nowhere else, so REST, batch, expand,
// realtime and auth (its authRule and MFA rule, through RuleHolds) obey the
// same checks. No other package gets the store: the system's own reads and
// writes of its rows (direct.go) go through this service too, and every
// statement is written by sqlstore from structured conditions.
package record

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/underhood/underhood"
	"github.com/underhood/underhood/filter"
	"github.com/underhood/underhood/sqlstore"
)

// Service owns collections and records on one store.
type Service struct {
	store   *sqlstore.Store
	dialect filter.Dialect
	log     *slog.Logger
	now     func() time.Time

	// schema is the current immutable snapshot of all collections; it is
	// replaced as a whole after every committed schema change.
	schema atomic.Pointer[schema]
	// schemaMu serialises schema changes so two of them never interleave.
	schemaMu sync.Mutex

	settings atomic.Pointer[Settings]
	// expandLimits bound expand (expand.go); nil means the defaults.
	expandLimits atomic.Pointer[ExpandLimits]

	// parsed caches parsed rules and filters by their source text; the
	// ASTs are immutable and shared.
	parsedMu sync.Mutex
	parsed   map[string]filter.Expr

	// cache holds read results until the next write.
	cache *resultCache

	// listeners receive every committed change (events.go).
	listeners listeners
	// outbox holds the events of the running write transaction until it
	// commits (outbox.go).
	outbox *sqlstore.Stage[*outboxRow]
}

// schema is an immutable snapshot of every collection.
type schema struct {
	list   []*underhood.Collection
	byName map[string]*underhood.Collection // lower-cased name and id
}

func newSchema(list []*underhood.Collection) *schema {
	s := &schema{list: list, byName: make(map[string]*underhood.Collection, 2*len(list))}
	for _, c := range list {
		s.byName[strings.ToLower(c.Name)] = c
		s.byName[c.ID] = c
	}
	return s
}

// FindCollection implements filter.Schema.
func (s *schema) FindCollection(nameOrID string) *underhood.Collection {
	if c, ok := s.byName[nameOrID]; ok {
		return c
	}
	return s.byName[strings.ToLower(nameOrID)]
}

// New opens the service on store: it creates the default collections on a
// fresh database and loads the schema and settings.
func New(ctx context.Context, store *sqlstore.Store, log *slog.Logger) (*Service, error) {
	if log == nil {
		log = slog.Default()
	}
	s := &Service{store: store, dialect: store.Dialect(), log: log, now: func() time.Time { return time.Now().UTC() }, parsed: map[string]filter.Expr{}}
	// The store's version counts the writes of every process sharing the
	// database, so the cache is right on PostgreSQL too.
	s.cache = newResultCache()
	err := store.Write(ctx, func(q sqlstore.Querier) error {
		// Nodes starting together on one database bootstrap it once.
		if err := store.LockSchema(ctx, q); err != nil {
			return err
		}
		cols, err := store.LoadCollections(ctx, q)
		if err != nil {
			return err
		}
		if len(cols) > 0 {
			return nil
		}
		for _, c := range DefaultCollections() {
			if err := store.SaveCollection(ctx, q, nil, c); err != nil {
				return fmt.Errorf("create default collection %s: %w", c.Name, err)
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("bootstrap collections: %w", err)
	}
	if err := s.reloadSchema(ctx); err != nil {
		return nil, err
	}
	if err := s.ensureSystemCollections(ctx); err != nil {
		return nil, err
	}
	if err := s.migrateEmailIndexes(ctx); err != nil {
		return nil, err
	}
	if err := s.initOutbox(ctx); err != nil {
		return nil, err
	}
	if err := s.loadSettings(ctx); err != nil {
		return nil, err
	}
	s.watchChanges()
	return s, nil
}

func (s *Service) reloadSchema(ctx context.Context) error {
	var cols []*underhood.Collection
	err := s.store.Read(ctx, func(q sqlstore.Querier) error {
		var err error
		cols, err = s.store.LoadCollections(ctx, q)
		return err
	})
	if err != nil {
		return fmt.Errorf("load collections: %w", err)
	}
	s.schema.Store(newSchema(cols))
	return nil
}

// Collection returns the collection with the given name or id.
func (s *Service) Collection(nameOrID string) (*underhood.Collection, error) {
	c := s.schema.Load().FindCollection(nameOrID)
	if c == nil && s.store.Shared() && nameOrID != "" {
		c = s.collectionFromAnotherNode(nameOrID)
	}
	if c == nil {
		return nil, underhood.Errorf(underhood.ENotFound, "Missing collection context.")
	}
	return c, nil
}

// collectionFromAnotherNode looks for a collection this node does not know
// in the shared database: another node may have just created it, and its
// notice not be here yet. A client asking for it right after the other
// node answered must find it. When it is stored, the schema is reloaded;
// an unknown name costs one indexed query.
func (s *Service) collectionFromAnotherNode(nameOrID string) *underhood.Collection {
	ctx, cancel := context.WithTimeout(context.Background(), reloadTimeout)
	defer cancel()
	// No schemaMu: a caller may hold it. The snapshot read is swapped in
	// only if no other one was stored meanwhile, which may be newer.
	before := s.schema.Load()
	var cols []*underhood.Collection
	err := s.store.Read(ctx, func(q sqlstore.Querier) error {
		found, err := s.store.HasCollection(ctx, q, nameOrID)
		if err != nil || !found {
			return err
		}
		cols, err = s.store.LoadCollections(ctx, q)
		return err
	})
	if err != nil {
		s.log.Warn("look for a collection created by another node", "err", err)
		return nil
	}
	if cols == nil {
		return nil
	}
	s.schema.CompareAndSwap(before, newSchema(cols))
	return s.schema.Load().FindCollection(nameOrID)
}

// Collections returns every collection, in creation order.
func (s *Service) Collections() []*underhood.Collection {
	return s.schema.Load().list
}

// Schema returns the current snapshot as a filter.Schema.
func (s *Service) Schema() filter.Schema { return s.schema.Load() }
