package storetest

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/underhood/underhood"
	"github.com/underhood/underhood/sqlstore"
)

func testViewFields(t *testing.T, newDB NewDB) {
	s := openStore(t, newDB)
	users := newCollection("users", field("u1", "name", underhood.FieldText))
	users.ID = "pbc_users"
	author := relation("p3", "author", 1)
	author.CollectionID = users.ID
	posts := newCollection("posts", field("p1", "title", underhood.FieldText), field("p2", "views", underhood.FieldNumber), author)
	saveCollection(t, s, nil, users)
	saveCollection(t, s, nil, posts)
	all := []*underhood.Collection{users, posts}

	// describe renders a field as name:type[:relation target][:id].
	describe := func(fields []*underhood.Field) []string {
		var out []string
		for _, f := range fields {
			d := f.Name + ":" + f.Type
			if f.Type == underhood.FieldRelation {
				d += fmt.Sprintf(":%s/%d", f.CollectionID, f.MaxSelect)
			}
			if f.ID != "" {
				d += ":" + f.ID
			}
			if f.PrimaryKey {
				d += ":pk"
			}
			out = append(out, d)
		}
		return out
	}
	tests := []struct {
		query string
		want  []string
	}{
		{`SELECT id, title FROM posts`, []string{"id:text:text3208210256:pk", "title:text:p1"}},
		{`SELECT p.id, p.title AS headline, u.name FROM posts p JOIN users AS u ON u.id = p.author`,
			[]string{"id:text:text3208210256:pk", "headline:text:p1", "name:text:u1"}},
		{`SELECT p.id, count(*) AS total, CAST(p.views AS TEXT) AS v, 'x' AS s, 1 AS one, p.author, u.id AS user, p.views + 1 AS more
			FROM posts p LEFT JOIN users u ON u.id = p.author GROUP BY p.id, u.id`,
			[]string{"id:text:text3208210256:pk", "total:number", "v:text", "s:text", "one:number",
				"author:relation:pbc_users/1:p3", "user:relation:pbc_users/1", "more:json"}},
		{`SELECT * FROM posts`, []string{"id:text:text3208210256:pk", "title:text:p1", "views:number:p2", "author:relation:pbc_users/1:p3"}},
		{`SELECT (ROW_NUMBER() OVER()) AS id, lower(title) AS obj, views FROM posts`,
			[]string{"id:text:pk", "obj:json", "views:number:p2"}},
		{`WITH top AS (SELECT id FROM posts) SELECT top.id AS id, TRUE AS flag FROM top`, []string{"id:text:pk", "flag:bool"}},
	}
	for _, tt := range tests {
		t.Run(tt.query, func(t *testing.T) {
			var fields []*underhood.Field
			read(t, s, func(q sqlstore.Querier) (err error) {
				fields, err = s.ViewFields(context.Background(), q, tt.query, all)
				return err
			})
			if diff := cmp.Diff(tt.want, describe(fields)); diff != "" {
				t.Errorf("ViewFields(%q) (-want +got):\n%s", tt.query, diff)
			}
		})
	}

	for _, bad := range []string{
		`SELECT title FROM posts`,
		`SELECT id FROM nope`,
		`UPDATE posts SET title = 'x'`,
		`SELECT id FROM posts; SELECT 1`,
		`SELECT id FROM posts WHERE title = 'unterminated`,
		``,
	} {
		t.Run("refuses "+bad, func(t *testing.T) {
			err := s.Read(context.Background(), func(q sqlstore.Querier) error {
				_, err := s.ViewFields(context.Background(), q, bad, all)
				return err
			})
			var ue *underhood.Error
			if !errors.As(err, &ue) || ue.Code != underhood.EInvalid || ue.Data["viewQuery"] == nil {
				t.Errorf("ViewFields(%q) = %v, want EInvalid on viewQuery", bad, err)
			}
		})
	}
}
