package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/underhood/underhood"
)

// This file owns the schema: the system tables and their migrations, and
// one table (or view) per collection, migrated in the caller's transaction
// when the collection changes.

// migrateSystem brings the system tables to the dialect's latest version.
// Versions are recorded in _system_migrations.
func (s *Store) migrateSystem(ctx context.Context) error {
	w := s.writer
	bg := context.WithoutCancel(ctx)
	if _, err := w.exec(bg, s.dialect.BeginWrite()); err != nil {
		return fmt.Errorf("migrate system tables: %w", err)
	}
	err := func() error {
		if lock := s.dialect.LockSchema(); lock != "" {
			if _, err := w.c.ExecContext(bg, lock); err != nil {
				return err
			}
		}
		if _, err := w.c.ExecContext(bg, `CREATE TABLE IF NOT EXISTS _system_migrations (version INTEGER PRIMARY KEY NOT NULL, applied TEXT NOT NULL)`); err != nil {
			return err
		}
		var cur int
		if err := w.c.QueryRowContext(bg, `SELECT COALESCE(MAX(version), 0) FROM _system_migrations`).Scan(&cur); err != nil {
			return err
		}
		schema := s.dialect.SystemSchema()
		if cur > len(schema) {
			return fmt.Errorf("database schema version %d is newer than this binary's %d", cur, len(schema))
		}
		for v := cur + 1; v <= len(schema); v++ {
			if _, err := w.c.ExecContext(bg, schema[v-1]); err != nil {
				return fmt.Errorf("version %d: %w", v, err)
			}
			if _, err := w.c.ExecContext(bg, `INSERT INTO _system_migrations (version, applied) VALUES (`+s.ph(1)+`, `+s.ph(2)+`)`,
				v, underhood.FormatTime(time.Now())); err != nil {
				return err
			}
		}
		return nil
	}()
	if err != nil {
		_, _ = w.exec(bg, "ROLLBACK")
		return fmt.Errorf("migrate system tables: %w", err)
	}
	if _, err := w.exec(bg, "COMMIT"); err != nil {
		_, _ = w.exec(bg, "ROLLBACK")
		return fmt.Errorf("migrate system tables: %w", err)
	}
	return nil
}

// ph is the n-th placeholder.
func (s *Store) ph(n int) string { return s.dialect.Placeholder(n) }

// quote quotes an identifier.
func (s *Store) quote(ident string) string { return s.dialect.Quote(ident) }

// LoadCollections returns every stored collection in creation order.
func (s *Store) LoadCollections(ctx context.Context, q Querier) ([]*underhood.Collection, error) {
	rows, err := q.QueryContext(ctx, `SELECT data FROM _collections ORDER BY created, `+s.dialect.RowID("_collections"))
	if err != nil {
		return nil, fmt.Errorf("load collections: %w", err)
	}
	defer rows.Close()
	var list []*underhood.Collection
	for rows.Next() {
		var data string
		if err := rows.Scan(&data); err != nil {
			return nil, fmt.Errorf("load collections: %w", err)
		}
		c := &underhood.Collection{}
		if err := c.UnmarshalStorage([]byte(data)); err != nil {
			return nil, fmt.Errorf("load collections: decode: %w", err)
		}
		list = append(list, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("load collections: %w", err)
	}
	return list, nil
}

// HasCollection reports whether a collection with the given id or name
// (in any case) is stored, as q sees the database.
func (s *Store) HasCollection(ctx context.Context, q Querier, nameOrID string) (bool, error) {
	var one int
	err := q.QueryRowContext(ctx, `SELECT 1 FROM _collections WHERE id = `+s.dialect.Placeholder(1)+
		` OR lower(name) = lower(`+s.dialect.Placeholder(2)+`) LIMIT 1`, nameOrID, nameOrID).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("find collection: %w", err)
	}
	return true, nil
}

