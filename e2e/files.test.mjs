// Files through the SDK: uploads with FormData and with plain objects
// holding Blobs (the SDK's @jsonPayload), pb.files.getURL with thumbs and
// download, protected files with pb.files.getToken(), the +/- modifiers,
// and deleting a record with its files.

import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { deflateSync } from "node:zlib";
import { startServer } from "./server.mjs";
import { rejectsWith, signUp, waitFor } from "./fixtures.mjs";

let server;
let alice; // { pb, user }
let bob;

/** png returns a w×h RGB PNG (a gradient), made without any library. */
function png(w, h) {
    const crcTable = Array.from({ length: 256 }, (_, n) => {
        let c = n;
        for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
        return c >>> 0;
    });
    const crc32 = (buf) => {
        let c = 0xffffffff;
        for (const b of buf) c = crcTable[(c ^ b) & 0xff] ^ (c >>> 8);
        return (c ^ 0xffffffff) >>> 0;
    };
    const chunk = (type, data) => {
        const len = Buffer.alloc(4);
        len.writeUInt32BE(data.length);
        const td = Buffer.concat([Buffer.from(type, "latin1"), data]);
        const crc = Buffer.alloc(4);
        crc.writeUInt32BE(crc32(td));
        return Buffer.concat([len, td, crc]);
    };
    const ihdr = Buffer.alloc(13);
    ihdr.writeUInt32BE(w, 0);
    ihdr.writeUInt32BE(h, 4);
    ihdr[8] = 8; // bit depth
    ihdr[9] = 2; // RGB
    const raw = Buffer.alloc((w * 3 + 1) * h);
    for (let y = 0; y < h; y++) {
        for (let x = 0; x < w; x++) {
            const o = y * (w * 3 + 1) + 1 + x * 3;
            raw[o] = (x * 255) / w;
            raw[o + 1] = (y * 255) / h;
            raw[o + 2] = 128;
        }
    }
    return Buffer.concat([
        Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
        chunk("IHDR", ihdr),
        chunk("IDAT", deflateSync(raw)),
        chunk("IEND", Buffer.alloc(0)),
    ]);
}

/** pngSize reads the width and height of a PNG. */
const pngSize = (buf) => [buf.readUInt32BE(16), buf.readUInt32BE(20)];

async function fetchBytes(url) {
    const res = await fetch(url);
    return { res, body: Buffer.from(await res.arrayBuffer()) };
}

before(async () => {
    server = await startServer();
    const su = await server.superuser();
    await su.collections.create({
        name: "albums",
        type: "base",
        listRule: "owner = @request.auth.id",
        viewRule: "owner = @request.auth.id",
        createRule: "@request.auth.id != '' && owner = @request.auth.id",
        updateRule: "owner = @request.auth.id",
        deleteRule: "owner = @request.auth.id",
        fields: [
            { name: "title", type: "text", required: true },
            { name: "owner", type: "relation", collectionId: "_pb_users_auth_", maxSelect: 1 },
            { name: "cover", type: "file", maxSelect: 1, maxSize: 1 << 20, mimeTypes: ["image/png", "image/jpeg"], thumbs: ["40x30", "20x0"] },
            { name: "photos", type: "file", maxSelect: 10, maxSize: 1 << 20 },
            { name: "contract", type: "file", maxSelect: 1, protected: true },
        ],
    });
    alice = await signUp(server, "alice");
    bob = await signUp(server, "bob");
});
after(async () => {
    await server?.stop();
});

