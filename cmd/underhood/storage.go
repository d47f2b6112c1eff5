package main

import (
	"context"
	"fmt"
	"path/filepath"
	"strconv"

	"github.com/underhood/underhood/files"
	"github.com/underhood/underhood/record"
)

// storageUsage documents --storage.
const storageUsage = "where uploaded files are kept: an S3-compatible bucket as s3://ACCESS:SECRET@host[:port]/bucket[?region=…&tls=false] " +
	"(default: the s3 settings when enabled, else DIR/storage; also $UH_STORAGE)"

// openStorage returns the file storage of serve: the bucket named by flag
// (s3://…), else the S3 settings when they are enabled, else the storage
// directory of the data directory. A bucket that does not exist yet is
// created.
func openStorage(ctx context.Context, dir, flag string, settings record.S3Settings) (files.Storage, error) {
	var cfg files.S3Config
	switch {
	case flag != "":
		c, err := files.ParseS3URL(flag)
		if err != nil {
			return nil, err
		}
		cfg = c
	case settings.Enabled:
		cfg = files.S3Config{Endpoint: settings.Endpoint, Bucket: settings.Bucket, Region: settings.Region,
			AccessKey: settings.AccessKey, SecretKey: settings.Secret}
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
