package rest

import (
	"encoding/json"
	"io"
	"net/http"
	"sort"
	"strings"

	"github.com/underhood/underhood"
	"github.com/underhood/underhood/record"
)

func callerOf(r *http.Request) *underhood.Record { return underhood.Identity(r.Context()) }

// requireSuperuser answers 401 to guests and 403 to other records.
func requireSuperuser(r *http.Request) error {
	c := callerOf(r)
	if c == nil {
		return underhood.Errorf(underhood.EUnauthorized, "The request requires valid record authorization token.")
	}
	if !c.IsSuperuser() {
		return underhood.Errorf(underhood.EForbidden, "The authorized record is not allowed to perform this action.")
	}
	return nil
}

func (a *api) handleCollectionList(w http.ResponseWriter, r *http.Request) error {
	if err := requireSuperuser(r); err != nil {
		return err
	}
	q := r.URL.Query()
	page, err := intParam(q.Get("page"), "page")
	if err != nil {
		return err
	}
	perPage, err := intParam(q.Get("perPage"), "perPage")
	if err != nil {
		return err
	}
	if page < 1 {
		page = 1
	}
	if perPage < 1 {
		perPage = record.DefaultPerPage
	}
	if perPage > record.MaxPerPage {
		perPage = record.MaxPerPage
	}
	list, err := a.records.FilterCollections(r.Context(), q.Get("filter"))
	if err != nil {
		return err
	}
	sortCollections(list, q.Get("sort"))
	total := len(list)
	from := min((page-1)*perPage, total)
	to := min(from+perPage, total)
	totalItems, totalPages := total, (total+perPage-1)/perPage
	if isTrue(q.Get("skipTotal")) {
		totalItems, totalPages = -1, -1
	}
	items := list[from:to]
	if items == nil {
		items = []*underhood.Collection{}
	}
	return writeJSON(w, http.StatusOK, map[string]any{
		"page": page, "perPage": perPage, "totalItems": totalItems, "totalPages": totalPages, "items": items,
	})
}

// sortCollections orders collections by a sort parameter over name,
// type or created ("-name", "created"); the default is creation order.
func sortCollections(list []*underhood.Collection, spec string) {
	terms := strings.Split(spec, ",")
	for i := len(terms) - 1; i >= 0; i-- {
		t := strings.TrimSpace(terms[i])
		desc := strings.HasPrefix(t, "-")
		t = strings.TrimLeft(t, "+-")
		key := func(c *underhood.Collection) string {
			switch t {
			case "name":
				return strings.ToLower(c.Name)
			case "type":
				return c.Type
			case "created":
				return c.Created
			case "updated":
				return c.Updated
			case "id":
				return c.ID
			}
			return ""
		}
		sort.SliceStable(list, func(i, j int) bool {
			if desc {
				return key(list[i]) > key(list[j])
			}
			return key(list[i]) < key(list[j])
		})
	}
}

func (a *api) handleCollectionView(w http.ResponseWriter, r *http.Request) error {
	if err := requireSuperuser(r); err != nil {
		return err
	}
	c, err := a.records.Collection(r.PathValue("c"))
	if err != nil {
		return notFound()
	}
	return writeJSON(w, http.StatusOK, c)
}

func notFound() error {
	return underhood.Errorf(underhood.ENotFound, "The requested resource wasn't found.")
}

func readCollection(r *http.Request, base []byte) (*underhood.Collection, error) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return nil, bodyError(err)
	}
	var patch map[string]json.RawMessage
	if err := json.Unmarshal(body, &patch); err != nil || patch == nil {
		return nil, errBadBody()
	}
	merged := map[string]json.RawMessage{}
	if base != nil {
		if err := json.Unmarshal(base, &merged); err != nil {
			return nil, err
		}
		// The type of an existing collection is fixed; sending another
		// one is refused by validation, not silently ignored.
	}
	for k, v := range patch {
		merged[k] = v
	}
	b, err := json.Marshal(merged)
	if err != nil {
		return nil, err
	}
	c := &underhood.Collection{}
	if err := json.Unmarshal(b, c); err != nil {
		return nil, underhood.Errorf(underhood.EInvalid, "Failed to load the submitted data: %s", err.Error())
	}
	return c, nil
}

func (a *api) handleCollectionCreate(w http.ResponseWriter, r *http.Request) error {
	if err := requireSuperuser(r); err != nil {
		return err
	}
	c, err := readCollection(r, nil)
	if err != nil {
		return err
	}
	saved, err := a.records.SaveCollection(r.Context(), callerOf(r), "", c)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, saved)
}

func (a *api) handleCollectionUpdate(w http.ResponseWriter, r *http.Request) error {
	if err := requireSuperuser(r); err != nil {
		return err
	}
	old, err := a.records.Collection(r.PathValue("c"))
	if err != nil {
		return notFound()
	}
	base, err := json.Marshal(old)
	if err != nil {
		return err
	}
	c, err := readCollection(r, base)
	if err != nil {
		return err
	}
	saved, err := a.records.SaveCollection(r.Context(), callerOf(r), old.ID, c)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, saved)
}

func (a *api) handleCollectionDelete(w http.ResponseWriter, r *http.Request) error {
	dropFiles := a.dropCollectionFiles(r.PathValue("c"))
	if err := a.records.DeleteCollection(r.Context(), callerOf(r), r.PathValue("c")); err != nil {
		return err
	}
	dropFiles()
	return noContent(w)
}

func (a *api) handleCollectionTruncate(w http.ResponseWriter, r *http.Request) error {
	dropFiles := a.dropCollectionFiles(r.PathValue("c"))
	if err := a.records.TruncateCollection(r.Context(), callerOf(r), r.PathValue("c")); err != nil {
		return err
	}
	dropFiles()
	return noContent(w)
}

func (a *api) handleCollectionImport(w http.ResponseWriter, r *http.Request) error {
	if err := requireSuperuser(r); err != nil {
		return err
	}
	var body struct {
		Collections   []*underhood.Collection `json:"collections"`
		DeleteMissing bool                    `json:"deleteMissing"`
	}
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
		if bodyErr := bodyError(err); underhood.ErrorCode(bodyErr) == underhood.ETooLarge {
			return bodyErr
		}
		return underhood.Errorf(underhood.EInvalid, "Failed to load the submitted data: %s", err.Error())
	}
	if err := a.records.ImportCollections(r.Context(), callerOf(r), body.Collections, body.DeleteMissing); err != nil {
		return err
	}
	return noContent(w)
}

func (a *api) handleScaffolds(w http.ResponseWriter, r *http.Request) error {
	if err := requireSuperuser(r); err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, record.ScaffoldCollections())
}

func (a *api) handleSettingsView(w http.ResponseWriter, r *http.Request) error {
	st, err := a.records.PublicSettings(callerOf(r))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, st)
}

func (a *api) handleSettingsUpdate(w http.ResponseWriter, r *http.Request) error {
	if err := requireSuperuser(r); err != nil {
		return err
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return bodyError(err)
	}
	st, err := a.records.UpdateSettings(r.Context(), callerOf(r), body)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, st)
}
