// OWASP API Security Top 10 (2023), API8 — Security Misconfiguration:
// settings accepted and ignored (logs, backups), column names that alias
// the engine's hidden columns (rowid), files readable by other local users
// (L4), and editor HTML stored with script vectors (M4; OWASP 2023 files
// injection under misconfiguration and unsafe consumption).

import assert from "node:assert/strict";
import { statSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { startServer } from "../server.mjs";
import { DB } from "../postgres.mjs";
import { assertOK, assertRefused, call, preview, signIn, superuserToken } from "./lib.mjs";

let server;
let su;

before(async () => {
    server = await startServer({ freshDir: true });
    su = await superuserToken(server);
});

after(() => server?.stop());

// Settings of features that do not exist yet are refused when they differ
// from the defaults, rather than stored and ignored.
test("logs and backups settings other than the defaults are refused", async () => {
    const before = (await call(server, "/api/settings", { token: su })).body;
    for (const patch of [
        { backups: { cron: "0 0 * * *" } },
        { backups: { cronMaxKeep: 9 } },
        { logs: { maxDays: 30 } },
        { logs: { minLevel: 8 } },
    ]) {
        const r = await call(server, "/api/settings", { method: "PATCH", token: su, body: patch });
        assertRefused(r, `PATCH ${JSON.stringify(patch)}`);
    }
    const now = (await call(server, "/api/settings", { token: su })).body;
    assert.deepEqual({ logs: now.logs, backups: now.backups }, { logs: before.logs, backups: before.backups }, "logs and backups unchanged");
});

// A field named like an engine's hidden column would alias it (SQLite's
// rowid, PostgreSQL's system columns).
test("a field named rowid, oid, _rowid_, ctid, xmin or tableoid is refused", async () => {
    for (const name of ["rowid", "oid", "_rowid_", "ctid", "xmin", "tableoid", "ROWID"]) {
        const r = await call(server, "/api/collections", {
            method: "POST", token: su,
            body: { name: `col_${name.toLowerCase()}`, type: "base", fields: [{ name, type: "text" }] },
        });
        assertRefused(r, `a field named ${name}`);
    }
});

// L4 — data.db holds what mints superuser tokens: the data directory is
// 0700 and the database files 0600, and so are uploaded files.
test("L4 the data directory is 0700 and its database and files 0600", { skip: DB ? "the data is in PostgreSQL" : false }, async () => {
    const user = await signIn(server, "l4-user@example.com");
    const fd = new FormData();
    fd.append("avatar", new Blob([Buffer.from("GIF89a\x01\x00\x01\x00\x00\x00\x00;", "latin1")], { type: "image/gif" }), "a.gif");
    assertOK(await call(server, `/api/collections/users/records/${user.id}`, { method: "PATCH", token: user.token, body: fd }), "upload");
    const modes = [];
    const walk = (path) => {
        const st = statSync(path);
        modes.push([path.slice(server.dir.length) || "/", st.mode & 0o777, st.isDirectory()]);
        if (st.isDirectory()) for (const e of readdirSync(path)) walk(join(path, e));
    };
    walk(server.dir);
    assert.ok(modes.some(([p]) => p === "/data.db"), `no data.db in ${JSON.stringify(modes)}`);
    const wrong = modes.filter(([, mode, dir]) => mode & 0o077).map(([p, mode, dir]) => `${p}${dir ? "/" : ""} ${mode.toString(8)}`);
    assert.deepEqual(wrong, [], "nothing in the data directory may be open to group or others");
});

// M4 — editor HTML is sanitised on write. The vectors are from the OWASP
// XSS Filter Evasion Cheat Sheet (public; written out here as data).
const XSS = [
    `<script>alert(1)</script>`,
    `<SCRIPT SRC=https://xss.example/xss.js></SCRIPT>`,
    `<IMG SRC="javascript:alert('XSS');">`,
    `<IMG SRC=JaVaScRiPt:alert('XSS')>`,
    `<IMG SRC=\`javascript:alert("RSnake says, 'XSS'")\`>`,
    `<a onmouseover="alert(document.cookie)">xxs link</a>`,
    `<IMG """><SCRIPT>alert("XSS")</SCRIPT>"\\>`,
    `<IMG SRC=# onmouseover="alert('xxs')">`,
    `<IMG SRC=/ onerror="alert(String.fromCharCode(88,83,83))"></img>`,
    `<img src=x onerror="&#0000106&#0000097&#0000118&#0000097&#0000115&#0000099&#0000114&#0000105&#0000112&#0000116&#0000058&#0000097&#0000108&#0000101&#0000114&#0000116&#0000040&#0000039&#0000088&#0000083&#0000083&#0000039&#0000041">`,
    `<IMG SRC="jav&#x09;ascript:alert('XSS');">`,
    `<IMG SRC=" &#14;  javascript:alert('XSS');">`,
    `<SCRIPT/XSS SRC="https://xss.example/xss.js"></SCRIPT>`,
    `<BODY onload!#$%&()*~+-_.,:;?@[/|\\]^\`=alert("XSS")>`,
    `<<SCRIPT>alert("XSS");//\\<</SCRIPT>`,
    `<SCRIPT SRC=//xss.example/.j>`,
    `<iframe src=https://xss.example/scriptlet.html <`,
    `<svg/onload=alert('XSS')>`,
    `<BODY BACKGROUND="javascript:alert('XSS')">`,
    `<INPUT TYPE="IMAGE" SRC="javascript:alert('XSS');">`,
    `<STYLE>li {list-style-image: url("javascript:alert('XSS')");}</STYLE><UL><LI>XSS</br>`,
    `<DIV STYLE="width: expression(alert('XSS'));">`,
    `<META HTTP-EQUIV="refresh" CONTENT="0;url=javascript:alert('XSS');">`,
    `<OBJECT TYPE="text/x-scriptlet" DATA="https://xss.example/scriptlet.html"></OBJECT>`,
    `<EMBED SRC="data:image/svg+xml;base64,PHN2ZyB4bWxuczpzdmc9Imh0dH A6Ly93d3cudzMub3JnLzIwMDAvc3ZnIiB4bWxucz0iaHR0cDovL3d3dy53My5vcmcv MjAwMC9zdmciIHhtbG5zOnhsaW5rPSJodHRwOi8vd3d3LnczLm9yZy8xOTk5L3hs aW5rIiB2ZXJzaW9uPSIxLjAiIHg9IjAiIHk9IjAiIHdpZHRoPSIxOTQiIGhlaWdodD0iMjAw IiBpZD0ieHNzIj48c2NyaXB0IHR5cGU9InRleHQvZWNtYXNjcmlwdCI+YWxlcnQoIlh TUyIpOzwvc2NyaXB0Pjwvc3ZnPg==" type="image/svg+xml" AllowScriptAccess="always"></EMBED>`,
    `<a href="&#106;avascript:alert(1)">click</a>`,
];
const SCRIPT_VECTOR = /<\s*\/?\s*(script|iframe|object|embed|meta|style|base|form)\b|\son[a-z!#$%&()*~+\-_.,:;?@[\]^`|\\/]*\s*=|javascript\s*:|&#0*106;?\s*&#0*97|expression\s*\(/i;

test("M4 editor HTML comes back without script vectors", async () => {
    const r = await call(server, "/api/collections", {
        method: "POST", token: su,
        body: { name: "pages", type: "base", listRule: "", viewRule: "", createRule: "", fields: [{ name: "body", type: "editor" }] },
    });
    assertOK(r, "create pages");
    const survived = [];
    for (const vector of XSS) {
        const created = await call(server, "/api/collections/pages/records", { method: "POST", body: { body: vector } });
        if (created.status >= 400 && created.status < 500) continue; // refusing it is safe too
        assertOK(created, `create with ${vector}`);
        const back = await call(server, `/api/collections/pages/records/${created.body.id}`);
        if (SCRIPT_VECTOR.test(back.body.body)) survived.push(`${vector}  =>  ${back.body.body}`);
    }
    assert.deepEqual(survived, [], `${survived.length} of ${XSS.length} vectors came back with a script vector`);

    const ordinary = `<p>Hello <strong>world</strong>, see <a href="https://example.com/x">this</a>.</p><ul><li>one</li></ul>`;
    const created = await call(server, "/api/collections/pages/records", { method: "POST", body: { body: ordinary } });
    assertOK(created, "ordinary HTML");
    for (const part of ["<strong>world</strong>", `href="https://example.com/x"`, "<li>one</li>"]) {
        assert.ok(created.body.body.includes(part), `ordinary editor HTML lost ${part}: ${preview(created.body.body)}`);
    }
});
