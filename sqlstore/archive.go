package sqlstore

import (
	"bufio"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"time"

	"github.com/underhood/underhood"
)

// This file moves a whole project between databases, and so between
// engines: Export writes the collections, the params (settings) and every
// record to a portable archive, Import restores it into an empty database
// of either engine.
//
// An archive is gzip-compressed JSON Lines. The first line is the header
// {"type":"header","format":"underhood-archive","version":1,...}; then
// come the collections in creation order ({"type":"collection",
// "collection":{…as stored}}), the params ({"type":"param","key":…,
// "value":…}), the records of each table collection ({"type":"record",
// "key":"<collection id>","data":{…}}, values in their API form, password
// hashes and token keys included), and a trailer {"type":"end",…} with
// the counts, which tells a complete archive from a cut one. Uploaded
// files and the event history are not part of it.

// Archive format name and version. A reader accepts versions up to its
// own; the version is raised only by changes that older readers cannot
// read.
const (
	ArchiveFormat  = "underhood-archive"
	ArchiveVersion = 1
)

// archivePage is how many records Export reads per query.
const archivePage = 1000

// ArchiveStats counts what an archive holds.
type ArchiveStats struct {
	Collections int `json:"collections"`
	Params      int `json:"params"`
	Records     int `json:"records"`
}

// archiveLine is one line of an archive.
type archiveLine struct {
	Type       string          `json:"type"`
	Format     string          `json:"format,omitempty"`
	Version    int             `json:"version,omitempty"`
	Engine     string          `json:"engine,omitempty"`
	Created    string          `json:"created,omitempty"`
	Collection json.RawMessage `json:"collection,omitempty"`
	Key        string          `json:"key,omitempty"`
	Value      json.RawMessage `json:"value,omitempty"`
	Data       json.RawMessage `json:"data,omitempty"`
	*ArchiveStats
}

// Export writes the whole database to w as an archive, from one snapshot.
func (s *Store) Export(ctx context.Context, w io.Writer) (ArchiveStats, error) {
	var stats ArchiveStats
	zw := gzip.NewWriter(w)
	enc := json.NewEncoder(zw)
	enc.SetEscapeHTML(false)
	err := s.Read(ctx, func(q Querier) error {
		if err := enc.Encode(archiveLine{Type: "header", Format: ArchiveFormat, Version: ArchiveVersion,
			Engine: s.dialect.Name(), Created: underhood.FormatTime(time.Now())}); err != nil {
			return err
		}
		colls, err := s.LoadCollections(ctx, q)
		if err != nil {
			return err
		}
		for _, c := range colls {
			data, err := c.MarshalStorage()
			if err != nil {
				return fmt.Errorf("collection %s: %w", c.Name, err)
			}
			if err := enc.Encode(archiveLine{Type: "collection", Collection: data}); err != nil {
				return err
			}
			stats.Collections++
		}
		if err := s.exportParams(ctx, q, enc, &stats); err != nil {
			return err
		}
		for _, c := range colls {
			if c.IsView() {
				continue
			}
			if err := s.exportRecords(ctx, q, enc, c, &stats); err != nil {
				return err
			}
		}
		return enc.Encode(archiveLine{Type: "end", ArchiveStats: &stats})
	})
	if err != nil {
		return stats, fmt.Errorf("export: %w", err)
	}
	if err := zw.Close(); err != nil {
		return stats, fmt.Errorf("export: %w", err)
	}
	return stats, nil
}