// SaveCollection creates (old == nil) or migrates (old != nil) the table
// or view of c and stores c in _collections, all with q (the caller's
// transaction). For tables: columns are matched by field id, so a renamed
// field keeps its data; new fields are added, removed ones dropped; a field
// whose stored form changes (its type, or single ↔ multi) is converted by
// rebuilding the table; a renamed collection renames its table; the indexes
// are dropped and created anew from c.Indexes, with the table name set to
// c.Name. A view is dropped and created again from c.ViewQuery. c.Created
// and c.Updated are filled when empty.
//
// Errors in the user's SQL (indexes, view query) are EInvalid errors naming
// "indexes" or "viewQuery".
func (s *Store) SaveCollection(ctx context.Context, q Querier, old, c *underhood.Collection) error {
	if c.Name == "" || c.ID == "" {
		return fmt.Errorf("save collection: collection needs an id and a name")
	}
	if old != nil && old.IsView() != c.IsView() {
		return underhood.Invalid("Failed to save collection.", map[string]any{
			"type": underhood.FieldError{Code: "validation_collection_type_change", Message: "Collection type cannot be changed."}})
	}
	defer s.schemaChanged(q)
	if err := s.LockSchema(ctx, q); err != nil {
		return err
	}
	var views []*underhood.Collection
	if old != nil && s.dialect.StrictViews() {
		var err error
		if views, err = s.dropViews(ctx, q); err != nil {
			return err
		}
	}
	var err error
	if c.IsView() {
		err = s.saveView(ctx, q, old, c)
	} else {
		err = s.saveTable(ctx, q, old, c)
	}
	if err != nil {
		return err
	}
	if err := s.storeCollection(ctx, q, old, c); err != nil {
		return err
	}
	if err := s.createViews(ctx, q, views, c.ID); err != nil {
		return err
	}
	return s.notify(ctx, q, TopicSchema)
}

// LockSchema serialises schema changes of every process sharing the
// database until q's transaction ends.
func (s *Store) LockSchema(ctx context.Context, q Querier) error {
	lock := s.dialect.LockSchema()
	if lock == "" {
		return nil
	}
	if _, err := q.ExecContext(ctx, lock); err != nil {
		return fmt.Errorf("lock schema: %w", err)
	}
	return nil
}

// dropViews drops the view of every view collection, for a change of the
// tables they read, and returns those collections.
func (s *Store) dropViews(ctx context.Context, q Querier) ([]*underhood.Collection, error) {
	all, err := s.LoadCollections(ctx, q)
	if err != nil {
		return nil, err
	}
	var views []*underhood.Collection
	for _, c := range all {
		if !c.IsView() {
			continue
		}
		views = append(views, c)
		if _, err := q.ExecContext(ctx, `DROP VIEW IF EXISTS `+s.quote(c.Name)+` CASCADE`); err != nil {
			return nil, fmt.Errorf("drop view %s: %w", c.Name, err)
		}
	}
	return views, nil
}

// createViews creates again the views dropViews dropped, but that of the
// collection except. A view whose query no longer works stays missing, as
// a broken view on SQLite: reading it fails until it is fixed. Views that
// read other views are retried until no more can be made.
func (s *Store) createViews(ctx context.Context, q Querier, views []*underhood.Collection, except string) error {
	pending := slices.DeleteFunc(slices.Clone(views), func(v *underhood.Collection) bool { return v.ID == except })
	for len(pending) > 0 {
		var failed []*underhood.Collection
		for _, v := range pending {
			ok, err := s.tryStatement(ctx, q, `CREATE VIEW `+s.quote(v.Name)+` AS `+v.ViewQuery)
			if err != nil {
				return err
			}
			if !ok {
				failed = append(failed, v)
			}
		}
		if len(failed) == len(pending) {
			return nil
		}
		pending = failed
	}
	return nil
}

// tryStatement runs stmt in a savepoint of its own and reports whether it
// worked; its failure leaves the transaction as it was.
func (s *Store) tryStatement(ctx context.Context, q Querier, stmt string) (bool, error) {
	if _, err := q.ExecContext(ctx, `SAVEPOINT uh_try`); err != nil {
		return false, err
	}
	if _, err := q.ExecContext(ctx, stmt); err != nil {
		if _, err := q.ExecContext(ctx, `ROLLBACK TO uh_try`); err != nil {
			return false, err
		}
		_, err := q.ExecContext(ctx, `RELEASE uh_try`)
		return false, err
	}
	_, err := q.ExecContext(ctx, `RELEASE uh_try`)
	return err == nil, err
}

