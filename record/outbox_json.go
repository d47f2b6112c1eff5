package record

import "github.com/underhood/underhood"

// An event carries its record as JSON, encoded inside the write
// transaction for every change, so it is appended here directly rather
// than through encoding/json's reflection, with the same bytes.

// encodeEventRecord renders r as a superuser sees it, without password
// hashes and the token key, in PocketBase's record JSON.
func encodeEventRecord(r *underhood.Record) []byte {
	c := r.Collection
	b := make([]byte, 0, 256)
	b = append(b, `{"collectionId":`...)
	b = underhood.AppendJSONString(b, c.ID)
	b = append(b, `,"collectionName":`...)
	b = underhood.AppendJSONString(b, c.Name)
	for _, f := range c.Fields {
		if f.Type == underhood.FieldPassword || (c.IsAuth() && f.Name == "tokenKey") {
			continue
		}
		v, ok := r.Data[f.Name]
		if !ok {
			continue
		}
		b = append(b, ',')
		b = underhood.AppendJSONString(b, f.Name)
		b = append(b, ':')
		b = underhood.AppendJSON(b, v)
	}
	return append(b, '}')
}
