// collections.js lists the collections: name, type and record count.

import { request } from "../api.js";
import { h } from "../dom.js";

const typeNames = { base: "Base", auth: "Auth", view: "View" };

/** collectionsPage returns the page, which fills itself in as the answers arrive. */
export function collectionsPage() {
    const status = h("p", { class: "muted", role: "status" }, "Loading collections…");
    const page = h("section", { "aria-labelledby": "collections-title" },
        h("div", { class: "page-head" }, h("h1", { id: "collections-title" }, "Collections")),
        status);
    load(page, status);
    return page;
}

async function load(page, status) {
    let list;
    try {
        list = await listAll();
    } catch (err) {
        if (err.status === 401) return; // the session ended: the sign-in page replaces this one
        status.textContent = `The collections could not be loaded: ${err.message}`;
        status.className = "notice warning";
        return;
    }
    // The application's own collections first, then the system ones.
    list.sort((a, b) => Number(Boolean(a.system)) - Number(Boolean(b.system)) || a.name.localeCompare(b.name));
    status.textContent = list.length === 1 ? "1 collection" : `${list.length} collections`;
    const rows = list.map((c) => {
        const count = h("td", { class: "number" }, h("span", { class: "muted" }, "…"));
        countRecords(c.name).then((n) => count.replaceChildren(n.toLocaleString("en"))).catch((err) => {
            if (err.status !== 401) count.replaceChildren(h("span", { class: "muted", title: err.message }, "unknown"));
        });
        return h("tr", {},
            h("th", { scope: "row" }, h("span", { class: "name" }, c.name), c.system ? h("span", { class: "tag" }, "system") : null),
            h("td", {}, h("span", { class: `type type-${c.type}` }, typeNames[c.type] ?? c.type)),
            count);
    });
    // The wrapper scrolls sideways on a narrow screen: it takes the focus
    // so that the keyboard can scroll it too.
    page.append(h("div", { class: "table-wrap", tabindex: 0, role: "region", "aria-labelledby": "collections-title" },
        h("table", { class: "table" },
            h("caption", { class: "visually-hidden" }, "Collections with their type and number of records"),
            h("thead", {}, h("tr", {},
                h("th", { scope: "col" }, "Name"),
                h("th", { scope: "col" }, "Type"),
                h("th", { scope: "col", class: "number" }, "Records"))),
            h("tbody", {}, rows))));
}

/** listAll reads every page of GET /api/collections. */
async function listAll() {
    const items = [];
    for (let page = 1; ; page++) {
        const answer = await request("GET", `/api/collections?page=${page}&perPage=200&sort=name`);
        items.push(...answer.items);
        if (page >= answer.totalPages) return items;
    }
}

/** countRecords asks for one record of the collection, only to read totalItems. */
async function countRecords(name) {
    const answer = await request("GET", `/api/collections/${encodeURIComponent(name)}/records?perPage=1&fields=id`);
    return answer.totalItems;
}
