package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"sort"
	"strings"

	"github.com/underhood/underhood"
	"github.com/underhood/underhood/record"
)

// superuser manages the accounts of the _superusers collection directly in
// the database (a running server may share it).
func superuser(ctx context.Context, e env, dir, db string, args []string) error {
	fs := flag.NewFlagSet("superuser", flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	fs.StringVar(&dir, "dir", dir, "data directory")
	fs.StringVar(&db, "db", db, dbUsage)
	positional, err := parseInterleaved(fs, args)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	if len(positional) == 0 {
		return errors.New("superuser: missing action (upsert, create, update or delete)")
	}
	action, positional := positional[0], positional[1:]
	wantArgs := 2
	switch action {
	case "upsert", "create", "update":
	case "delete":
		wantArgs = 1
	default:
		return fmt.Errorf("superuser: unknown action %q (want upsert, create, update or delete)", action)
	}
	switch {
	case len(positional) == 0:
		return errors.New("superuser: missing email argument")
	case len(positional) < wantArgs:
		return errors.New("superuser: missing password argument")
	case len(positional) > wantArgs:
		return fmt.Errorf("superuser: unexpected argument %q", positional[wantArgs])
	}
	email := positional[0]

	store, err := openStore(ctx, dir, db)
	if err != nil {
		return err
	}
	defer store.Close()
	records, err := record.New(ctx, store, slog.New(slog.NewTextHandler(e.stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))
	if err != nil {
		return err
	}
	su, err := records.Collection(underhood.SuperusersName)
	if err != nil {
		return fmt.Errorf("find %s collection: %w", underhood.SuperusersName, err)
	}
	existing, err := records.FindByField(ctx, su, "email", email)
	if underhood.ErrorCode(err) == underhood.ENotFound {
		existing, err = nil, nil
	}
	if err != nil {
		return fmt.Errorf("find superuser: %w", err)
	}

	sys := records.SystemRequest()
	var data map[string]any
	if wantArgs == 2 {
		data = map[string]any{"password": positional[1], "passwordConfirm": positional[1]}
	}
	switch {
	case action == "delete" && existing == nil, action == "update" && existing == nil:
		return fmt.Errorf("superuser %q doesn't exist", email)
	case action == "create" && existing != nil:
		return fmt.Errorf("superuser %q already exists", email)
	case action == "delete":
		if err := records.Delete(ctx, sys, su.Name, existing.ID()); err != nil {
			return describe("delete superuser", err)
		}
		return done(e.stdout, "Successfully deleted superuser %q!\n", email)
	case existing != nil:
		if _, err := records.Update(ctx, sys, su.Name, existing.ID(), data, ""); err != nil {
			return describe("update superuser", err)
		}
	default:
		data["email"] = email
		if _, err := records.Create(ctx, sys, su.Name, data, ""); err != nil {
			return describe("create superuser", err)
		}
	}
	switch action {
	case "create":
		return done(e.stdout, "Successfully created new superuser %q!\n", email)
	case "update":
		return done(e.stdout, "Successfully changed superuser %q password!\n", email)
	default:
		return done(e.stdout, "Successfully saved superuser %q!\n", email)
	}
}

func done(w io.Writer, format string, args ...any) error {
	_, err := fmt.Fprintf(w, format, args...)
	return err
}

// describe turns a validation error into one line naming each field at
// fault ("email: Must be a valid email address."); other errors are wrapped.
func describe(op string, err error) error {
	var ue *underhood.Error
	if !errors.As(err, &ue) || len(ue.Data) == 0 {
		return fmt.Errorf("%s: %w", op, err)
	}
	var parts []string
	flattenFieldErrors("", ue.Data, &parts)
	sort.Strings(parts)
	return fmt.Errorf("%s: %s", op, strings.Join(parts, "; "))
}

func flattenFieldErrors(prefix string, data map[string]any, out *[]string) {
	for k, v := range data {
		name := k
		if prefix != "" {
			name = prefix + "." + k
		}
		switch v := v.(type) {
		case underhood.FieldError:
			*out = append(*out, name+": "+v.Message)
		case *underhood.FieldError:
			*out = append(*out, name+": "+v.Message)
		case map[string]any:
			flattenFieldErrors(name, v, out)
		default:
			*out = append(*out, fmt.Sprintf("%s: %v", name, v))
		}
	}
}
