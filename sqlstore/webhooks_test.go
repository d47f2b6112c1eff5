package sqlstore_test

import (
	"context"
	"testing"
	"time"

	"github.com/underhood/underhood"
	"github.com/underhood/underhood/sqlstore"
)

// TestDeliveryIsLeasedOnce: of the nodes that read the same due delivery,
// one leases it and the others are refused until the lease has ended; a
// delivered one is never leased again, and a paused webhook's deliveries
// are not due.
func TestDeliveryIsLeasedOnce(t *testing.T) {
	onEachEngine(t, func(t *testing.T, s *sqlstore.Store) {
		ctx := context.Background()
		at := func(d time.Duration) string {
			return underhood.FormatTime(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC).Add(d))
		}
		write(t, s, func(q sqlstore.Querier) error {
			if err := s.CreateOutbox(ctx, q); err != nil {
				return err
			}
			return s.CreateWebhookTables(ctx, q)
		})
		appendEvents(t, s, "posts", 2)
		h := &sqlstore.Webhook{ID: "hook", URL: "https://example.com", Secrets: []string{"whsec_x"}, Created: at(0), Updated: at(0)}
		write(t, s, func(q sqlstore.Querier) error {
			if err := s.InsertWebhook(ctx, q, h); err != nil {
				return err
			}
			return s.InsertDeliveries(ctx, q, []sqlstore.NewDelivery{{ID: "d1", WebhookID: "hook", EventID: "e1", Position: 3, Payload: []byte(`{}`)}}, at(0), false)
		})
		if h.Start != 2 {
			t.Errorf("InsertWebhook set Start = %d, want 2, the newest event", h.Start)
		}

		lease := func(now, until time.Duration) bool {
			t.Helper()
			var ok bool
			write(t, s, func(q sqlstore.Querier) error {
				var err error
				ok, err = s.LeaseDelivery(ctx, q, "d1", at(until), at(now))
				return err
			})
			return ok
		}
		due := func(now time.Duration) int {
			t.Helper()
			var n int
			err := s.Read(ctx, func(q sqlstore.Querier) error {
				list, err := s.DueDeliveries(ctx, q, at(now), 10)
				n = len(list)
				if found, err := s.AnyDeliveryDue(ctx, q, at(now)); err != nil || found != (n > 0) {
					t.Errorf("AnyDeliveryDue(%s) = %v, %v; DueDeliveries found %d", at(now), found, err, n)
				}
				return err
			})
			if err != nil {
				t.Fatal(err)
			}
			return n
		}

		if n := due(time.Second); n != 1 {
			t.Fatalf("due deliveries = %d, want 1", n)
		}
		if !lease(time.Second, time.Minute) {
			t.Fatal("the first node's lease was refused")
		}
		if lease(time.Second, time.Minute) {
			t.Error("a second node leased a delivery already leased")
		}
		if n := due(30 * time.Second); n != 0 {
			t.Errorf("due deliveries while leased = %d, want 0", n)
		}
		if !lease(2*time.Minute, 3*time.Minute) {
			t.Error("a delivery whose lease ended could not be leased again")
		}

		write(t, s, func(q sqlstore.Querier) error {
			return s.RecordAttempt(ctx, q, sqlstore.WebhookAttempt{ID: "a1", DeliveryID: "d1", WebhookID: "hook", EventID: "e1",
				Attempt: 1, Status: 204, Created: at(2 * time.Minute)}, "delivered", "", at(2*time.Minute))
		})
		if lease(time.Hour, 2*time.Hour) {
			t.Error("a delivered delivery was leased")
		}

		h.Paused = true
		write(t, s, func(q sqlstore.Querier) error {
			if err := s.UpdateWebhook(ctx, q, h); err != nil {
				return err
			}
			return s.InsertDeliveries(ctx, q, []sqlstore.NewDelivery{{ID: "d2", WebhookID: "hook", EventID: "e2", Position: 4, Payload: []byte(`{}`)}}, at(0), false)
		})
		if n := due(time.Hour); n != 0 {
			t.Errorf("due deliveries of a paused webhook = %d, want 0", n)
		}
	})
}
