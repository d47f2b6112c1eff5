package main

import (
	"context"
	"fmt"
	"io"
	"net/url"

	"github.com/underhood/underhood/admin"
	"github.com/underhood/underhood/auth"
)

// printInstallLink prints, when the data directory has no superuser yet, a
// one-time link to create the first one: the dashboard's install form. The
// link goes to stdout, for the person who started the server, and never to
// the log; the token is in the fragment, which browsers never send to the
// server nor put in a Referer.
func printInstallLink(ctx context.Context, stdout io.Writer, a *auth.Service, base string) error {
	token, err := a.NewInstallToken(ctx)
	if err != nil || token == "" {
		return err
	}
	fmt.Fprintf(stdout, "No superuser exists yet. Create the first one within an hour at this one-time link to the dashboard:\n  %s%s#/install?token=%s\n(or run: underhood superuser upsert EMAIL PASSWORD)\n\n", base, admin.Prefix, url.QueryEscape(token))
	return nil
}