describe("upload and download", () => {
    test("FormData upload, getURL, thumbs and download", async () => {
        const cover = png(120, 60);
        const fd = new FormData();
        fd.append("title", "holiday");
        fd.append("owner", alice.user.id);
        fd.append("cover", new Blob([cover], { type: "image/png" }), "Beach Day.PNG");
        fd.append("photos", new Blob(["first photo"], { type: "text/plain" }), "one.txt");
        fd.append("photos", new Blob(["second photo"], { type: "text/plain" }), "two.txt");
        const rec = await alice.pb.collection("albums").create(fd);

        assert.match(rec.cover, /^beach_day_[a-z0-9]{10}\.png$/);
        assert.equal(rec.photos.length, 2);

        const { res, body } = await fetchBytes(alice.pb.files.getURL(rec, rec.cover));
        assert.equal(res.status, 200);
        assert.deepEqual(body, cover);
        assert.equal(res.headers.get("content-type"), "image/png");
        assert.match(res.headers.get("content-security-policy"), /sandbox/);
        assert.equal(res.headers.get("x-content-type-options"), "nosniff");

        for (const [thumb, size] of [["40x30", [40, 30]], ["20x0", [20, 10]], ["100x100", [100, 100]]]) {
            const t = await fetchBytes(alice.pb.files.getURL(rec, rec.cover, { thumb }));
            assert.equal(t.res.status, 200, thumb);
            assert.deepEqual(pngSize(t.body), size, `thumb ${thumb}`);
        }
        // A size the field does not list gets the original.
        const other = await fetchBytes(alice.pb.files.getURL(rec, rec.cover, { thumb: "33x33" }));
        assert.deepEqual(other.body, cover);

        const dl = await fetchBytes(alice.pb.files.getURL(rec, rec.photos[1], { download: 1 }));
        assert.equal(dl.body.toString(), "second photo");
        assert.match(dl.res.headers.get("content-disposition"), /^attachment/);
    });

    test("plain object with Blobs (the SDK's @jsonPayload) and the +/- modifiers", async () => {
        const col = alice.pb.collection("albums");
        const rec = await col.create({
            title: "objects",
            owner: alice.user.id,
            photos: [new Blob(["a"]), new Blob(["b"])].map((b, i) => new File([b], `photo-${i}.txt`)),
        });
        assert.equal(rec.photos.length, 2);

        let upd = await col.update(rec.id, { "photos+": new File(["c"], "photo-2.txt") });
        assert.equal(upd.photos.length, 3);
        upd = await col.update(rec.id, { "photos-": [rec.photos[0]] });
        assert.deepEqual(upd.photos, [rec.photos[1], upd.photos[1]]);
        const gone = await fetch(alice.pb.files.getURL(rec, rec.photos[0]));
        assert.equal(gone.status, 404);
        await gone.arrayBuffer();

        // Naming a file that was never uploaded is refused.
        await rejectsWith(col.update(rec.id, { photos: ["made_up_name12345.txt"] }), 400, "forged file name");
    });

    test("replacing a single file removes the old one", async () => {
        const col = alice.pb.collection("albums");
        const first = await col.create({ title: "r", owner: alice.user.id, cover: new File([png(10, 10)], "a.png") });
        const second = await col.update(first.id, { cover: new File([png(12, 12)], "b.png") });
        assert.notEqual(second.cover, first.cover);
        const old = await fetch(alice.pb.files.getURL(first, first.cover));
        assert.equal(old.status, 404);
        await old.arrayBuffer();
        const cur = await fetch(alice.pb.files.getURL(second, second.cover));
        assert.equal(cur.status, 200);
        await cur.arrayBuffer();
    });

    test("bad uploads are refused", async () => {
        const col = alice.pb.collection("albums");
        const html = new File(["<!DOCTYPE html><script>alert(1)</script>"], "cat.png", { type: "image/png" });
        let err = await rejectsWith(col.create({ title: "x", owner: alice.user.id, cover: html }), 400, "html named .png");
        assert.equal(err.response.data.cover.code, "validation_invalid_mime_type");

        const big = new File([new Uint8Array((1 << 20) + 1)], "big.bin");
        err = await rejectsWith(col.create({ title: "x", owner: alice.user.id, photos: [big] }), 400, "over maxSize");
        assert.equal(err.response.data.photos.code, "validation_file_size_limit");

        const many = Array.from({ length: 11 }, (_, i) => new File(["x"], `f${i}.txt`));
        err = await rejectsWith(col.create({ title: "x", owner: alice.user.id, photos: many }), 400, "over maxSelect");
        assert.equal(err.response.data.photos.code, "validation_too_many_values");

        const list = await col.getFullList({ filter: 'title = "x"' });
        assert.equal(list.length, 0);
    });
});

describe("protected files", () => {
    test("need a file token of someone the view rule lets in", async () => {
        const rec = await alice.pb.collection("albums").create({
            title: "contracts",
            owner: alice.user.id,
            contract: new File(["signed: alice"], "contract.txt"),
        });
        const noToken = await fetch(alice.pb.files.getURL(rec, rec.contract));
        assert.equal(noToken.status, 403);
        await noToken.arrayBuffer();

        const token = await alice.pb.files.getToken();
        assert.ok(token.length > 20);
        const ok = await fetchBytes(alice.pb.files.getURL(rec, rec.contract, { token }));
        assert.equal(ok.res.status, 200);
        assert.equal(ok.body.toString(), "signed: alice");

        const bobToken = await bob.pb.files.getToken();
        const denied = await fetch(alice.pb.files.getURL(rec, rec.contract, { token: bobToken }));
        assert.equal(denied.status, 403);
        await denied.arrayBuffer();

        await rejectsWith(server.client().files.getToken(), 401, "guest file token");
    });
});

describe("delete", () => {
    test("deleting a record deletes its files", async () => {
        const col = alice.pb.collection("albums");
        const rec = await col.create({ title: "temp", owner: alice.user.id, photos: [new File(["bye"], "bye.txt")] });
        const url = alice.pb.files.getURL(rec, rec.photos[0]);
        assert.equal((await fetchBytes(url)).res.status, 200);
        const dir = join(server.dir, "storage", rec.collectionId, rec.id);
        assert.ok(existsSync(dir), `${dir} holds the record's files`);
        await col.delete(rec.id);
        const res = await fetch(url);
        await res.arrayBuffer();
        assert.equal(res.status, 404);
        // The files go once the delete has committed.
        await waitFor(() => !existsSync(dir), `${dir} to go after the delete`);
    });
});
