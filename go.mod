module github.com/underhood/underhood

go 1.26.0

require (
	// Auth tokens (auth/token.go): the field's standard JWT library.
	github.com/golang-jwt/jwt/v5 v5.3.1
	// Test diffs (STYLE.md rule 11).
	github.com/google/go-cmp v0.7.0
	// Password hashing (bcrypt, as PocketBase stores it).
	golang.org/x/crypto v0.58.0
	// The embedded database: SQLite in pure Go, so the binary builds
	// without cgo on every platform.
	modernc.org/sqlite v1.62.0
)

require (
	github.com/aymerick/douceur v0.2.0 // indirect
	github.com/cespare/xxhash/v2 v2.3.0 // indirect
	github.com/dustin/go-humanize v1.1.0 // indirect
	github.com/google/uuid v1.6.0 // indirect
	github.com/gorilla/css v1.0.1 // indirect
	github.com/jackc/pgpassfile v1.0.0 // indirect
	github.com/jackc/pgservicefile v0.0.0-20240606120523-5a60cdf6a761 // indirect
	github.com/jackc/puddle/v2 v2.2.3 // indirect
	github.com/klauspost/compress v1.20.2 // indirect
	github.com/klauspost/cpuid/v2 v2.4.0 // indirect
	github.com/klauspost/crc32 v1.3.0 // indirect
	github.com/mattn/go-isatty v0.0.24 // indirect
	github.com/minio/crc64nvme v1.1.1 // indirect
	github.com/minio/md5-simd v1.1.2 // indirect
	github.com/nats-io/nkeys v0.4.16 // indirect
	github.com/nats-io/nuid v1.0.1 // indirect
	github.com/ncruces/go-strftime v1.1.0 // indirect
	github.com/philhofer/fwd v1.2.0 // indirect
	github.com/remyoudompheng/bigfft v0.0.0-20230129092748-24d4a6f8daec // indirect
	github.com/rs/xid v1.6.0 // indirect
	github.com/tinylib/msgp v1.6.4 // indirect
	github.com/zeebo/xxh3 v1.1.0 // indirect
	go.uber.org/atomic v1.12.0 // indirect
	go.yaml.in/yaml/v3 v3.0.5 // indirect
	golang.org/x/sync v0.24.0 // indirect
	golang.org/x/sys v0.49.0 // indirect
	golang.org/x/text v0.43.0 // indirect
	gopkg.in/ini.v1 v1.67.3 // indirect
	modernc.org/libc v1.80.1 // indirect
	modernc.org/mathutil v1.7.1 // indirect
	modernc.org/memory v1.12.1 // indirect
)

require (
	// WebSocket for /api/realtime/ws (realtime/stream): the handshake,
	// reading (masks, fragments, control frames, the size limit), ping,
	// pong and the closing handshake, by the maintained Go library. The
	// server's text frames are still the realtime hub's, written in its
	// rounds: framing a round's write of 8 events of 1 KB through the
	// library's Write took 2.9-15 µs, half of it in its locks, against
	// 0.2-0.5 µs for the hub's own (realtime/stream BenchmarkFrame), and at
	// 10,000 WebSocket subscribers bench/realtime (TRANSPORT=ws, a shared
	// 2-core machine at load 6-16, interleaved runs) gave p50 320-1442 ms
	// with the library's writes, 295-434 ms with the hub's, 225-385 ms
	// before the library. For the same reason permessage-deflate stays
	// declined: the library would compress every event once per
	// subscriber (84-146 µs a write).
	github.com/coder/websocket v1.8.15
	// PostgreSQL for --db postgres://…: its database/sql driver
	// (pgx/v5/stdlib) and LISTEN/NOTIFY between nodes (sqlstore/postgres).
	github.com/jackc/pgx/v5 v5.12.0
	// Editor fields (record/editor.go): HTML sanitised on write with an
	// allow-list, by the maintained Go sanitiser, rather than a parser and
	// policy of our own; x/net/html is its HTML tokenizer, which the
	// sanitiser test also parses the stored HTML with.
	github.com/microcosm-cc/bluemonday v1.0.27
	// S3 file storage (files/s3.go): minio-go rather than the AWS SDK,
	// because S3-compatible servers, not only AWS, are its target; it
	// needs fewer modules than the SDK's S3 client with its config and
	// credential chain; and it has built in what our hand-written client
	// lacked: multipart uploads for multi-GB objects (backup archives),
	// retries with backoff, and virtual-hosted as well as path-style
	// buckets. It takes our transport, so outbound's guard against
	// internal addresses still applies.
	github.com/minio/minio-go/v7 v7.4.1
	// NATS for serve --nats: every event to underhood.<collection>.<action>
	// for other services, and realtime across nodes (events/nats.go).
	github.com/nats-io/nats.go v1.55.0
	// Redis for serve --redis (ratelimit/redis.go): the maintained client,
	// replacing our own RESP code, because users need what it already does:
	// TLS (rediss://), Sentinel and Cluster, reconnects, a bounded pool and
	// EVALSHA with an EVAL fallback.
	github.com/redis/go-redis/v9 v9.23.0
	// Thumbnails (files/): WebP decoding and a high-quality scaler
	// (draw.CatmullRom), which the standard library lacks.
	golang.org/x/image v0.47.0
	golang.org/x/net v0.60.0
)
