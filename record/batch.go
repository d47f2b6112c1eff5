package record

import (
	"context"

	"github.com/underhood/underhood"
	"github.com/underhood/underhood/sqlstore"
)

// Tx runs record operations inside one transaction opened by Batch. Each
// operation obeys the same rules as its stand-alone counterpart.
type Tx struct {
	s   *Service
	ctx context.Context
	q   sqlstore.Querier
	// expandBudget is shared by the operations, as they share a response.
	expandBudget *expandBudget
}

// Batch runs fn in one transaction: if fn or any operation in it fails,
// nothing fn did is written. Batches must be enabled in the settings and
// hold at most Settings.Batch.MaxRequests operations (the caller counts).
func (s *Service) Batch(ctx context.Context, fn func(tx *Tx) error) error {
	if !s.Settings().Batch.Enabled {
		return underhood.Errorf(underhood.EForbidden, "Batch requests are not allowed.")
	}
	ctx, ch := withChanges(ctx)
	err := s.store.Write(ctx, func(q sqlstore.Querier) error {
		return fn(&Tx{s: s, ctx: ctx, q: q, expandBudget: s.responseBudget()})
	})
	if err != nil {
		return err
	}
	s.publish(ch)
	return nil
}

// Create is Service.Create inside the batch.
func (t *Tx) Create(req *Request, coll string, data map[string]any, expand string) (*underhood.Record, error) {
	c, err := t.s.Collection(coll)
	if err != nil {
		return nil, err
	}
	if err := checkExpand(expand); err != nil {
		return nil, err
	}
	r, err := t.s.create(t.ctx, t.q, req, c, data, nil)
	if err != nil {
		return nil, err
	}
	return t.finish(req, c, r, expand)
}

// Update is Service.Update inside the batch.
func (t *Tx) Update(req *Request, coll, id string, data map[string]any, expand string) (*underhood.Record, error) {
	c, err := t.s.Collection(coll)
	if err != nil {
		return nil, err
	}
	if err := checkExpand(expand); err != nil {
		return nil, err
	}
	r, err := t.s.update(t.ctx, t.q, req, c, id, data, nil)
	if err != nil {
		return nil, err
	}
	return t.finish(req, c, r, expand)
}

// Upsert updates the record whose id is in data when it exists and
// creates it otherwise.
func (t *Tx) Upsert(req *Request, coll string, data map[string]any, expand string) (*underhood.Record, error) {
	c, err := t.s.Collection(coll)
	if err != nil {
		return nil, err
	}
	id, _ := data["id"].(string)
	if id != "" {
		_, err := t.s.findByID(t.ctx, t.q, c, id)
		switch underhood.ErrorCode(err) {
		case "":
			return t.Update(req, coll, id, data, expand)
		case underhood.ENotFound:
		default:
			return nil, err
		}
	}
	return t.Create(req, coll, data, expand)
}

// Delete is Service.Delete inside the batch.
func (t *Tx) Delete(req *Request, coll, id string) error {
	c, err := t.s.Collection(coll)
	if err != nil {
		return err
	}
	return t.s.delete(t.ctx, t.q, req, c, id)
}

func (t *Tx) finish(req *Request, c *underhood.Collection, r *underhood.Record, expand string) (*underhood.Record, error) {
	if err := t.s.expandWithin(t.ctx, t.q, req, c, []*underhood.Record{r}, expand, t.expandBudget); err != nil {
		return nil, err
	}
	t.s.presentInPlace(req, r)
	return r, nil
}
