// A real SMTP server for the email tests: mailpit on free loopback ports,
// its messages read through its HTTP API. When the binary is not
// installed, MAILPIT_MISSING says why and the tests that need it skip.
//
//   go install github.com/axllent/mailpit@v1.27.11
//
// The binary is $MAILPIT, else `mailpit` on $PATH, else
// $(go env GOPATH)/bin/mailpit.

import { spawn, spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { createServer } from "node:net";
import { delimiter, join } from "node:path";

const INSTALL = "go install github.com/axllent/mailpit@v1.27.11";
const START_TIMEOUT_MS = 20_000;
const WAIT_TIMEOUT_MS = 15_000;

/** findMailpit returns the path of the mailpit binary, or null. */
function findMailpit() {
    if (process.env.MAILPIT) return existsSync(process.env.MAILPIT) ? process.env.MAILPIT : null;
    for (const dir of (process.env.PATH || "").split(delimiter)) {
        if (dir && existsSync(join(dir, "mailpit"))) return join(dir, "mailpit");
    }
    const go = spawnSync("go", ["env", "GOPATH"], { encoding: "utf8" });
    for (const dir of (go.stdout || "").trim().split(delimiter)) {
        if (dir && existsSync(join(dir, "bin", "mailpit"))) return join(dir, "bin", "mailpit");
    }
    return null;
}

export const MAILPIT = findMailpit();

/** MAILPIT_MISSING is the reason to skip, or false when mailpit is there. */
export const MAILPIT_MISSING = MAILPIT ? false : `mailpit not found ($MAILPIT, $PATH, $(go env GOPATH)/bin); install it with: ${INSTALL}`;

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

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

/**
 * startMailpit runs mailpit on free loopback ports and returns
 * { host, port, api, messages(), message(id), waitFor(to, what, match), count(to), stop() }.
 */
export async function startMailpit() {
    if (!MAILPIT) throw new Error(MAILPIT_MISSING);
    let lastOutput = "";
    // A port can be taken between choosing and binding it: try again then.
    for (let attempt = 1; attempt <= 3; attempt++) {
        const [smtpPort, httpPort] = [await freePort(), await freePort()];
        const api = `http://127.0.0.1:${httpPort}`;
        const proc = spawn(MAILPIT, [
            "--smtp", `127.0.0.1:${smtpPort}`,
            "--listen", `127.0.0.1:${httpPort}`,
            "--disable-version-check",
            "--smtp-disable-rdns",
        ], { stdio: ["ignore", "pipe", "pipe"] });
        let output = "";
        proc.stdout.on("data", (b) => (output += b));
        proc.stderr.on("data", (b) => (output += b));
        let exited = false;
        const gone = new Promise((r) => proc.once("exit", () => { exited = true; r(); }));
        const killOnExit = () => proc.kill("SIGKILL");
        process.once("exit", killOnExit);

        const deadline = Date.now() + START_TIMEOUT_MS;
        while (!exited && Date.now() < deadline) {
            try {
                const res = await fetch(`${api}/api/v1/messages?limit=1`, { signal: AbortSignal.timeout(1000) });
                await res.arrayBuffer();
                if (res.ok) return handle({ proc, gone, killOnExit, api, smtpPort });
            } catch {
                // not listening yet
            }
            await sleep(50);
        }
        lastOutput = output;
        process.removeListener("exit", killOnExit);
        if (!exited) {
            proc.kill("SIGKILL");
            await gone;
        }
    }
    throw new Error(`mailpit did not start:\n${lastOutput}`);
}

function handle({ proc, gone, killOnExit, api, smtpPort }) {
    const get = async (path) => {
        const res = await fetch(api + path);
        if (!res.ok) throw new Error(`mailpit GET ${path}: ${res.status} ${await res.text()}`);
        return res.json();
    };
    const sentTo = (m, to) => (m.To || []).some((a) => a.Address.toLowerCase() === to.toLowerCase());
    const self = {
        host: "127.0.0.1",
        port: smtpPort,
        api,
        /** messages lists every message received, newest first. */
        async messages() {
            return (await get("/api/v1/messages?limit=1000")).messages;
        },
        /** message returns one message with its Text and HTML bodies. */
        message(id) {
            return get(`/api/v1/message/${id}`);
        },
        /** count returns how many messages to `to` arrived so far. */
        async count(to) {
            return (await self.messages()).filter((m) => sentTo(m, to)).length;
        },
        /**
         * waitFor waits for the newest message to `to` that match accepts
         * (default: any) and returns it with its bodies.
         */
        async waitFor(to, what = "a message", match = () => true) {
            const deadline = Date.now() + WAIT_TIMEOUT_MS;
            while (Date.now() < deadline) {
                const found = (await self.messages()).find((m) => sentTo(m, to) && match(m));
                if (found) return self.message(found.ID);
                await sleep(50);
            }
            throw new Error(`mailpit: no ${what} to ${to} after ${WAIT_TIMEOUT_MS} ms`);
        },
        async stop() {
            process.removeListener("exit", killOnExit);
            if (proc.exitCode === null && proc.signalCode === null) {
                proc.kill("SIGTERM");
                const timer = setTimeout(() => proc.kill("SIGKILL"), 5000);
                await gone;
                clearTimeout(timer);
            }
        },
    };
    return self;
}

/**
 * useMailpit points the server's settings at mailpit (SMTP on, a sender
 * and an app URL for the links) through a superuser client. The server
 * must allow loopback (UH_OUTBOUND_ALLOW=127.0.0.1/32). The tests mail one
 * address more often than the per-recipient limit (2 of a kind per 10
 * minutes) allows, so it is raised, unless keepRecipientLimit is set (the
 * security suite tests that limit).
 */
export async function useMailpit(su, mailpit, { keepRecipientLimit = false } = {}) {
    const { rateLimits } = await su.settings.getAll();
    const rules = rateLimits.rules.map((r) =>
        r.label === "identity:mail-recipient" && !keepRecipientLimit ? { ...r, maxRequests: 1000 } : r);
    await su.settings.update({
        smtp: { enabled: true, host: mailpit.host, port: mailpit.port },
        meta: { appName: "E2E", appURL: "https://e2e.test", senderName: "E2E", senderAddress: "no-reply@e2e.test" },
        rateLimits: { ...rateLimits, rules },
    });
}

/** tokenIn returns the token of the link to `route` in a message. */
export function tokenIn(msg, route) {
    const m = new RegExp(`${route}/([A-Za-z0-9_.-]+)`).exec(msg.HTML);
    if (!m) throw new Error(`no ${route} link in ${JSON.stringify(msg.HTML)}`);
    return m[1];
}

/** codeIn returns the one-time password of an OTP message. */
export function codeIn(msg, length = 8) {
    const m = new RegExp(`\\b(\\d{${length}})\\b`).exec(msg.Text);
    if (!m) throw new Error(`no ${length}-digit code in ${JSON.stringify(msg.Text)}`);
    return m[1];
}