// saveTable creates or migrates the table of c and its indexes.
func (s *Store) saveTable(ctx context.Context, q Querier, old, c *underhood.Collection) error {
	if c.Field("id") == nil {
		return fmt.Errorf("save collection %s: no id field", c.Name)
	}
	indexes, err := s.checkIndexes(old, c)
	if err != nil {
		return err
	}
	if old == nil {
		if err := s.createTable(ctx, q, c.Name, c.Fields); err != nil {
			return err
		}
	} else {
		if err := s.dropIndexes(ctx, q, old); err != nil {
			return err
		}
		if err := s.renameTable(ctx, q, old.Name, c.Name); err != nil {
			return err
		}
		if err := s.migrateColumns(ctx, q, old, c); err != nil {
			return err
		}
	}
	for i, stmt := range indexes {
		if _, err := q.ExecContext(ctx, stmt); err != nil {
			return indexError(i, "Failed to create the index: "+err.Error())
		}
	}
	return nil
}

// indexError is the error of the i-th index of a collection.
func indexError(i int, msg string) error {
	return underhood.Invalid("Failed to save collection.", map[string]any{
		"indexes": map[string]any{strconv.Itoa(i): underhood.FieldError{Code: "validation_invalid_index_expression", Message: msg}},
	})
}

// checkIndexes validates c.Indexes (each one CREATE [UNIQUE] INDEX on the
// collection's table, under its new or old name) and returns them with the
// table name set to c.Name, the names of c's fields quoted and SQLite's
// collations in the dialect's terms.
func (s *Store) checkIndexes(old, c *underhood.Collection) ([]string, error) {
	var out []string
	for i, raw := range c.Indexes {
		ix, err := parseIndexSQL(raw)
		if err != nil {
			return nil, indexError(i, "Invalid CREATE INDEX statement: "+err.Error()+".")
		}
		if !strings.EqualFold(ix.table, c.Name) && (old == nil || !strings.EqualFold(ix.table, old.Name)) {
			return nil, indexError(i, fmt.Sprintf("The index must be on the table %q.", c.Name))
		}
		out = append(out, ix.render(s.quote, s.quote(c.Name), func(name string) string {
			if f := fieldFold(c, name); f != nil {
				return s.quote(f.Name)
			}
			return ""
		}, s.dialect.Collate))
	}
	return out, nil
}

// dropIndexes drops the indexes of old.
func (s *Store) dropIndexes(ctx context.Context, q Querier, old *underhood.Collection) error {
	for _, raw := range old.Indexes {
		ix, err := parseIndexSQL(raw)
		if err != nil {
			continue // never created
		}
		if _, err := q.ExecContext(ctx, `DROP INDEX IF EXISTS `+s.quote(ix.name)); err != nil {
			return fmt.Errorf("drop index %s: %w", ix.name, err)
		}
	}
	return nil
}

// createTable creates table name with a column per field.
func (s *Store) createTable(ctx context.Context, q Querier, name string, fields []*underhood.Field) error {
	var b strings.Builder
	b.WriteString("CREATE TABLE ")
	b.WriteString(s.quote(name))
	b.WriteString(" (")
	for i, f := range fields {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(s.quote(f.Name))
		b.WriteByte(' ')
		b.WriteString(s.dialect.ColumnDefinition(f))
	}
	for _, col := range s.dialect.HiddenColumns() {
		b.WriteString(", ")
		b.WriteString(col)
	}
	b.WriteString(")")
	if _, err := q.ExecContext(ctx, b.String()); err != nil {
		return fmt.Errorf("create table %s: %w", name, err)
	}
	return nil
}

// renameTable renames a table; a change of case only goes through a
// temporary name, as table names are case-insensitive.
func (s *Store) renameTable(ctx context.Context, q Querier, from, to string) error {
	if from == to {
		return nil
	}
	steps := [][2]string{{from, to}}
	if strings.EqualFold(from, to) {
		tmp := "_uh_rename_" + underhood.RandomString(8)
		steps = [][2]string{{from, tmp}, {tmp, to}}
	}
	for _, st := range steps {
		for _, stmt := range s.dialect.RenameTable(st[0], st[1]) {
			if _, err := q.ExecContext(ctx, stmt); err != nil {
				return fmt.Errorf("rename table %s to %s: %w", st[0], st[1], err)
			}
		}
	}
	return nil
}

// columnChange pairs a stored column (from, nil when new) with the field it
// becomes.
type columnChange struct {
	from, to *underhood.Field
}

