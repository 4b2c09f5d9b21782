// The visual journey editor: stage cards to fill in, reorder by dragging (or with the arrow
// buttons), add and remove, and a flow chart of where each stage leads. It edits the same
// YAML definition as the text box beside it, both ways: a change in the cards rewrites the
// text, and text that parses redraws the cards. Without JavaScript the text box alone works.
(function () {
  "use strict";
  if (!window.jsyaml) return;
  const YAML_OPTS = { schema: jsyaml.CORE_SCHEMA };

  function el(tag, attrs, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === "on") for (const [ev, f] of Object.entries(v)) e.addEventListener(ev, f);
      else if (k === "dataset") Object.assign(e.dataset, v);
      else if (v === true) e.setAttribute(k, "");
      else if (v !== false && v != null) e.setAttribute(k, v);
    }
    for (const c of children.flat()) e.append(c instanceof Node ? c : document.createTextNode(String(c)));
    return e;
  }

  const list = (v) => (Array.isArray(v) ? v.join(", ") : v || "");
  const words = (s) => s.split(",").map((x) => x.trim()).filter(Boolean);

  // keys in the order people read them; empty optional fields are left out
  function tidy(def) {
    const out = {};
    for (const k of ["id", "name", "owner", "unit"]) if (def[k] !== undefined && def[k] !== "") out[k] = def[k];
    if (out.unit === "customer") delete out.unit;
    out.stages = (def.stages || []).map((s) => {
      const o = {};
      for (const k of ["id", "name", "owner", "entry", "exit", "target_hours", "sla_hours", "moment_of_truth", "next"]) {
        const v = s[k];
        if (v === undefined || v === "" || v === false || (Array.isArray(v) && v.length === 0 && k !== "entry")) continue;
        o[k] = v;
      }
      return o;
    });
    for (const [k, v] of Object.entries(def)) if (!(k in out) && !["stages", "unit"].includes(k)) out[k] = v;
    return out;
  }

  function successors(stages, i) {
    const s = stages[i];
    if (s.next && s.next.length) return s.next;
    return i + 1 < stages.length ? [stages[i + 1].id || `stage ${i + 2}`] : [];
  }

  function mount(form) {
    const area = form.querySelector("textarea[name=definition]");
    if (!area) return;
    const knownEvents = JSON.parse(form.dataset.knownEvents || "[]");
    let def;
    try {
      def = jsyaml.load(area.value, YAML_OPTS) || {};
    } catch (_) {
      def = {};
    }
    if (typeof def !== "object" || Array.isArray(def)) def = {};
    def.stages = Array.isArray(def.stages) ? def.stages : [];
    def.review = def.review && typeof def.review === "object" ? def.review : undefined;

    const status = el("p", { class: "jv-status", role: "status", "aria-live": "polite" });
    const root = el("div", { class: "jv", "data-testid": "journey-visual" });
    const datalist = el("datalist", { id: `jv-events-${Math.random().toString(36).slice(2)}` }, knownEvents.map((n) => el("option", { value: n })));
    form.prepend(root, status, datalist);

    function write() {
      area.value = jsyaml.dump(tidy(def), { ...YAML_OPTS, flowLevel: 3, lineWidth: 120 });
      drawFlow();
    }

    area.addEventListener("input", () => {
      try {
        const d = jsyaml.load(area.value, YAML_OPTS);
        if (!d || typeof d !== "object" || !Array.isArray(d.stages)) throw new Error("a definition needs a list of stages");
        def = d;
        status.textContent = "";
        draw();
      } catch (e) {
        status.textContent = `The text does not parse yet (${e.message.split("\n")[0]}); the cards show the last version that did.`;
      }
    });

    function field(label, value, set, attrs) {
      const input = el("input", { value: value ?? "", ...attrs, on: { input: (e) => { set(e.target.value); write(); } } });
      return el("label", {}, label, input);
    }

    const flow = el("div", { class: "jv-flow", role: "img" });
    let dragFrom = null;

    function drawFlow() {
      const st = def.stages;
      flow.replaceChildren();
      const names = st.map((s, i) => s.name || s.id || `stage ${i + 1}`);
      flow.setAttribute("aria-label", `Flow: ${names.join(" → ")}`);
      st.forEach((s, i) => {
        const to = successors(st, i);
        const box = el("div", { class: "jv-node" + (s.moment_of_truth ? " jv-mot" : "") },
          el("strong", {}, names[i]), el("small", {}, s.owner ? `owner ${s.owner}` : "no owner yet"),
          s.sla_hours ? el("small", {}, `SLA ${s.sla_hours} h`) : "");
        flow.append(box);
        const plain = to.length === 1 && i + 1 < st.length && to[0] === (st[i + 1].id || `stage ${i + 2}`);
        if (plain) flow.append(el("span", { class: "jv-arrow", "aria-hidden": "true" }, "→"));
        else if (to.length) flow.append(el("span", { class: "jv-branch" }, `↳ ${to.join(", ")}`));
      });
    }

    function move(from, to) {
      if (to < 0 || to >= def.stages.length || from === to) return;
      const [s] = def.stages.splice(from, 1);
      def.stages.splice(to, 0, s);
      draw();
      write();
    }

    function card(s, i) {
      const n = def.stages.length;
      const up = el("button", { type: "button", class: "secondary jv-btn", "aria-label": `Move ${s.name || "stage"} up`, disabled: i === 0, on: { click: () => move(i, i - 1) } }, "↑");
      const down = el("button", { type: "button", class: "secondary jv-btn", "aria-label": `Move ${s.name || "stage"} down`, disabled: i === n - 1, on: { click: () => move(i, i + 1) } }, "↓");
      const remove = el("button", { type: "button", class: "secondary jv-btn", "aria-label": `Remove ${s.name || "stage"}`, on: { click: () => { def.stages.splice(i, 1); draw(); write(); } } }, "✕");
      const mot = el("input", { type: "checkbox", checked: !!s.moment_of_truth, on: { change: (e) => { s.moment_of_truth = e.target.checked; write(); } } });
      const c = el("article", { class: "jv-stage", draggable: "true", dataset: { stage: String(i) }, "aria-label": `Stage ${i + 1}: ${s.name || "new"}` },
        el("header", {}, el("span", { class: "jv-handle", title: "Drag to reorder", "aria-hidden": "true" }, "⠿"), ` Stage ${i + 1} `, up, down, remove),
        el("div", { class: "jv-grid" },
          field("Id", s.id, (v) => (s.id = v), { placeholder: "signup", required: true }),
          field("Name", s.name, (v) => (s.name = v), { required: true }),
          field("Owner", s.owner, (v) => (s.owner = v), { required: true }),
          field("Entry events", list(s.entry), (v) => (s.entry = words(v)), { list: datalist.id, placeholder: "Signed Up, Trial Started" }),
          field("Exit events", list(s.exit), (v) => (s.exit = words(v)), { list: datalist.id, placeholder: "optional" }),
          field("Leads to", list(s.next), (v) => (s.next = words(v)), { placeholder: "default: the next stage" }),
          field("Target h", s.target_hours, (v) => (s.target_hours = v === "" ? undefined : Number(v)), { type: "number", min: "0", step: "any" }),
          field("SLA h", s.sla_hours, (v) => (s.sla_hours = v === "" ? undefined : Number(v)), { type: "number", min: "0", step: "any" }),
          el("label", { class: "jv-check" }, mot, " Moment of truth")));
      // the dragged card is remembered here: drag data is not readable in every browser
      c.addEventListener("dragstart", (e) => { dragFrom = i; e.dataTransfer.setData("text/plain", String(i)); e.dataTransfer.effectAllowed = "move"; c.classList.add("jv-dragging"); });
      c.addEventListener("dragend", () => { dragFrom = null; c.classList.remove("jv-dragging"); });
      c.addEventListener("dragover", (e) => { e.preventDefault(); c.classList.add("jv-over"); });
      c.addEventListener("dragleave", () => c.classList.remove("jv-over"));
      c.addEventListener("drop", (e) => {
        e.preventDefault();
        c.classList.remove("jv-over");
        const from = dragFrom;
        dragFrom = null;
        if (from !== null) move(from, i);
      });
      return c;
    }

    function draw() {
      const review = def.review || {};
      const unit = el("select", { on: { change: (e) => { def.unit = e.target.value; write(); } } },
        el("option", { value: "customer", selected: def.unit !== "account" }, "customer"),
        el("option", { value: "account", selected: def.unit === "account" }, "account"));
      const setReview = (k, v) => {
        def.review = { ...(def.review || {}) };
        if (v === "") delete def.review[k];
        else def.review[k] = k === "every_days" ? Number(v) : v;
        if (!Object.keys(def.review).length) delete def.review;
      };
      root.replaceChildren(
        el("div", { class: "jv-grid" },
          field("Journey id", def.id, (v) => (def.id = v), { placeholder: "onboarding" }),
          field("Journey name", def.name, (v) => (def.name = v), { required: true }),
          field("Journey owner", def.owner, (v) => (def.owner = v), { required: true }),
          el("label", {}, "Measured per", unit),
          field("Review every (days)", review.every_days, (v) => setReview("every_days", v), { type: "number", min: "1" }),
          field("Next review", review.next, (v) => setReview("next", v), { type: "date" })),
        flow,
        el("div", { class: "jv-stages" }, def.stages.map(card)),
        el("button", { type: "button", class: "secondary", on: { click: () => { def.stages.push({ id: "", name: "", owner: "", entry: [] }); draw(); write(); root.querySelector(".jv-stage:last-child input")?.focus(); } } }, "+ Add stage"));
      drawFlow();
    }
    draw();
  }

  document.querySelectorAll("form[data-testid=journey-editor]").forEach(mount);
})();
