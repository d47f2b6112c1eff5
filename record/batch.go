package record

import (
	"context"
	"fmt"
	"time"

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

// CheckBatchEnabled returns the 403 a batch meets while the settings
// disable batches. Batch checks it itself; an adapter calls it first only
// to refuse a batch before reading its body.
func (s *Service) CheckBatchEnabled() error {
	if !s.Settings().Batch.Enabled {
		return underhood.Errorf(underhood.EForbidden, "Batch requests are not allowed.")
	}
	return nil
}

// Batch runs fn, which makes n operations, in one transaction: if fn or
// any operation in it fails, nothing fn did is written. The settings
// decide whether a batch runs at all (403 when disabled), how many
// operations it may hold (400 for none or more than MaxRequests) and how
// long it may take (Timeout seconds).
func (s *Service) Batch(ctx context.Context, n int, fn func(tx *Tx) error) (err error) {
	defer underhood.Wrap(&err, "record.Batch")
	if err := s.CheckBatchEnabled(); err != nil {
		return err
	}
	settings := s.Settings().Batch
	if n < 1 {
		return underhood.Invalid("Failed to run the batch.", map[string]any{
			"requests": underhood.FieldError{Code: "validation_required", Message: "Cannot be blank."}})
	}
	if n > settings.MaxRequests {
		return underhood.Invalid("Failed to run the batch.", map[string]any{
			"requests": underhood.FieldError{Code: "validation_length_too_long",
				Message: fmt.Sprintf("The allowed max number of batch requests is %d.", settings.MaxRequests)}})
	}
	if settings.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, time.Duration(settings.Timeout)*time.Second)
		defer cancel()
	}
	ctx, ch := withChanges(ctx)
	err = s.store.Write(ctx, func(q sqlstore.Querier) error {
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
