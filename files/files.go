// Package files owns the bytes of file fields: uploads streamed from
// multipart bodies (size limits, content-detected types, safe unique
// names), serving them with range and conditional requests and headers
// that keep them inert, thumbnails, and their removal once the records
// that held them are gone. The bytes live in a Storage: the local disk
// (Local) or an S3-compatible bucket (S3). Records keep only the names;
// record.Service decides who may write or see them.
package files

import (
	"context"
	"log/slog"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/underhood/underhood"
	"github.com/underhood/underhood/record"
)

// Defaults of Options.
const (
	// DefaultMaxSize is the size limit of a file field that sets none
	// (PocketBase's).
	DefaultMaxSize = 5 << 20
	// DefaultMaxFiles is how many files one request may upload.
	DefaultMaxFiles = 100
	// DefaultOrphanAge is how old an unreferenced file must be before the
	// sweep removes it; younger ones may belong to a write in flight.
	DefaultOrphanAge = time.Hour
	// DefaultSweepInterval is how often the orphan sweep runs.
	DefaultSweepInterval = time.Hour
	// DefaultThumbMemory is how many bytes making one thumbnail may
	// allocate: decoding the source image and scaling it. A larger image
	// gets no thumbnail (its original is served).
	DefaultThumbMemory = 64 << 20
)

// Options tune a Service; zero values take the defaults.
type Options struct {
	MaxFiles      int
	OrphanAge     time.Duration
	SweepInterval time.Duration // negative: no background sweep
	// StagingDir is where uploads wait for their write when the storage
	// has no staging directory of its own (S3); "" is os.TempDir().
	StagingDir string
	// ThumbMemory bounds the bytes making one thumbnail may allocate;
	// 0 means DefaultThumbMemory.
	ThumbMemory int64
	// ThumbJobs is how many thumbnails may be generated at once; 0 means
	// GOMAXPROCS.
	ThumbJobs int
}

// Service stores, serves and removes the files of records.
type Service struct {
	store   Storage
	records *record.Service
	log     *slog.Logger
	opts    Options
	now     func() time.Time

	thumbs     flight        // thumbnails being generated (thumb.go)
	thumbSlots chan struct{} // one element per generation running
	thumbsMade atomic.Int64
	thumbHook  func() // tests: runs in each generation, in its slot

	// removals are deletions waiting for the worker (cleanup.go).
	mu       sync.Mutex
	removals []removal
	pending  int // queued or running
	wake     chan struct{}

	stopListen func()
	cancel     context.CancelFunc
	done       sync.WaitGroup
}

// New returns the file service over store. It listens to records' committed
// changes to delete the files that updates and deletes drop, and runs the
// orphan sweep in the background until Close.
func New(store Storage, records *record.Service, log *slog.Logger, opts Options) *Service {
	if log == nil {
		log = slog.Default()
	}
	if opts.MaxFiles <= 0 {
		opts.MaxFiles = DefaultMaxFiles
	}
	if opts.OrphanAge <= 0 {
		opts.OrphanAge = DefaultOrphanAge
	}
	if opts.SweepInterval == 0 {
		opts.SweepInterval = DefaultSweepInterval
	}
	if opts.ThumbMemory <= 0 {
		opts.ThumbMemory = DefaultThumbMemory
	}
	if opts.ThumbJobs <= 0 {
		opts.ThumbJobs = runtime.GOMAXPROCS(0)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Service{
		store: store, records: records, log: log, opts: opts,
		now:        func() time.Time { return time.Now().UTC() },
		wake:       make(chan struct{}, 1),
		cancel:     cancel,
		thumbSlots: make(chan struct{}, opts.ThumbJobs),
	}
	s.stopListen = records.Listen(s.onChange)
	s.done.Add(1)
	go func() {
		defer s.done.Done()
		s.removeLoop(ctx)
	}()
	if opts.SweepInterval > 0 {
		s.done.Add(1)
		go func() {
			defer s.done.Done()
			s.sweepLoop(ctx)
		}()
	}
	return s
}

// Close stops listening, finishes the deletions already queued and stops
// the background work.
func (s *Service) Close() {
	s.stopListen()
	s.cancel()
	s.done.Wait()
}

// Storage returns the storage the service keeps files in.
func (s *Service) Storage() Storage { return s.store }

// recordDir is the key prefix of a record's files.
func recordDir(collectionID, recordID string) string {
	return collectionID + "/" + recordID + "/"
}

// fileKey is the key of a stored file of a record.
func fileKey(c *underhood.Collection, recordID, name string) string {
	return recordDir(c.ID, recordID) + name
}

// thumbsPrefix is the key prefix of a file's thumbnails.
func thumbsPrefix(c *underhood.Collection, recordID, name string) string {
	return recordDir(c.ID, recordID) + "thumbs_" + name + "/"
}

// stagingDir is where uploads are written before they are stored.
func (s *Service) stagingDir() string {
	if st, ok := s.store.(stager); ok {
		return st.StagingDir()
	}
	if s.opts.StagingDir != "" {
		return s.opts.StagingDir
	}
	return os.TempDir()
}

// fileField returns the file field of r that holds name, or nil.
func fileField(r *underhood.Record, name string) *underhood.Field {
	for _, f := range r.Collection.Fields {
		if f.Type != underhood.FieldFile {
			continue
		}
		for _, n := range r.Strings(f.Name) {
			if n == name {
				return f
			}
		}
	}
	return nil
}
