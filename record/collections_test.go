package record_test

import (
	"context"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/underhood/underhood"
	"github.com/underhood/underhood/record"
	"github.com/underhood/underhood/record/recordtest"
	"github.com/underhood/underhood/sqlstore/postgres"
	"github.com/underhood/underhood/sqlstore/sqlite"
	"github.com/underhood/underhood/sqlstore/storetest"
)

// TestAdministrationIsForSuperusers: every method that reads or changes the
// collections or the settings refuses a guest with 401 and any other record
// with 403, before it looks at its arguments, so a guest cannot learn which
// collections exist.
func TestAdministrationIsForSuperusers(t *testing.T) {
	ctx := context.Background()
	s := newService(t)
	users, err := s.Collection(underhood.UsersName)
	if err != nil {
		t.Fatal(err)
	}
	user := &underhood.Record{Collection: users, Data: map[string]any{"id": "user00000000001"}}
	calls := []struct {
		name string
		call func(auth *underhood.Record) error
		// superuser is the code a superuser meets ("" for success).
		superuser string
	}{
		{"ListCollections", func(auth *underhood.Record) error {
			_, err := s.ListCollections(ctx, auth, record.ListParams{})
			return err
		}, ""},
		{"ViewCollection", func(auth *underhood.Record) error {
			_, err := s.ViewCollection(ctx, auth, underhood.UsersName)
			return err
		}, ""},
		{"ViewCollection of a missing one", func(auth *underhood.Record) error {
			_, err := s.ViewCollection(ctx, auth, "nope")
			return err
		}, underhood.ENotFound},
		{"Scaffolds", func(auth *underhood.Record) error {
			_, err := s.Scaffolds(auth)
			return err
		}, ""},
		{"SaveCollection", func(auth *underhood.Record) error {
			_, err := s.SaveCollection(ctx, auth, "", &underhood.Collection{Name: "created", Type: underhood.TypeBase})
			return err
		}, ""},
		{"SaveCollection of a missing one", func(auth *underhood.Record) error {
			_, err := s.SaveCollection(ctx, auth, "nope", &underhood.Collection{Name: "nope", Type: underhood.TypeBase})
			return err
		}, underhood.ENotFound},
		{"TruncateCollection of a missing one", func(auth *underhood.Record) error {
			return s.TruncateCollection(ctx, auth, "nope")
		}, underhood.ENotFound},
		{"DeleteCollection of a missing one", func(auth *underhood.Record) error {
			return s.DeleteCollection(ctx, auth, "nope")
		}, underhood.ENotFound},
		{"ImportCollections of nothing", func(auth *underhood.Record) error {
			return s.ImportCollections(ctx, auth, nil, false)
		}, underhood.EInvalid},
		{"PublicSettings", func(auth *underhood.Record) error {
			_, err := s.PublicSettings(auth)
			return err
		}, ""},
		{"UpdateSettings", func(auth *underhood.Record) error {
			_, err := s.UpdateSettings(ctx, auth, []byte(`{"meta":{"appName":"Blog"}}`))
			return err
		}, ""},
	}
	callers := []struct {
		name string
		auth *underhood.Record
		want string
	}{
		{"guest", nil, underhood.EUnauthorized},
		{"user", user, underhood.EForbidden},
		{"superuser", s.SystemRequest().Auth, ""},
	}
	for _, c := range calls {
		for _, who := range callers {
			t.Run(c.name+" by "+who.name, func(t *testing.T) {
				want := who.want
				if who.auth.IsSuperuser() {
					want = c.superuser
				}
				if got := underhood.ErrorCode(c.call(who.auth)); got != want {
					t.Errorf("%s by a %s: code %q, want %q", c.name, who.name, got, want)
				}
			})
		}
	}
}

