package rest

import (
	"encoding/json"
	"io"
	"net/http"

	"github.com/underhood/underhood"
	"github.com/underhood/underhood/record"
)

func (a *api) handleCollectionList(w http.ResponseWriter, r *http.Request) error {
	caller := callerOf(r)
	// Asked before the query is read: a guest meets 401 whatever it sends.
	if err := a.records.AuthorizeAdmin(caller); err != nil {
		return err
	}
	q := r.URL.Query()
	p := record.ListParams{Sort: q.Get("sort"), Filter: q.Get("filter"), SkipTotal: isTrue(q.Get("skipTotal"))}
	var err error
	if p.Page, err = intParam(q.Get("page"), "page"); err != nil {
		return err
	}
	if p.PerPage, err = intParam(q.Get("perPage"), "perPage"); err != nil {
		return err
	}
	page, err := a.records.ListCollections(r.Context(), caller, p)
	if err != nil {
		return err
	}
	items := page.Items
	if items == nil {
		items = []*underhood.Collection{}
	}
	return writeJSON(w, http.StatusOK, map[string]any{
		"page": page.Page, "perPage": page.PerPage, "totalItems": page.TotalItems, "totalPages": page.TotalPages, "items": items,
	})
}

func (a *api) handleCollectionView(w http.ResponseWriter, r *http.Request) error {
	c, err := a.records.ViewCollection(r.Context(), callerOf(r), r.PathValue("c"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, c)
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
	caller := callerOf(r)
	// Asked before the body is read: a guest meets 401 whatever it sends.
	if err := a.records.AuthorizeAdmin(caller); err != nil {
		return err
	}
	c, err := readCollection(r, nil)
	if err != nil {
		return err
	}
	saved, err := a.records.SaveCollection(r.Context(), caller, "", c)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, saved)
}

// handleCollectionUpdate applies the body to the collection as a patch: the
// fields it names replace those of the stored collection.
func (a *api) handleCollectionUpdate(w http.ResponseWriter, r *http.Request) error {
	caller := callerOf(r)
	old, err := a.records.ViewCollection(r.Context(), caller, r.PathValue("c"))
	if err != nil {
		return err
	}
	base, err := json.Marshal(old)
	if err != nil {
		return err
	}
	c, err := readCollection(r, base)
	if err != nil {
		return err
	}
	saved, err := a.records.SaveCollection(r.Context(), caller, old.ID, c)
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
	caller := callerOf(r)
	// Asked before the body is read: a guest meets 401 whatever it sends.
	if err := a.records.AuthorizeAdmin(caller); err != nil {
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
	if err := a.records.ImportCollections(r.Context(), caller, body.Collections, body.DeleteMissing); err != nil {
		return err
	}
	return noContent(w)
}

func (a *api) handleScaffolds(w http.ResponseWriter, r *http.Request) error {
	scaffolds, err := a.records.Scaffolds(callerOf(r))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, scaffolds)
}

func (a *api) handleSettingsView(w http.ResponseWriter, r *http.Request) error {
	st, err := a.records.PublicSettings(callerOf(r))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, st)
}

func (a *api) handleSettingsUpdate(w http.ResponseWriter, r *http.Request) error {
	caller := callerOf(r)
	// Asked before the body is read: a guest meets 401 whatever it sends.
	if err := a.records.AuthorizeAdmin(caller); err != nil {
		return err
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return bodyError(err)
	}
	st, err := a.records.UpdateSettings(r.Context(), caller, body)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, st)
}
