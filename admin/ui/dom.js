// dom.js builds elements from plain values. Text always goes in as text
// nodes, never as HTML, so a collection or field name cannot inject
// markup; and no element gets a style attribute (the Content-Security-
// Policy allows none): looks live in app.css.

/**
 * h returns a new element. attrs maps attribute names to values (true for
 * a bare attribute; null, undefined and false leave it out), "class" to the
 * class list and onevent names to listeners. Children are nodes, strings
 * or arrays of them.
 */
export function h(tag, attrs = {}, ...children) {
    const el = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs ?? {})) {
        if (value == null || value === false) continue;
        if (name.startsWith("on") && typeof value === "function") {
            el.addEventListener(name.slice(2).toLowerCase(), value);
        } else if (name === "class") {
            el.className = value;
        } else {
            el.setAttribute(name, value === true ? "" : String(value));
        }
    }
    append(el, children);
    return el;
}

function append(el, children) {
    for (const child of children) {
        if (child == null || child === false) continue;
        if (Array.isArray(child)) append(el, child);
        else el.append(child instanceof Node ? child : String(child));
    }
}

/** field returns a label and its input, tied by id, with a place for the input's error. */
export function field({ id, label, type = "text", name = id, autocomplete, required = true, value = "", hint, inputmode, minlength }) {
    const error = h("p", { class: "field-error", id: `${id}-error`, hidden: true });
    const input = h("input", {
        id, name, type, autocomplete, required, value, inputmode, minlength,
        "aria-describedby": hint ? `${id}-hint ${id}-error` : `${id}-error`,
    });
    return h("div", { class: "field" },
        h("label", { for: id }, label),
        hint ? h("p", { class: "field-hint", id: `${id}-hint` }, hint) : null,
        input,
        error);
}

/**
 * showErrors puts the field errors of an API error beside the inputs of
 * form and the general message in its alert; it returns whether any field
 * error was shown.
 */
export function showErrors(form, err) {
    clearErrors(form);
    const data = err?.body?.data ?? {};
    let shown = false;
    for (const [name, detail] of Object.entries(data)) {
        const input = form.elements.namedItem(name);
        const slot = input && form.querySelector(`#${CSS.escape(input.id)}-error`);
        if (!slot) continue;
        slot.textContent = detail?.message ?? "This value is not accepted.";
        slot.hidden = false;
        input.setAttribute("aria-invalid", "true");
        if (!shown) input.focus();
        shown = true;
    }
    // With the reasons beside the fields, the API's general message
    // ("Failed to create record.") only needs to point at them.
    alertIn(form, shown ? "Please correct the marked fields." : err?.message ?? "Something went wrong.");
    return shown;
}

/** clearErrors hides every error of form. */
export function clearErrors(form) {
    for (const slot of form.querySelectorAll(".field-error")) {
        slot.hidden = true;
        slot.textContent = "";
    }
    for (const input of form.querySelectorAll("[aria-invalid]")) input.removeAttribute("aria-invalid");
    const alert = form.querySelector(".form-alert");
    if (alert) {
        alert.hidden = true;
        alert.textContent = "";
    }
}

/** alertIn shows message in the alert of form (a role="alert" element, read out by screen readers). */
export function alertIn(form, message) {
    const alert = form.querySelector(".form-alert");
    alert.textContent = message;
    alert.hidden = false;
}

/** formAlert is the empty alert a form shows its general error in. */
export function formAlert() {
    return h("p", { class: "form-alert", role: "alert", hidden: true });
}

/** busy disables the submit button of form while work runs. */
export async function busy(form, work) {
    const button = form.querySelector("button[type=submit]");
    button.disabled = true;
    form.setAttribute("aria-busy", "true");
    try {
        return await work();
    } finally {
        button.disabled = false;
        form.removeAttribute("aria-busy");
    }
}
