package ratelimit

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// Redis is a Store in Redis, so that every node of a cluster counts against
// the same limits. A window is a key with an expiry, so Redis drops ended
// windows by itself. The connection (TLS, Sentinel, Cluster, pooling,
// reconnecting) is go-redis's; the store adds the counting script and its
// own bounds.
type Redis struct {
	client redis.UniversalClient
	add    *redis.Script // addScript
}

// Bounds of a Redis store.
const (
	redisMaxConns  = 32
	redisTimeout   = 2 * time.Second
	redisKeyPrefix = "underhood:rl:"
)

// addScript adds ARGV[1] hits to the window KEYS[1] and returns its count
// and the milliseconds until it ends; a new window ends ARGV[2] ms from now.
// A negative ARGV[1] (a refund) opens no window and never takes the count
// below zero.
const addScript = `local n = tonumber(ARGV[1])
if n < 0 then
  local c = tonumber(redis.call('GET', KEYS[1]) or '0')
  if c <= 0 then
    return {0, 0}
  end
  n = math.max(n, -c)
end
local c = redis.call('INCRBY', KEYS[1], n)
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  ttl = tonumber(ARGV[2])
end
return {c, ttl}`

// NewRedis returns a store in the Redis deployment rawURL names, after
// checking that it answers. The URL selects the deployment:
//
//   - redis://[user:password@]host[:port][/db] is one server;
//     redis://password@host, without a colon, authenticates with the
//     password alone.
//   - rediss://… is the same over TLS (the certificate is verified against
//     host).
//   - ?master_name=NAME makes host and every &addr=host:port Sentinels that
//     give the address of the master NAME; user:password@ then
//     authenticates to the Sentinels and &username=…&password=… to the
//     master.
//   - &addr=host:port (one or more) without master_name makes host and
//     every addr seed nodes of a Redis Cluster, which has only database 0.
//
// Other query options of go-redis (protocol, client_name, skip_verify, …)
// are passed on, except those that would undo the store's bounds (pool
// size, timeouts, retries), which are refused.
func NewRedis(ctx context.Context, rawURL string) (*Redis, error) {
	target, err := parseRedisURL(rawURL)
	if err != nil {
		return nil, fmt.Errorf("ratelimit: %w", err)
	}
	r := &Redis{client: target.client(), add: redis.NewScript(addScript)}
	ctx, cancel := context.WithTimeout(ctx, redisTimeout)
	defer cancel()
	if err := r.client.Ping(ctx).Err(); err != nil {
		r.Close()
		return nil, fmt.Errorf("ratelimit: redis: %w", err)
	}
	return r, nil
}

// Add implements Store.
func (r *Redis) Add(ctx context.Context, key string, n int, window time.Duration) (int, time.Time, error) {
	ms := max(window.Milliseconds(), 1)
	ctx, cancel := context.WithTimeout(ctx, redisTimeout)
	defer cancel()
	sent := time.Now()
	// Run sends the script's SHA-1 (EVALSHA) and its body (EVAL) only when
	// the server has not cached it yet.
	v, err := r.add.Run(ctx, r.client, []string{redisKeyPrefix + key}, n, ms).Int64Slice()
	if err != nil {
		return 0, time.Time{}, fmt.Errorf("redis add: %w", err)
	}
	if len(v) != 2 {
		return 0, time.Time{}, fmt.Errorf("redis add: unexpected answer %v", v)
	}
	count, ttl := v[0], v[1]
	return int(count), sent.Add(time.Duration(ttl) * time.Millisecond), nil
}

// Reset implements Store.
func (r *Redis) Reset(ctx context.Context, key string) error {
	ctx, cancel := context.WithTimeout(ctx, redisTimeout)
	defer cancel()
	if err := r.client.Del(ctx, redisKeyPrefix+key).Err(); err != nil {
		return fmt.Errorf("redis reset: %w", err)
	}
	return nil
}

// Close closes the connections; commands still running fail. Its error is
// dropped: a store being closed has nothing left to do with one.
func (r *Redis) Close() {
	_ = r.client.Close()
}

// redisTarget is the deployment a Redis URL names: exactly one field is
// set.
type redisTarget struct {
	server   *redis.Options         // one server
	sentinel *redis.FailoverOptions // the master of a Sentinel group
	cluster  *redis.ClusterOptions  // a Redis Cluster
}

// client returns a client of t. It connects lazily: the first command
// dials.
func (t redisTarget) client() redis.UniversalClient {
	switch {
	case t.sentinel != nil:
		return redis.NewFailoverClient(t.sentinel)
	case t.cluster != nil:
		return redis.NewClusterClient(t.cluster)
	default:
		return redis.NewClient(t.server)
	}
}

