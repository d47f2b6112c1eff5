package main

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"path/filepath"
	"strconv"

	"github.com/underhood/underhood/files"
	"github.com/underhood/underhood/outbound"
	"github.com/underhood/underhood/record"
)

// storageUsage documents --storage.
const storageUsage = "where uploaded files are kept: an S3-compatible bucket as s3://ACCESS:SECRET@host[:port]/bucket[?region=…&tls=false] " +
	"(default: the s3 settings when enabled, else DIR/storage; also $UH_STORAGE)"

// openStorage returns the file storage of serve: the bucket named by flag
// (s3://…), else the S3 settings when they are enabled, else the storage
// directory of the data directory. A bucket that does not exist yet is
// created.
//
// The endpoint of the flag is trusted: the operator who gives it can reach
// the server's network anyway. The endpoint of the settings was set by a
// superuser over the API, so connections to it are checked as the other
// outbound requests are: an internal address is refused unless allow (the
// --outbound-allow list) holds it.
func openStorage(ctx context.Context, dir, flag string, settings record.S3Settings, allow []netip.Prefix) (files.Storage, error) {
	var cfg files.S3Config
	switch {
	case flag != "":
		c, err := files.ParseS3URL(flag)
		if err != nil {
			return nil, err
		}
		cfg = c
		cfg.Trusted = true
	case settings.Enabled:
		cfg = files.S3Config{Endpoint: settings.Endpoint, Bucket: settings.Bucket, Region: settings.Region,
			AccessKey: settings.AccessKey, SecretKey: settings.Secret, ForcePathStyle: settings.ForcePathStyle, Allow: allow}
	default:
		st, err := files.NewLocal(filepath.Join(dir, "storage"))
		if err != nil {
			return nil, err
		}
		return st, nil
	}
	st, err := files.NewS3(cfg)
	if err != nil {
		return nil, err
	}
	if err := st.EnsureBucket(ctx); err != nil {
		if errors.Is(err, outbound.ErrRefused) {
			return nil, fmt.Errorf("storage %s: the S3 endpoint of the settings is an internal address, refused (%w); "+
				"list its network in --outbound-allow, or give the bucket with --storage", st, err)
		}
		return nil, fmt.Errorf("storage %s: %w", st, err)
	}
	return st, nil
}

// fileOptions returns the options of the file service from the values of
// --max-thumb-memory (MiB) and --max-thumb-jobs.
func fileOptions(thumbMemory, thumbJobs string) (files.Options, error) {
	mib, err := strconv.Atoi(thumbMemory)
	if err != nil || mib < 1 || mib > 1<<20 {
		return files.Options{}, fmt.Errorf("serve: --max-thumb-memory %q: want a number of MiB from 1 to 1048576", thumbMemory)
	}
	jobs, err := strconv.Atoi(thumbJobs)
	if err != nil || jobs < 1 || jobs > 1024 {
		return files.Options{}, fmt.Errorf("serve: --max-thumb-jobs %q: want a number from 1 to 1024", thumbJobs)
	}
	return files.Options{ThumbMemory: int64(mib) << 20, ThumbJobs: jobs}, nil
}
