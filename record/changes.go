package record

import (
	"context"
	"time"

	"github.com/underhood/underhood/sqlstore"
)

// reloadTimeout bounds one reload after a change notice.
const reloadTimeout = 10 * time.Second

// watchChanges keeps s's snapshots current when other processes share the
// database (several nodes on PostgreSQL): a collection or settings change
// committed by another node reloads the schema or the settings here, and
// so does every reconnection of the store's listener, after which notices
// may have been missed. Reloads happen under schemaMu, so that a reload
// never replaces a newer snapshot this node just stored.
func (s *Service) watchChanges() {
	s.store.OnChange(func(topic string) {
		ctx, cancel := context.WithTimeout(context.Background(), reloadTimeout)
		defer cancel()
		s.schemaMu.Lock()
		defer s.schemaMu.Unlock()
		if topic == sqlstore.TopicSchema || topic == sqlstore.TopicAll {
			if err := s.reloadSchema(ctx); err != nil {
				s.log.Warn("reload collections after a change by another node", "err", err)
			}
		}
		if topic == sqlstore.TopicParams || topic == sqlstore.TopicAll {
			if err := s.loadSettings(ctx); err != nil {
				s.log.Warn("reload settings after a change by another node", "err", err)
			}
		}
	})
}