// migrateColumns changes the columns of c's table (already named c.Name)
// from old's fields to c's. Additions and renames are ALTER TABLE
// statements; anything else (drops, changes of stored form, renames that
// collide or that SQLite refuses) rebuilds the table.
func (s *Store) migrateColumns(ctx context.Context, q Querier, old, c *underhood.Collection) error {
	var changes []columnChange
	used := map[string]bool{}
	rebuild := false
	for _, f := range c.Fields {
		of := old.FieldByID(f.ID)
		if of == nil && f.ID == "" {
			of = old.Field(f.Name)
		}
		if of != nil && used[of.ID] {
			of = nil
		}
		if of != nil {
			used[of.ID] = true
			if s.dialect.ColumnDefinition(of) != s.dialect.ColumnDefinition(f) {
				rebuild = true
			}
		}
		changes = append(changes, columnChange{from: of, to: f})
	}
	for _, of := range old.Fields {
		if !used[of.ID] {
			rebuild = true // a dropped column
		}
	}
	if !s.dialect.RebuildsTables() {
		return s.alterColumns(ctx, q, old, c, changes, used)
	}
	if !rebuild {
		// Renames must not collide with a column that still exists.
		current := map[string]bool{}
		for _, of := range old.Fields {
			current[strings.ToLower(of.Name)] = true
		}
		for _, ch := range changes {
			if ch.from != nil && ch.from.Name != ch.to.Name && current[strings.ToLower(ch.to.Name)] && !strings.EqualFold(ch.from.Name, ch.to.Name) {
				rebuild = true
			}
		}
	}
	table := s.quote(c.Name)
	if !rebuild {
		// RENAME COLUMN checks every view of the database; when one is
		// broken it fails (atomically), and the rebuild takes over from
		// the names reached so far.
		for i, ch := range changes {
			if ch.from == nil || ch.from.Name == ch.to.Name {
				continue
			}
			stmt := `ALTER TABLE ` + table + ` RENAME COLUMN ` + s.quote(ch.from.Name) + ` TO ` + s.quote(ch.to.Name)
			if _, err := q.ExecContext(ctx, stmt); err != nil {
				rebuild = true
				break
			}
			renamed := ch.from.Clone()
			renamed.Name = ch.to.Name
			changes[i].from = renamed
		}
	}
	if rebuild {
		return s.rebuildTable(ctx, q, c, changes)
	}
	for _, ch := range changes {
		if ch.from != nil {
			continue
		}
		stmt := `ALTER TABLE ` + table + ` ADD COLUMN ` + s.quote(ch.to.Name) + ` ` + s.dialect.ColumnDefinition(ch.to)
		if _, err := q.ExecContext(ctx, stmt); err != nil {
			return fmt.Errorf("add column %s: %w", ch.to.Name, err)
		}
	}
	return nil
}

