// PostgreSQL for the e2e suite: when $UNDERHOOD_E2E_DB is a postgres://
// URL, every server runs with --db on a schema of its own in that
// database, created and dropped with psql, so test files never see each
// other's data. Without it the servers use SQLite in their --dir.

import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { promisify } from "node:util";

const run = promisify(execFile);

/** DB is the database URL the servers share, or "" for SQLite. */
export const DB = process.env.UNDERHOOD_E2E_DB || "";

/**
 * createSchema creates an empty schema and returns { url, drop() }: url
 * is DB with its search_path, for --db.
 */
export async function createSchema() {
    const schema = `uh_e2e_${randomBytes(6).toString("hex")}`;
    await psql(`CREATE SCHEMA ${schema}`);
    const url = new URL(DB);
    url.searchParams.set("search_path", schema);
    return {
        url: url.toString(),
        drop: () => psql(`DROP SCHEMA IF EXISTS ${schema} CASCADE`),
    };
}

async function psql(sql) {
    try {
        await run("psql", [DB, "-v", "ON_ERROR_STOP=1", "-Atqc", sql], { timeout: 30_000 });
    } catch (err) {
        throw new Error(`psql ${JSON.stringify(sql)} failed: ${err.message}\n${err.stderr ?? ""}`);
    }
}
