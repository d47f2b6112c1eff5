// Shared test data and assertions: the blog schema several files use,
// signing users up through the SDK, checks of PocketBase's error shape,
// and waiting for what arrives on its own (events, deliveries).

import assert from "node:assert/strict";
import { ClientResponseError } from "pocketbase";
import { startServer } from "./server.mjs";

/** DATETIME is the shape of every datetime the API returns. */
export const DATETIME = /^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}\.\d{3}Z$/;

/** RECORD_ID is the shape of a generated record id. */
export const RECORD_ID = /^[a-z0-9]{15}$/;

/**
 * rejectsWith awaits promise, asserts it failed with a ClientResponseError
 * of the given HTTP status whose body has PocketBase's error shape, and
 * returns the error. Pass { clientMade: true } for errors the SDK makes
 * itself (getFirstListItem's 404 on an empty page), whose body is the
 * SDK's, not the server's.
 */
export async function rejectsWith(promise, status, what = "request", { clientMade = false } = {}) {
    let result;
    try {
        result = await promise;
    } catch (err) {
        assert.ok(err instanceof ClientResponseError, `${what}: want ClientResponseError, got ${err?.stack ?? err}`);
        assert.equal(err.status, status, `${what}: status ${err.status}, want ${status}; body ${JSON.stringify(err.response)}`);
        if (!clientMade) {
            assertErrorShape(err.response, status, what);
        }
        return err;
    }
    assert.fail(`${what}: succeeded with ${JSON.stringify(result)}, want HTTP ${status}`);
}

/** assertErrorShape checks {status, message, data} as API.md defines it. */
export function assertErrorShape(body, status, what = "error") {
    assert.equal(typeof body, "object", `${what}: error body ${JSON.stringify(body)}`);
    assert.equal(body.status, status, `${what}: body.status in ${JSON.stringify(body)}`);
    assert.equal(typeof body.message, "string", `${what}: body.message in ${JSON.stringify(body)}`);
    assert.ok(body.message.length > 0, `${what}: empty message in ${JSON.stringify(body)}`);
    assert.ok(body.data !== null && typeof body.data === "object" && !Array.isArray(body.data),
        `${what}: body.data must be an object in ${JSON.stringify(body)}`);
}

/** assertNoSecrets checks that a user record carries none of its secrets. */
export function assertNoSecrets(rec, what = "record") {
    for (const k of ["password", "passwordConfirm", "tokenKey"]) {
        assert.ok(!(k in rec), `${what} must not expose ${k}: ${JSON.stringify(rec)}`);
    }
}

/**
 * signUp creates a user through the public users collection as a guest
 * would, then signs in with the same client; it returns { pb, user }.
 */
export async function signUp(server, name, password = `pw-${name}-123456`) {
    const pb = server.client();
    const email = `${name}@example.com`;
    await pb.collection("users").create({ email, password, passwordConfirm: password, name });
    const auth = await pb.collection("users").authWithPassword(email, password);
    return { pb, user: auth.record, email, password };
}

/**
 * createOwnedCollection creates the base collection `name` of notes that
 * their owner, and anyone when `public` is set, may see; only the owner
 * may write them. `secret` is a hidden field.
 */
export async function createOwnedCollection(su, name) {
    const owner = "owner = @request.auth.id";
    return su.collections.create({
        name,
        type: "base",
        listRule: `${owner} || public = true`,
        viewRule: `${owner} || public = true`,
        createRule: owner,
        updateRule: owner,
        deleteRule: owner,
        fields: [
            { name: "text", type: "text" },
            { name: "public", type: "bool" },
            { name: "secret", type: "text", hidden: true },
            { name: "owner", type: "relation", collectionId: "_pb_users_auth_", maxSelect: 1 },
        ],
    });
}

/**
 * createBlogSchema creates "authors" and "posts" (every common field type,
 * single and multi relations, a unique slug) as a superuser and returns
 * both collections. Anyone may read; only signed-in users may write.
 */
export async function createBlogSchema(su) {
    const signedIn = "@request.auth.id != ''";
    const authors = await su.collections.create({
        name: "authors",
        type: "base",
        listRule: "",
        viewRule: "",
        createRule: signedIn,
        updateRule: signedIn,
        deleteRule: signedIn,
        fields: [
            { name: "name", type: "text", required: true },
            { name: "bio", type: "text" },
        ],
    });
    const posts = await su.collections.create({
        name: "posts",
        type: "base",
        listRule: "",
        viewRule: "",
        createRule: signedIn,
        updateRule: signedIn,
        deleteRule: signedIn,
        fields: [
            { name: "title", type: "text", required: true, max: 200 },
            { name: "body", type: "editor" },
            { name: "views", type: "number" },
            { name: "published", type: "bool" },
            { name: "tags", type: "select", maxSelect: 4, values: ["go", "db", "web", "js"] },
            { name: "slug", type: "text" },
            { name: "author", type: "relation", collectionId: authors.id, maxSelect: 1 },
            { name: "coauthors", type: "relation", collectionId: authors.id, maxSelect: 5 },
            { name: "meta", type: "json" },
            { name: "publishedAt", type: "date" },
            { name: "created", type: "autodate", onCreate: true, onUpdate: false },
            { name: "updated", type: "autodate", onCreate: true, onUpdate: true },
        ],
        indexes: ["CREATE UNIQUE INDEX idx_posts_slug ON posts (slug) WHERE slug != ''"],
    });
    return { authors, posts };
}

/** ids maps records to their ids, for order-sensitive comparisons. */
export const ids = (records) => records.map((r) => r.id);

/** titles maps records to their titles. */
export const titles = (records) => records.map((r) => r.title);

/**
 * startWithOwners starts a server with the owned collection `name`
 * (createOwnedCollection) and two users signed up, `${prefix}-alice` and
 * `${prefix}-bob`; it returns { server, su, alice, bob }.
 */
export async function startWithOwners(name, prefix) {
    const server = await startServer();
    try {
        const su = await server.superuser();
        await createOwnedCollection(su, name);
        const alice = await signUp(server, `${prefix}-alice`);
        const bob = await signUp(server, `${prefix}-bob`);
        return { server, su, alice, bob };
    } catch (err) {
        await server.stop();
        throw err;
    }
}

/**
 * waitFor polls until cond() holds, or fails after `ms`. The bound only
 * ends a test that would otherwise hang.
 */
export async function waitFor(cond, what, ms = 10_000) {
    for (const end = Date.now() + ms; Date.now() < end; ) {
        if (cond()) return;
        await new Promise((r) => setTimeout(r, 20));
    }
    assert.fail(`timed out waiting for ${what}`);
}
