package ratelimit

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Redis is a Store in a Redis server, so that every node of a cluster
// counts against the same limits. It speaks the few commands it needs over
// RESP itself (EVAL, DEL, AUTH, SELECT, PING) with a small pool of
// connections; a window is a key with an expiry, so Redis drops ended
// windows by itself.
type Redis struct {
	addr     string
	username string
	password string
	db       int
	timeout  time.Duration
	idle     chan *redisConn // connections not in use
	slots    chan struct{}   // one per open connection, bounding them
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

// NewRedis returns a store in the Redis server of rawURL
// (redis://[user:password@]host[:port][/db]) after checking that it
// answers.
func NewRedis(ctx context.Context, rawURL string) (*Redis, error) {
	u, err := url.Parse(rawURL)
	if err != nil || u.Scheme != "redis" || u.Host == "" {
		return nil, fmt.Errorf("ratelimit: invalid Redis URL (want redis://[user:password@]host[:port][/db])")
	}
	r := &Redis{
		addr:    u.Host,
		timeout: redisTimeout,
		idle:    make(chan *redisConn, redisMaxConns),
		slots:   make(chan struct{}, redisMaxConns),
	}
	if u.Port() == "" {
		r.addr = net.JoinHostPort(u.Hostname(), "6379")
	}
	if u.User != nil {
		r.username = u.User.Username()
		r.password, _ = u.User.Password()
		if _, set := u.User.Password(); !set { // redis://:password@ or redis://password@
			r.username, r.password = "", r.username
		}
	}
	if db := strings.Trim(u.Path, "/"); db != "" {
		if r.db, err = strconv.Atoi(db); err != nil || r.db < 0 {
			return nil, fmt.Errorf("ratelimit: invalid Redis database %q", db)
		}
	}
	if _, err := r.do(ctx, "PING"); err != nil {
		r.Close()
		return nil, fmt.Errorf("ratelimit: redis: %w", err)
	}
	return r, nil
}

// Add implements Store.
func (r *Redis) Add(ctx context.Context, key string, n int, window time.Duration) (int, time.Time, error) {
	ms := max(window.Milliseconds(), 1)
	sent := time.Now()
	v, err := r.do(ctx, "EVAL", addScript, "1", redisKeyPrefix+key, strconv.Itoa(n), strconv.FormatInt(ms, 10))
	if err != nil {
		return 0, time.Time{}, fmt.Errorf("redis: %w", err)
	}
	list, ok := v.([]any)
	if !ok || len(list) != 2 {
		return 0, time.Time{}, fmt.Errorf("redis: unexpected answer %v", v)
	}
	count, ok1 := list[0].(int64)
	ttl, ok2 := list[1].(int64)
	if !ok1 || !ok2 {
		return 0, time.Time{}, fmt.Errorf("redis: unexpected answer %v", v)
	}
	return int(count), sent.Add(time.Duration(ttl) * time.Millisecond), nil
}

// Reset implements Store.
func (r *Redis) Reset(ctx context.Context, key string) error {
	if _, err := r.do(ctx, "DEL", redisKeyPrefix+key); err != nil {
		return fmt.Errorf("redis: %w", err)
	}
	return nil
}

// Close closes the idle connections; connections in use close when they
// are given back.
func (r *Redis) Close() {
	for {
		select {
		case c := <-r.idle:
			c.nc.Close()
			<-r.slots
		default:
			return
		}
	}
}

// redisConn is one connection and its reader.
type redisConn struct {
	nc net.Conn
	rd *bufio.Reader
	wb []byte
}

// errRedis is an error answer of the server.
type errRedis string

func (e errRedis) Error() string { return string(e) }

// do runs one command on a pooled connection and returns its answer: a
// string, an int64, nil, or a []any of those.
func (r *Redis) do(ctx context.Context, args ...string) (any, error) {
	c, err := r.get(ctx)
	if err != nil {
		return nil, err
	}
	v, err := c.command(ctx, r.timeout, args...)
	var answer errRedis
	if err != nil && !errors.As(err, &answer) {
		// The connection is in an unknown state.
		c.nc.Close()
		<-r.slots
		return nil, err
	}
	r.idle <- c
	return v, err
}

// get takes an idle connection or opens one when there is room.
func (r *Redis) get(ctx context.Context) (*redisConn, error) {
	select {
	case c := <-r.idle:
		return c, nil
	default:
	}
	select {
	case c := <-r.idle:
		return c, nil
	case r.slots <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	c, err := r.dial(ctx)
	if err != nil {
		<-r.slots
		return nil, err
	}
	return c, nil
}

func (r *Redis) dial(ctx context.Context) (*redisConn, error) {
	d := net.Dialer{Timeout: r.timeout}
	nc, err := d.DialContext(ctx, "tcp", r.addr)
	if err != nil {
		return nil, err
	}
	c := &redisConn{nc: nc, rd: bufio.NewReader(nc)}
	var setup [][]string
	switch {
	case r.username != "":
		setup = append(setup, []string{"AUTH", r.username, r.password})
	case r.password != "":
		setup = append(setup, []string{"AUTH", r.password})
	}
	if r.db != 0 {
		setup = append(setup, []string{"SELECT", strconv.Itoa(r.db)})
	}
	for _, args := range setup {
		if _, err := c.command(ctx, r.timeout, args...); err != nil {
			nc.Close()
			return nil, fmt.Errorf("%s: %w", args[0], err)
		}
	}
	return c, nil
}

// command writes one command and reads its answer.
func (c *redisConn) command(ctx context.Context, timeout time.Duration, args ...string) (any, error) {
	deadline := time.Now().Add(timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	if err := c.nc.SetDeadline(deadline); err != nil {
		return nil, err
	}
	b := c.wb[:0]
	b = append(b, '*')
	b = strconv.AppendInt(b, int64(len(args)), 10)
	b = append(b, '\r', '\n')
	for _, a := range args {
		b = append(b, '$')
		b = strconv.AppendInt(b, int64(len(a)), 10)
		b = append(b, '\r', '\n')
		b = append(b, a...)
		b = append(b, '\r', '\n')
	}
	c.wb = b
	if _, err := c.nc.Write(b); err != nil {
		return nil, err
	}
	return readReply(c.rd)
}

// readReply reads one RESP2 value.
func readReply(rd *bufio.Reader) (any, error) {
	line, err := rd.ReadString('\n')
	if err != nil {
		return nil, err
	}
	if len(line) < 3 || line[len(line)-2] != '\r' {
		return nil, fmt.Errorf("malformed reply %q", line)
	}
	kind, body := line[0], line[1:len(line)-2]
	switch kind {
	case '+':
		return body, nil
	case '-':
		return nil, errRedis(body)
	case ':':
		return strconv.ParseInt(body, 10, 64)
	case '$':
		n, err := strconv.Atoi(body)
		if err != nil || n < -1 {
			return nil, fmt.Errorf("malformed bulk length %q", body)
		}
		if n == -1 {
			return nil, nil
		}
		buf := make([]byte, n+2)
		if _, err := io.ReadFull(rd, buf); err != nil {
			return nil, err
		}
		return string(buf[:n]), nil
	case '*':
		n, err := strconv.Atoi(body)
		if err != nil || n < -1 {
			return nil, fmt.Errorf("malformed array length %q", body)
		}
		if n == -1 {
			return nil, nil
		}
		list := make([]any, n)
		var answer error
		for i := range list {
			v, err := readReply(rd)
			var e errRedis
			if errors.As(err, &e) {
				answer = err // read the rest of the array all the same
				continue
			}
			if err != nil {
				return nil, err
			}
			list[i] = v
		}
		return list, answer
	}
	return nil, fmt.Errorf("unknown reply type %q", kind)
}