// parseRedisURL reads a URL of the forms NewRedis describes. Its errors
// never quote the URL, which may hold a password.
func parseRedisURL(rawURL string) (redisTarget, error) {
	u, err := url.Parse(rawURL)
	// url.Parse's own error quotes the whole URL, password included.
	if err != nil || (u.Scheme != "redis" && u.Scheme != "rediss") || u.Hostname() == "" {
		return redisTarget{}, errors.New("invalid Redis URL (want redis[s]://[user:password@]host[:port][/db])")
	}
	q := u.Query()
	// go-redis options the store sets itself, so that each call is bounded
	// by redisTimeout and the pool by redisMaxConns whatever the URL says.
	fixed := []string{
		"pool_size", "max_active_conns", "pool_timeout", "dial_timeout",
		"read_timeout", "write_timeout", "context_timeout_enabled", "max_retries",
	}
	for _, name := range fixed {
		if q.Has(name) {
			return redisTarget{}, fmt.Errorf("invalid Redis URL: option %s is set by the store", name)
		}
	}
	// go-redis reads redis://secret@host as a user without a password;
	// NewRedis has always read it as the password, and URLs in use rely
	// on that.
	username, password := u.User.Username(), ""
	if p, set := u.User.Password(); set {
		password = p
	} else {
		username, password = "", username
	}

	// Every deployment gets the same bounds, and no command is resent
	// (MaxRetries -1): a script whose answer was lost may have run, and
	// running it again would count a hit twice or give a refund twice. A
	// dead pooled connection is found before it is used and a failed dial
	// is retried, so reconnecting needs no resend.
	var t redisTarget
	switch {
	case q.Has("master_name"):
		o, err := redis.ParseFailoverURL(rawURL)
		if err != nil {
			return redisTarget{}, fmt.Errorf("invalid Redis Sentinel URL: %w", err)
		}
		if o.DB < 0 {
			return redisTarget{}, fmt.Errorf("invalid Redis database %d", o.DB)
		}
		o.SentinelUsername, o.SentinelPassword = username, password
		o.PoolSize, o.MaxActiveConns, o.PoolTimeout = redisMaxConns, redisMaxConns, redisTimeout
		o.DialTimeout, o.ReadTimeout, o.WriteTimeout = redisTimeout, redisTimeout, redisTimeout
		o.ContextTimeoutEnabled, o.MaxRetries = true, -1
		t.sentinel = o
	case q.Has("addr"):
		if strings.Trim(u.Path, "/") != "" {
			return redisTarget{}, errors.New("invalid Redis Cluster URL: a cluster has only database 0, give no /db")
		}
		o, err := redis.ParseClusterURL(rawURL)
		if err != nil {
			return redisTarget{}, fmt.Errorf("invalid Redis Cluster URL: %w", err)
		}
		o.Username, o.Password = username, password
		o.PoolSize, o.MaxActiveConns, o.PoolTimeout = redisMaxConns, redisMaxConns, redisTimeout
		o.DialTimeout, o.ReadTimeout, o.WriteTimeout = redisTimeout, redisTimeout, redisTimeout
		// The pool bound is per node. A cluster still resends a command
		// after a connection error, as part of following moved slots
		// (MaxRedirects, which must stay on).
		o.ContextTimeoutEnabled, o.MaxRetries = true, -1
		t.cluster = o
	default:
		o, err := redis.ParseURL(rawURL)
		if err != nil {
			return redisTarget{}, fmt.Errorf("invalid Redis URL: %w", err)
		}
		if o.DB < 0 {
			return redisTarget{}, fmt.Errorf("invalid Redis database %d", o.DB)
		}
		o.Username, o.Password = username, password
		o.PoolSize, o.MaxActiveConns, o.PoolTimeout = redisMaxConns, redisMaxConns, redisTimeout
		o.DialTimeout, o.ReadTimeout, o.WriteTimeout = redisTimeout, redisTimeout, redisTimeout
		o.ContextTimeoutEnabled, o.MaxRetries = true, -1
		t.server = o
	}
	return t, nil
}

// LogRedisTo sends go-redis's own messages (a dial that failed, a pool
// that could not reconnect) to log as warnings instead of the process's
// standard error. go-redis has one logger per process.
func LogRedisTo(log *slog.Logger) { redis.SetLogger(redisLog{log}) }

type redisLog struct{ log *slog.Logger }

func (l redisLog) Printf(ctx context.Context, format string, v ...any) {
	l.log.WarnContext(ctx, "redis: "+fmt.Sprintf(format, v...))
}
