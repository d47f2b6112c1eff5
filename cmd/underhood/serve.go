package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/underhood/underhood/admin"
	"github.com/underhood/underhood/auth"
	"github.com/underhood/underhood/events"
	"github.com/underhood/underhood/files"
	"github.com/underhood/underhood/mail"
	"github.com/underhood/underhood/outbound"
	"github.com/underhood/underhood/ratelimit"
	"github.com/underhood/underhood/realtime"
	"github.com/underhood/underhood/record"
	"github.com/underhood/underhood/rest"
	"github.com/underhood/underhood/server"
	"github.com/underhood/underhood/sqlstore"
)

// shutdownTimeout bounds how long serve waits for in-flight requests after
// it is asked to stop; requests still running then are cut off.
const shutdownTimeout = 10 * time.Second

// serve runs the HTTP server until ctx is cancelled or the process gets
// SIGINT/SIGTERM, then stops accepting connections, waits for in-flight
// requests and closes the store.
func serve(ctx context.Context, e env, dir, db string, args []string) (err error) {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	expandFlags := addExpandLimitFlags(fs, e.getenv)
	addr := fs.String("http", envOr(e.getenv, "UH_HTTP", defaultHTTP), "address to listen on (host:port; port 0 picks a free one)")
	fs.StringVar(&dir, "dir", dir, "data directory")
	fs.StringVar(&db, "db", db, dbUsage)
	origins := fs.String("origins", "*", "comma-separated origins allowed by CORS")
	storage := fs.String("storage", envOr(e.getenv, "UH_STORAGE", ""), storageUsage)
	natsURL := fs.String("nats", envOr(e.getenv, "UH_NATS", ""),
		"NATS server (nats://host:port): every event is published to underhood.<collection>.<action>, and realtime reaches the subscribers of every node")
	natsStream := fs.String("nats-stream", envOr(e.getenv, "UH_NATS_STREAM", events.DefaultStream),
		"with --nats on a server that runs JetStream: the stream to create for the events when none captures underhood.> yet (empty: no stream)")
	redisURL := fs.String("redis", envOr(e.getenv, "UH_REDIS", ""),
		"Redis (redis://[user:password@]host:port[/db], rediss:// for TLS; ?master_name=NAME for Sentinel, ?addr=host:port for Cluster) that keeps the rate-limit and failed-login counts, so that every node counts against the same limits")
	outboundAllow := fs.String("outbound-allow", envOr(e.getenv, "UH_OUTBOUND_ALLOW", ""),
		"comma-separated networks (CIDR or address) the server may reach although they are internal, e.g. 127.0.0.1/32 for an OAuth2 provider, a webhook receiver, the SMTP server or an S3 endpoint of the settings on loopback")
	httpLimits := addHTTPLimitFlags(fs, e.getenv)
	thumbMemory := fs.String("max-thumb-memory", envOr(e.getenv, "UH_MAX_THUMB_MEMORY", strconv.Itoa(files.DefaultThumbMemory>>20)),
		"MiB that making one thumbnail may allocate (decoding the image and scaling it); a larger image is served without a thumbnail")
	thumbJobs := fs.String("max-thumb-jobs", envOr(e.getenv, "UH_MAX_THUMB_JOBS", strconv.Itoa(runtime.GOMAXPROCS(0))),
		"thumbnails generated at once; other first requests for a thumbnail wait")
	realtimeLimits := realtimeFlags(fs, e.getenv)
	public := addPublicFlags(fs, e.getenv)
	queryTime := sqlstore.DefaultMaxQueryTime
	if v := strings.TrimSpace(e.getenv("UH_MAX_QUERY_TIME")); v != "" {
		if queryTime, err = time.ParseDuration(v); err != nil {
			return fmt.Errorf("serve: UH_MAX_QUERY_TIME: %w", err)
		}
	}
	maxQueryTime := fs.Duration("max-query-time", queryTime,
		"time a client's list, view, count or expand may take before it is refused with a 400 (0: no limit; also $UH_MAX_QUERY_TIME)")
	positional, err := parseInterleaved(fs, args)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	if len(positional) > 0 {
		return fmt.Errorf("serve: unexpected argument %q", positional[0])
	}
	lim, err := httpLimits.parse()
	if err != nil {
		return err
	}
	if *maxQueryTime < 0 {
		return fmt.Errorf("serve: --max-query-time %s: want a duration of 0 (no limit) or more", *maxQueryTime)
	}
	allow, err := outbound.ParseAllow(*outboundAllow)
	if err != nil {
		return fmt.Errorf("serve: --outbound-allow: %w", err)
	}
	expandLimits, err := expandFlags.parse()
	if err != nil {
		return err
	}
	fileOpts, err := fileOptions(*thumbMemory, *thumbJobs)
	if err != nil {
		return err
	}
	rtLimits, err := realtimeLimits()
	if err != nil {
		return err
	}

	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	logOut := newLogWriter(e.stderr)
	defer logOut.Close()
	log := slog.New(slog.NewTextHandler(logOut, nil))
	static, err := public.static(log)
	if err != nil {
		return err
	}

	store, err := openStore(ctx, dir, db, func(c *sqlstore.Config) {
		c.MaxQueryTime = *maxQueryTime
		if c.MaxQueryTime == 0 {
			c.MaxQueryTime = -1 // no limit
		}
	})
	if err != nil {
		return err
	}
	// The store closes last, after every request that could use it.
	defer func() {
		if cerr := store.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("close store: %w", cerr)
		}
	}()
	records, err := record.New(ctx, store, log)
	if err != nil {
		return err
	}
	records.UseExpandLimits(expandLimits)
	warnWideDir(log, dir)
	fileStore, err := openStorage(ctx, dir, *storage, records.Settings().S3, allow)
	if err != nil {
		return err
	}
	fileSvc := files.New(fileStore, records, log, fileOpts)
	defer fileSvc.Close()
	// Webhooks get every committed change through the outbox relay; the
	// relay stops first, then the deliveries, both before the store. Both
	// keep their own tables in the store; the outbox they read through
	// records.
	webhooks, err := events.NewWebhooks(ctx, store, records, log, events.WebhookOptions{
		Client: outbound.New(outbound.Options{Allow: allow, MaxRedirects: -1}),
	})
	if err != nil {
		return err
	}
	defer webhooks.Close()
	consumers := []events.Consumer{webhooks}
	var bus *events.NATS
	if *natsURL != "" {
		if bus, err = events.NewNATS(ctx, *natsURL, records, log, events.NATSOptions{Stream: *natsStream}); err != nil {
			return fmt.Errorf("serve: --nats: %w", err)
		}
		defer bus.Close()
		consumers = append(consumers, bus)
	}
	relay, err := events.NewRelay(ctx, store, records, log, events.RelayOptions{}, consumers...)
	if err != nil {
		return err
	}
	defer relay.Close()
	var limits ratelimit.Store // nil: each node counts in its memory
	if *redisURL != "" {
		ratelimit.LogRedisTo(log)
		rs, err := ratelimit.NewRedis(ctx, *redisURL)
		if err != nil {
			return fmt.Errorf("serve: --redis: %w", err)
		}
		defer rs.Close()
		limits = rs
	}
	authSvc := auth.New(records, log)
	if limits != nil {
		authSvc.UseLimiter(limits)
	}
	authSvc.UseOutbound(outbound.New(outbound.Options{Allow: allow}))
	authSvc.UseMailer(mail.New(records, mail.Options{Allow: allow}))
	// Emails still being sent (they may write one-time passwords) finish
	// before the store closes.
	defer func() {
		mailCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownTimeout)
		defer cancel()
		if cerr := authSvc.Close(mailCtx); cerr != nil {
			log.Warn("shutdown: emails not sent", "err", cerr)
		}
	}()
	// Realtime streams never end by themselves: the broker closes them
	// when the server shuts down (RegisterOnShutdown below).
	broker := realtime.New(records, log)
	broker.SetLimits(rtLimits)
	defer broker.Close()
	if bus != nil {
		// The changes other nodes commit reach this node's subscribers.
		if err := bus.OnRemote(broker.Inject); err != nil {
			return fmt.Errorf("serve: --nats: %w", err)
		}
		// The OAuth2 popup's redirect may reach another node than the
		// one holding the waiting client.
		if err := bus.OnDirect(broker.SendOnceHere); err != nil {
			return fmt.Errorf("serve: --nats: %w", err)
		}
		broker.UsePeers(bus)
	}
	dashboard, err := admin.New()
	if err != nil {
		return err
	}
	deps := server.Deps{
		API:            rest.NewHandler(rest.Deps{Records: records, Auth: authSvc, Log: log, Realtime: broker, Webhooks: webhooks, Files: fileSvc, JSON: lim.json}),
		Dashboard:      dashboard,
		Auth:           authSvc,
		Log:            log,
		BodyLimit:      lim.body,
		JSONBodyLimit:  lim.jsonBody,
		BodyTimeout:    lim.bodyTime,
		MinBodyRate:    lim.bodyRate,
		Settings:       records,
		AllowedOrigins: splitList(*origins),
		RateLimits:     records,
		RateLimitStore: limits,
	}
	if static != nil {
		// Assigned only when there is a site: a nil *server.Static in
		// the interface would not read as "no site".
		deps.Static = static
	}
	handler := server.New(deps)

	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	srv := &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    1 << 20,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	srv.RegisterOnShutdown(broker.Close)
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()

	base := "http://" + ln.Addr().String()
	// The install link, when there is one, comes before the banner: a
	// script that waits for the banner has it too.
	if err := printInstallLink(ctx, e.stdout, authSvc, base); err != nil {
		log.Error("install link", "err", err)
	}
	fmt.Fprintf(e.stdout, "Server started at %s\n├─ REST API:  %s/api/\n├─ Dashboard: %s%s\n", base, base, base, admin.Prefix)
	if static != nil {
		fmt.Fprintf(e.stdout, "├─ Static:    %s/ from %s%s\n", base, static.Dir(), fallbackNote(static))
	}
	fmt.Fprintf(e.stdout, "└─ Data:      %s\n", dataLocation(dir, db))

	select {
	case err := <-served:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	log.Info("shutting down: waiting for in-flight requests", "timeout", shutdownTimeout)
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownTimeout)
	defer cancel()
	err = srv.Shutdown(shutdownCtx)
	<-served // Serve returns ErrServerClosed as soon as Shutdown starts
	if err != nil {
		srv.Close()
		return fmt.Errorf("shutdown: %w", err)
	}
	return nil
}

// splitList splits a comma-separated flag value, dropping empty items.
func splitList(s string) []string {
	var out []string
	for _, v := range strings.Split(s, ",") {
		if v = strings.TrimSpace(v); v != "" {
			out = append(out, v)
		}
	}
	return out
}
