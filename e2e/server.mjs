// Starts the real underhood binary for one test file: a fresh data
// directory, a superuser created through the CLI, and `serve` on a free
// loopback port. Every test file gets its own server, so files never see
// each other's data.

import { spawn, execFile } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import PocketBase from "pocketbase";
import { DB, createSchema } from "./postgres.mjs";

const here = dirname(fileURLToPath(import.meta.url));

/** The binary under test: $UNDERHOOD_BIN, else ../underhood beside e2e/. */
export const BIN = resolve(process.env.UNDERHOOD_BIN || join(here, "..", "underhood"));

export const SUPERUSER_EMAIL = "admin@example.com";
export const SUPERUSER_PASSWORD = "e2e-Admin-pass-1234";

const STARTUP_TIMEOUT_MS = 15_000;
const STOP_TIMEOUT_MS = 12_000;

/** freePort asks the kernel for a port nobody is listening on. */
function freePort() {
    return new Promise((ok, fail) => {
        const srv = createServer();
        srv.unref();
        srv.on("error", fail);
        srv.listen(0, "127.0.0.1", () => {
            const { port } = srv.address();
            srv.close(() => ok(port));
        });
    });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/**
 * startServer creates a fresh data directory, upserts the superuser with
 * the CLI, starts `serve`, and waits until GET /api/health answers 200.
 * It returns { url, dir, pid, client(), superuser(), restart(), stop() }.
 *
 * Options: `args` are extra `serve` flags; with `freshDir` the data
 * directory does not exist before the binary creates it (its modes are
 * the binary's, not mkdtemp's); with `superuser: false` no superuser is
 * made, so the server prints its one-time install link (in output()).
 */
export async function startServer({ args = [], freshDir = false, superuser = true } = {}) {
    const top = await mkdtemp(join(tmpdir(), "underhood-e2e-"));
    const dir = freshDir ? join(top, "uh_data") : top;
    // $UNDERHOOD_E2E_DB: the data is in a PostgreSQL schema of its own.
    const db = DB ? await createSchema() : null;
    const dbArgs = db ? ["--db", db.url] : [];
    try {
        if (superuser) {
            await promisify(execFile)(BIN, ["superuser", "upsert", SUPERUSER_EMAIL, SUPERUSER_PASSWORD, "--dir", dir, ...dbArgs], {
                timeout: STARTUP_TIMEOUT_MS,
            });
        }
    } catch (err) {
        await rm(top, { recursive: true, force: true });
        await db?.drop();
        throw new Error(`${BIN} superuser upsert failed: ${err.message}\n${err.stderr ?? ""}`);
    }
    try {
        const started = await spawnServe([...dbArgs, ...args], dir);
        return makeHandle({ ...started, dir, top, db, serveArgs: [...dbArgs, ...args] });
    } catch (err) {
        await rm(top, { recursive: true, force: true });
        await db?.drop();
        throw err;
    }
}

/**
 * spawnServe starts `serve` on the data of dir and waits until it is
 * healthy; it returns { url, proc, exited, output() }.
 */
async function spawnServe(serveArgs, dir) {
    // A port can be taken between freePort and serve binding it; try again then.
    for (let attempt = 1; ; attempt++) {
        const port = await freePort();
        const url = `http://127.0.0.1:${port}`;
        const proc = spawn(BIN, ["serve", "--http", `127.0.0.1:${port}`, "--dir", dir, ...serveArgs], {
            stdio: ["ignore", "pipe", "pipe"],
        });
        let output = "";
        proc.stdout.on("data", (b) => (output += b));
        proc.stderr.on("data", (b) => (output += b));
        const exited = new Promise((r) => proc.once("exit", (code, signal) => r({ code, signal })));
        let exitedEarly = null;
        exited.then((e) => (exitedEarly = e));

        const up = await waitHealthy(url, () => exitedEarly !== null);
        if (up) {
            return { url, proc, exited, output: () => output };
        }
        if (exitedEarly === null) {
            proc.kill("SIGKILL");
            await exited;
        }
        if (attempt >= 3 || !/address already in use/i.test(output)) {
            const err = new Error(`underhood did not become healthy at ${url} (exit ${JSON.stringify(exitedEarly)}):\n${output}`);
            err.output = output;
            throw err;
        }
    }
}

/**
 * serveFlags lists the flag names `serve -h` prints, so a test can use a
 * flag that a newer binary has and skip when it is not there.
 */
export async function serveFlags() {
    const res = await promisify(execFile)(BIN, ["serve", "-h"], { timeout: STARTUP_TIMEOUT_MS }).catch((err) => err);
    const text = `${res.stdout ?? ""}${res.stderr ?? ""}`;
    return new Set([...text.matchAll(/^\s+-([a-z0-9-]+)/gm)].map((m) => m[1]));
}

/** waitHealthy polls GET /api/health until it answers 200. */
async function waitHealthy(url, hasExited) {
    const deadline = Date.now() + STARTUP_TIMEOUT_MS;
    while (Date.now() < deadline && !hasExited()) {
        try {
            const res = await fetch(`${url}/api/health`, { signal: AbortSignal.timeout(1000) });
            await res.arrayBuffer();
            if (res.status === 200) {
                return true;
            }
        } catch {
            // not listening yet
        }
        await sleep(50);
    }
    return false;
}

function makeHandle({ url, dir, top, db, proc, exited, output, serveArgs }) {
    let stopped = false;
    // A test run that dies must not leave a server behind.
    let killOnExit = () => proc.kill("SIGKILL");
    process.once("exit", killOnExit);

    /** halt stops the current process, the data stays. */
    async function halt() {
        process.removeListener("exit", killOnExit);
        if (proc.exitCode === null && proc.signalCode === null) {
            proc.kill("SIGTERM");
            const timer = setTimeout(() => proc.kill("SIGKILL"), STOP_TIMEOUT_MS);
            await exited;
            clearTimeout(timer);
        }
    }

    return {
        url,
        dir,
        /** pid is the process id of the running `serve`. */
        get pid() {
            return proc.pid;
        },
        /** output is everything the server printed so far. */
        output: () => output(),
        /**
         * restart stops `serve` and starts it again on the same data (a
         * new port: read url again). It throws, with the output in
         * err.output, when the new process does not become healthy.
         */
        async restart() {
            await halt();
            ({ url, proc, exited, output } = await spawnServe(serveArgs, dir));
            this.url = url;
            killOnExit = () => proc.kill("SIGKILL");
            process.once("exit", killOnExit);
        },
        /** client returns a new guest SDK client. */
        client() {
            const pb = new PocketBase(url);
            pb.autoCancellation(false);
            return pb;
        },
        /** superuser returns an SDK client signed in as the CLI-made superuser. */
        async superuser() {
            const pb = this.client();
            await pb.collection("_superusers").authWithPassword(SUPERUSER_EMAIL, SUPERUSER_PASSWORD);
            return pb;
        },
        /** stop asks the server to shut down, kills it if it won't, and removes its data. */
        async stop() {
            if (stopped) return;
            stopped = true;
            await halt();
            await rm(top, { recursive: true, force: true });
            await db?.drop();
        },
    };
}