// exportParams writes every row of _params.
func (s *Store) exportParams(ctx context.Context, q Querier, enc *json.Encoder, stats *ArchiveStats) error {
	rows, err := q.QueryContext(ctx, `SELECT key, value FROM _params ORDER BY key`)
	if err != nil {
		return fmt.Errorf("params: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var key string
		var value []byte
		if err := rows.Scan(&key, &value); err != nil {
			return fmt.Errorf("params: %w", err)
		}
		if value == nil {
			value = []byte("null")
		}
		if err := enc.Encode(archiveLine{Type: "param", Key: key, Value: compactJSON(value)}); err != nil {
			return err
		}
		stats.Params++
	}
	return rows.Err()
}

// exportRecords writes the records of c, a page at a time in id order.
func (s *Store) exportRecords(ctx context.Context, q Querier, enc *json.Encoder, c *underhood.Collection, stats *ArchiveStats) error {
	after := ""
	for {
		page, err := s.Find(ctx, q, Query{Collection: c, Where: Compare("id", OpGt, after),
			Order: []Order{{Field: "id"}}, Limit: archivePage})
		if err != nil {
			return err
		}
		for _, r := range page {
			data, err := json.Marshal(r.Data)
			if err != nil {
				return fmt.Errorf("record %s of %s: %w", r.ID(), c.Name, err)
			}
			if err := enc.Encode(archiveLine{Type: "record", Key: c.ID, Data: data}); err != nil {
				return err
			}
			stats.Records++
			after = r.ID()
		}
		if len(page) < archivePage {
			return nil
		}
	}
}

// Import restores an archive into this database, which must have no
// collections yet, in one transaction: an archive that is cut, damaged or
// of a newer version changes nothing. Collections keep their ids, rules
// and indexes; records keep their ids and values, password hashes
// included. A view whose query does not work on this engine fails the
// import with an error that names it.
func (s *Store) Import(ctx context.Context, r io.Reader) (ArchiveStats, error) {
	var stats ArchiveStats
	zr, err := gzip.NewReader(r)
	if err != nil {
		return stats, fmt.Errorf("import: not an archive: %w", err)
	}
	defer zr.Close()
	dec := json.NewDecoder(bufio.NewReaderSize(zr, 1<<16))
	next := func() (*archiveLine, error) {
		var l archiveLine
		if err := dec.Decode(&l); err != nil {
			if errors.Is(err, io.EOF) {
				return nil, errors.New("the archive ends before its trailer: it is incomplete")
			}
			return nil, fmt.Errorf("damaged archive: %w", err)
		}
		return &l, nil
	}
	head, err := next()
	if err != nil {
		return stats, fmt.Errorf("import: %w", err)
	}
	if head.Type != "header" || head.Format != ArchiveFormat {
		return stats, errors.New("import: not an underhood archive")
	}
	if head.Version < 1 || head.Version > ArchiveVersion {
		return stats, fmt.Errorf("import: archive version %d; this binary reads versions 1 to %d", head.Version, ArchiveVersion)
	}
	err = s.Write(ctx, func(q Querier) error {
		if err := s.LockSchema(ctx, q); err != nil {
			return err
		}
		existing, err := s.LoadCollections(ctx, q)
		if err != nil {
			return err
		}
		if len(existing) > 0 {
			return fmt.Errorf("the database already has %d collections; import into an empty one (a new data directory, database or schema)", len(existing))
		}
		byID := map[string]*underhood.Collection{}
		for {
			l, err := next()
			if err != nil {
				return err
			}
			switch l.Type {
			case "collection":
				c := &underhood.Collection{}
				if err := c.UnmarshalStorage(l.Collection); err != nil {
					return fmt.Errorf("collection %d: %w", stats.Collections+1, err)
				}
				if err := s.SaveCollection(ctx, q, nil, c); err != nil {
					return fmt.Errorf("collection %s: %w", c.Name, err)
				}
				byID[c.ID] = c
				stats.Collections++
			case "param":
				if err := s.SetParam(ctx, q, l.Key, l.Value); err != nil {
					return err
				}
				stats.Params++
			case "record":
				c := byID[l.Key]
				if c == nil {
					return fmt.Errorf("a record of collection %q, which the archive does not define", l.Key)
				}
				rec, err := archiveRecord(c, l.Data)
				if err != nil {
					return err
				}
				if err := s.InsertRecord(ctx, q, rec); err != nil {
					return fmt.Errorf("record %s of %s: %w", rec.ID(), c.Name, err)
				}
				stats.Records++
			case "end":
				if l.ArchiveStats == nil || *l.ArchiveStats != stats {
					return fmt.Errorf("the archive's trailer counts %+v, but it holds %+v", l.ArchiveStats, stats)
				}
				return nil
			default:
				return fmt.Errorf("unknown line type %q", l.Type)
			}
		}
	})
	if err != nil {
		return stats, fmt.Errorf("import: %w", err)
	}
	return stats, nil
}

// archiveRecord decodes the data of a record of c from an archive, each
// value in the Go form of its field.
func archiveRecord(c *underhood.Collection, data json.RawMessage) (*underhood.Record, error) {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(data, &raw); err != nil {
		return nil, fmt.Errorf("a record of %s: %w", c.Name, err)
	}
	r := &underhood.Record{Collection: c, Data: make(map[string]any, len(c.Fields))}
	for _, f := range c.Fields {
		v, ok := raw[f.Name]
		if !ok {
			continue // the zero value
		}
		val, err := archiveValue(f, v)
		if err != nil {
			return nil, fmt.Errorf("record %s of %s: field %s: %w", raw["id"], c.Name, f.Name, err)
		}
		r.Data[f.Name] = val
	}
	return r, nil
}

// archiveValue decodes one value in the Go form of f.
func archiveValue(f *underhood.Field, v json.RawMessage) (any, error) {
	switch {
	case f.Type == underhood.FieldJSON:
		if string(v) == "null" {
			return json.RawMessage(nil), nil
		}
		return v, nil
	case f.Type == underhood.FieldNumber:
		var n float64
		err := json.Unmarshal(v, &n)
		if math.IsInf(n, 0) || math.IsNaN(n) {
			n = 0
		}
		return n, err
	case f.Type == underhood.FieldBool:
		var b bool
		return b, json.Unmarshal(v, &b)
	case f.Type == underhood.FieldGeoPoint:
		var p underhood.GeoPoint
		return p, json.Unmarshal(v, &p)
	case f.IsMulti():
		var list []string
		if err := json.Unmarshal(v, &list); err != nil {
			return nil, err
		}
		if list == nil {
			list = []string{}
		}
		return list, nil
	}
	var s string
	return s, json.Unmarshal(v, &s)
}