// alterColumns changes the columns of c's table in place: dropped columns
// are dropped, a column whose stored form changes is replaced by a new one
// filled with the converted values, renames go through temporary names (so
// that names may be swapped) and new columns are added.
func (s *Store) alterColumns(ctx context.Context, q Querier, old, c *underhood.Collection, changes []columnChange, used map[string]bool) error {
	table := s.quote(c.Name)
	exec := func(stmt string) error {
		if _, err := q.ExecContext(ctx, stmt); err != nil {
			return fmt.Errorf("migrate table %s: %w", c.Name, err)
		}
		return nil
	}
	for _, of := range old.Fields {
		if !used[of.ID] {
			if err := exec(`ALTER TABLE ` + table + ` DROP COLUMN ` + s.quote(of.Name)); err != nil {
				return err
			}
		}
	}
	current := make([]string, len(changes)) // the column's name now; "" when new
	for i, ch := range changes {
		if ch.from == nil {
			continue
		}
		current[i] = ch.from.Name
		if s.dialect.ColumnDefinition(ch.from) == s.dialect.ColumnDefinition(ch.to) {
			continue
		}
		tmp := "_uh_conv_" + strconv.Itoa(i)
		conv := s.dialect.ConvertColumn(ch.from, ch.to, s.quote(ch.from.Name))
		if err := exec(`ALTER TABLE ` + table + ` ADD COLUMN ` + s.quote(tmp) + ` ` + s.dialect.ColumnDefinition(ch.to)); err != nil {
			return err
		}
		if err := exec(`UPDATE ` + table + ` SET ` + s.quote(tmp) + ` = ` + conv); err != nil {
			return err
		}
		if err := exec(`ALTER TABLE ` + table + ` DROP COLUMN ` + s.quote(ch.from.Name)); err != nil {
			return err
		}
		current[i] = tmp
	}
	for i, ch := range changes {
		if current[i] == "" || current[i] == ch.to.Name {
			continue
		}
		tmp := "_uh_name_" + strconv.Itoa(i)
		if err := exec(`ALTER TABLE ` + table + ` RENAME COLUMN ` + s.quote(current[i]) + ` TO ` + s.quote(tmp)); err != nil {
			return err
		}
		current[i] = tmp
	}
	for i, ch := range changes {
		var err error
		switch {
		case current[i] == "":
			err = exec(`ALTER TABLE ` + table + ` ADD COLUMN ` + s.quote(ch.to.Name) + ` ` + s.dialect.ColumnDefinition(ch.to))
		case current[i] != ch.to.Name:
			err = exec(`ALTER TABLE ` + table + ` RENAME COLUMN ` + s.quote(current[i]) + ` TO ` + s.quote(ch.to.Name))
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// rebuildTable is SQLite's way to change columns: create the new table
// under a temporary name, copy the rows with each kept column converted,
// drop the old table and rename the new one.
func (s *Store) rebuildTable(ctx context.Context, q Querier, c *underhood.Collection, changes []columnChange) error {
	tmp := "_uh_rebuild_" + underhood.RandomString(8)
	fields := make([]*underhood.Field, len(changes))
	for i, ch := range changes {
		fields[i] = ch.to
	}
	if err := s.createTable(ctx, q, tmp, fields); err != nil {
		return err
	}
	var cols, exprs []string
	for _, ch := range changes {
		if ch.from == nil {
			continue
		}
		cols = append(cols, s.quote(ch.to.Name))
		exprs = append(exprs, s.dialect.ConvertColumn(ch.from, ch.to, s.quote(ch.from.Name)))
	}
	if len(cols) > 0 {
		stmt := `INSERT INTO ` + s.quote(tmp) + ` (` + strings.Join(cols, ", ") + `) SELECT ` +
			strings.Join(exprs, ", ") + ` FROM ` + s.quote(c.Name)
		if _, err := q.ExecContext(ctx, stmt); err != nil {
			return fmt.Errorf("rebuild table %s: copy rows: %w", c.Name, err)
		}
	}
	if _, err := q.ExecContext(ctx, `DROP TABLE `+s.quote(c.Name)); err != nil {
		return fmt.Errorf("rebuild table %s: %w", c.Name, err)
	}
	return s.renameTable(ctx, q, tmp, c.Name)
}

// saveView checks c.ViewQuery and (re)creates the view.
func (s *Store) saveView(ctx context.Context, q Querier, old, c *underhood.Collection) error {
	query, err := checkViewQuery(c.ViewQuery)
	if err != nil {
		return err
	}
	if old != nil {
		if _, err := q.ExecContext(ctx, `DROP VIEW IF EXISTS `+s.quote(old.Name)); err != nil {
			return fmt.Errorf("drop view %s: %w", old.Name, err)
		}
	}
	if _, err := q.ExecContext(ctx, `CREATE VIEW `+s.quote(c.Name)+` AS `+query); err != nil {
		return viewQueryError("Invalid view query: " + err.Error())
	}
	// SQLite resolves a view's columns only when it is used.
	rows, err := q.QueryContext(ctx, `SELECT * FROM `+s.quote(c.Name)+` LIMIT 0`)
	if err != nil {
		return viewQueryError("Invalid view query: " + err.Error())
	}
	return rows.Close()
}

// checkViewQuery checks that src is one SELECT statement and returns it
// without a trailing semicolon.
func checkViewQuery(src string) (string, error) {
	if _, err := parseSelect(src); err != nil {
		return "", viewQueryError("Invalid view query: " + err.Error() + ".")
	}
	toks, _ := singleStatement(src)
	return src[toks[0].pos:toks[len(toks)-1].end], nil
}

// viewQueryError is an EInvalid error on "viewQuery".
func viewQueryError(msg string) error {
	return underhood.Invalid("Failed to save collection.", map[string]any{
		"viewQuery": underhood.FieldError{Code: "validation_invalid_view_query", Message: msg},
	})
}

// storeCollection upserts c into _collections.
func (s *Store) storeCollection(ctx context.Context, q Querier, old, c *underhood.Collection) error {
	now := underhood.FormatTime(time.Now())
	if c.Created == "" {
		c.Created = now
	}
	if c.Updated == "" {
		c.Updated = now
	}
	data, err := c.MarshalStorage()
	if err != nil {
		return fmt.Errorf("save collection %s: %w", c.Name, err)
	}
	if old != nil && old.ID != c.ID {
		if _, err := q.ExecContext(ctx, `DELETE FROM _collections WHERE id = `+s.ph(1), old.ID); err != nil {
			return fmt.Errorf("save collection %s: %w", c.Name, err)
		}
	}
	stmt := `INSERT INTO _collections (id, name, type, system, data, created, updated) VALUES (` +
		s.phs(1, 7) + `) ON CONFLICT (id) DO UPDATE SET name = excluded.name, type = excluded.type, ` +
		`system = excluded.system, data = excluded.data, updated = excluded.updated`
	typ := c.Type
	if typ == "" {
		typ = underhood.TypeBase
	}
	if _, err := q.ExecContext(ctx, stmt, c.ID, c.Name, typ, c.System, string(data), c.Created, c.Updated); err != nil {
		return fmt.Errorf("save collection %s: %w", c.Name, err)
	}
	return nil
}

// phs renders the placeholders from..to, comma separated.
func (s *Store) phs(from, to int) string {
	var b strings.Builder
	for n := from; n <= to; n++ {
		if n > from {
			b.WriteString(", ")
		}
		b.WriteString(s.ph(n))
	}
	return b.String()
}

// DeleteCollection drops the table (or view) of c and its row in
// _collections.
func (s *Store) DeleteCollection(ctx context.Context, q Querier, c *underhood.Collection) error {
	defer s.schemaChanged(q)
	if err := s.LockSchema(ctx, q); err != nil {
		return err
	}
	var views []*underhood.Collection
	if s.dialect.StrictViews() {
		var err error
		if views, err = s.dropViews(ctx, q); err != nil {
			return err
		}
	}
	drop := `DROP TABLE IF EXISTS `
	if c.IsView() {
		drop = `DROP VIEW IF EXISTS `
	}
	if _, err := q.ExecContext(ctx, drop+s.quote(c.Name)); err != nil {
		return fmt.Errorf("delete collection %s: %w", c.Name, err)
	}
	if _, err := q.ExecContext(ctx, `DELETE FROM _collections WHERE id = `+s.ph(1), c.ID); err != nil {
		return fmt.Errorf("delete collection %s: %w", c.Name, err)
	}
	if err := s.createViews(ctx, q, views, c.ID); err != nil {
		return err
	}
	return s.notify(ctx, q, TopicSchema)
}

// TruncateCollection deletes every record of c. Views cannot be truncated.
func (s *Store) TruncateCollection(ctx context.Context, q Querier, c *underhood.Collection) error {
	if c.IsView() {
		return underhood.Errorf(underhood.EInvalid, "View collections cannot be truncated.")
	}
	if _, err := q.ExecContext(ctx, `DELETE FROM `+s.quote(c.Name)); err != nil {
		return fmt.Errorf("truncate collection %s: %w", c.Name, err)
	}
	return nil
}

// GetParam decodes the JSON value stored under key into dst; found is
// false (and dst untouched) when there is none.
func (s *Store) GetParam(ctx context.Context, q Querier, key string, dst any) (found bool, err error) {
	var v sql.NullString
	err = q.QueryRowContext(ctx, `SELECT value FROM _params WHERE key = `+s.ph(1), key).Scan(&v)
	if err == sql.ErrNoRows {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("get param %s: %w", key, err)
	}
	if !v.Valid {
		return true, nil
	}
	if err := jsonUnmarshal([]byte(v.String), dst); err != nil {
		return true, fmt.Errorf("get param %s: %w", key, err)
	}
	return true, nil
}

// SetParam stores v, JSON encoded, under key.
func (s *Store) SetParam(ctx context.Context, q Querier, key string, v any) error {
	data, err := jsonMarshal(v)
	if err != nil {
		return fmt.Errorf("set param %s: %w", key, err)
	}
	now := underhood.FormatTime(time.Now())
	stmt := `INSERT INTO _params (key, value, created, updated) VALUES (` + s.phs(1, 4) +
		`) ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated = excluded.updated`
	if _, err := q.ExecContext(ctx, stmt, key, string(data), now, now); err != nil {
		return fmt.Errorf("set param %s: %w", key, err)
	}
	return s.notify(ctx, q, TopicParams)
}