func TestListCollections(t *testing.T) {
	ctx := context.Background()
	s := newService(t)
	for _, name := range []string{"alpha", "Beta", "gamma"} {
		mustCollection(t, s, &underhood.Collection{Name: name, Type: underhood.TypeBase})
	}
	mine := "name = 'alpha' || name = 'Beta' || name = 'gamma'"
	tests := []struct {
		name                  string
		p                     record.ListParams
		want                  []string
		page, perPage         int
		totalItems, totalPage int
	}{
		{"creation order", record.ListParams{Filter: mine}, []string{"alpha", "Beta", "gamma"}, 1, 30, 3, 1},
		{"by name, descending, ignoring case", record.ListParams{Filter: mine, Sort: "-name"}, []string{"gamma", "Beta", "alpha"}, 1, 30, 3, 1},
		{"second page", record.ListParams{Filter: mine, Sort: "name", Page: 2, PerPage: 2}, []string{"gamma"}, 2, 2, 3, 2},
		{"past the last page", record.ListParams{Filter: mine, Page: 9, PerPage: 2}, []string{}, 9, 2, 3, 2},
		{"skipTotal", record.ListParams{Filter: mine, SkipTotal: true}, []string{"alpha", "Beta", "gamma"}, 1, 30, -1, -1},
		{"perPage capped", record.ListParams{Filter: "name = 'gamma'", PerPage: 5000}, []string{"gamma"}, 1, record.MaxPerPage, 1, 1},
		{"filter by type", record.ListParams{Filter: "type = 'auth' && system = false"}, []string{underhood.UsersName}, 1, 30, 1, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			page, err := s.ListCollections(ctx, s.SystemRequest().Auth, tt.p)
			if err != nil {
				t.Fatalf("ListCollections(%+v) = %v", tt.p, err)
			}
			got := []string{}
			for _, c := range page.Items {
				got = append(got, c.Name)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("ListCollections(%+v) names (-want +got):\n%s", tt.p, diff)
			}
			if page.Page != tt.page || page.PerPage != tt.perPage || page.TotalItems != tt.totalItems || page.TotalPages != tt.totalPage {
				t.Errorf("ListCollections(%+v) = page %d of %d per page, %d items in %d pages; want page %d of %d, %d items in %d pages",
					tt.p, page.Page, page.PerPage, page.TotalItems, page.TotalPages, tt.page, tt.perPage, tt.totalItems, tt.totalPage)
			}
		})
	}
	if _, err := s.ListCollections(ctx, s.SystemRequest().Auth, record.ListParams{Filter: "name = ("}); underhood.ErrorCode(err) != underhood.EInvalid {
		t.Errorf("ListCollections(a broken filter) = %v, want %s", err, underhood.EInvalid)
	}
}

// TestInternalErrorsNameTheirOperation: when the database fails, the error
// a method returns (which the adapters log for a 500) names the method and
// what it was working on; the client still gets the generic message.
func TestInternalErrorsNameTheirOperation(t *testing.T) {
	ctx := context.Background()
	s, store := recordtest.OpenStore(t, storetest.Config(t, sqlite.Dialect{}, postgres.Dialect{}), nil)
	su := s.SystemRequest().Auth
	if err := store.Close(); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		op   string
		call func() error
	}{
		{"record.UpdateSettings", func() error {
			_, err := s.UpdateSettings(ctx, su, []byte(`{"meta":{"appName":"Blog"}}`))
			return err
		}},
		{"record.SaveCollection(posts)", func() error {
			_, err := s.SaveCollection(ctx, su, "", &underhood.Collection{Name: "posts", Type: underhood.TypeBase})
			return err
		}},
		{"record.TruncateCollection(users)", func() error { return s.TruncateCollection(ctx, su, underhood.UsersName) }},
	}
	for _, tt := range tests {
		t.Run(tt.op, func(t *testing.T) {
			err := tt.call()
			if underhood.ErrorCode(err) != underhood.EInternal || !strings.HasPrefix(err.Error(), tt.op+": ") {
				t.Fatalf("%s on a closed store = %v, want an internal error starting with %q", tt.op, err, tt.op+": ")
			}
			if msg := underhood.ErrorMessage(err); msg != "Something went wrong while processing your request." {
				t.Errorf("%s: client message = %q, want the generic one", tt.op, msg)
			}
		})
	}
}
