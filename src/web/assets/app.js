// pitr's web page: local times beside UTC ones, the new request's database,
// the live timeline of a request (Server-Sent Events), and a dry run started
// without leaving the page. Everything works without this script.
"use strict";

function localText(iso) {
  const t = new Date(iso);
  if (isNaN(t)) return "";
  return t.toLocaleString(undefined, {
    year: "numeric", month: "2-digit", day: "2-digit",
    hour: "2-digit", minute: "2-digit", timeZoneName: "short",
  });
}

function showLocalTimes() {
  document.querySelectorAll("time[data-local]").forEach((el) => {
    const text = localText(el.getAttribute("datetime"));
    if (text && !el.title) el.title = "Your local time: " + text;
  });
}

function parseTyped(value) {
  const v = value.trim();
  let m = /^(\d{4})-(\d{2})-(\d{2})[ T](\d{2}):(\d{2})(?::(\d{2}))?$/.exec(v);
  if (m) return new Date(Date.UTC(+m[1], +m[2] - 1, +m[3], +m[4], +m[5], +(m[6] || 0)));
  const t = new Date(v);
  return isNaN(t) ? null : t;
}

function formHelpers() {
  document.querySelectorAll("[data-local-for]").forEach((out) => {
    const input = document.getElementById(out.getAttribute("data-local-for"));
    if (!input) return;
    const update = () => {
      const t = parseTyped(input.value);
      out.textContent = t ? "Your local time: " + localText(t.toISOString()) : "";
    };
    input.addEventListener("input", update);
    update();
  });
  const env = document.getElementById("environment");
  const db = document.getElementById("database");
  if (env && db) {
    env.addEventListener("change", () => {
      const o = env.options[env.selectedIndex];
      db.textContent = o ? o.getAttribute("data-database") : "";
    });
  }
}

function seconds(s) {
  s = Math.max(0, Math.round(s));
  if (s < 60) return s + " s";
  if (s < 3600) return Math.floor(s / 60) + " min " + (s % 60) + " s";
  return Math.floor(s / 3600) + " h " + Math.floor((s % 3600) / 60) + " min";
}

function follow() {
  const list = document.getElementById("timeline");
  if (!list || list.getAttribute("data-follow") !== "true" || !window.EventSource) return;
  const id = list.getAttribute("data-request");
  const body = document.body;
  body.dataset.liveUpdates = "0";
  const changed = () => { body.dataset.liveUpdates = String(+body.dataset.liveUpdates + 1); };
  const statusEl = document.getElementById("status");
  const jobEl = document.getElementById("job");

  function row(name) {
    let li = list.querySelector('li[data-step="' + CSS.escape(name) + '"]');
    if (!li) {
      li = document.createElement("li");
      li.className = "step";
      li.dataset.step = name;
      for (const part of ["name", "status", "elapsed", "azure"]) {
        const span = document.createElement("span");
        span.className = "step-" + part;
        li.appendChild(span);
      }
      li.querySelector(".step-name").textContent = name;
      list.appendChild(li);
      const none = document.getElementById("no-steps");
      if (none) none.remove();
    }
    return li;
  }

  const source = new EventSource("/requests/" + encodeURIComponent(id) + "/events");
  source.addEventListener("status", (e) => {
    const d = JSON.parse(e.data);
    if (statusEl && statusEl.dataset.status !== d.status) {
      statusEl.dataset.status = d.status;
      statusEl.textContent = d.status;
      statusEl.className = "status big s-" + d.status;
      changed();
    }
  });
  source.addEventListener("job", (e) => {
    const d = JSON.parse(e.data);
    if (jobEl && jobEl.dataset.jobStatus !== d.status) {
      jobEl.dataset.jobStatus = d.status;
      jobEl.textContent = (d.dry_run ? "Dry run " : "Run ") + d.status + (d.error ? ": " + d.error : "");
      changed();
    }
  });
  source.addEventListener("step", (e) => {
    const d = JSON.parse(e.data);
    const li = row(d.name);
    if (li.dataset.status !== d.status) {
      li.dataset.status = d.status;
      li.className = "step st-" + d.status;
      li.querySelector(".step-status").textContent = d.status;
      changed();
    }
    li.dataset.started = d.started_at || "";
    li.dataset.finished = d.finished_at || "";
    if (d.error) li.querySelector(".step-azure").textContent = d.error;
    else if (d.detail) li.querySelector(".step-azure").textContent = d.detail;
    tick();
  });
  source.addEventListener("progress", (e) => {
    const d = JSON.parse(e.data);
    if (d.step && (d.kind === "azure" || d.kind === "step_failed")) {
      row(d.step).querySelector(".step-azure").textContent = d.message;
    }
  });
  source.addEventListener("end", () => {
    source.close();
    list.dataset.follow = "ended";
    tick();
  });

  function tick() {
    const now = Date.now();
    list.querySelectorAll("li.step").forEach((li) => {
      const a = Date.parse(li.dataset.started || "");
      if (isNaN(a)) return;
      const b = Date.parse(li.dataset.finished || "");
      li.querySelector(".step-elapsed").textContent = isNaN(b) ? seconds((now - a) / 1000) + " so far" : seconds((b - a) / 1000);
    });
  }
  setInterval(tick, 1000);
}

// A dry run changes nothing: it starts without leaving the page, and the
// timeline follows it live.
function inlineForms() {
  document.querySelectorAll("form[data-inline]").forEach((form) => {
    form.addEventListener("submit", (e) => {
      e.preventDefault();
      const button = form.querySelector("button");
      if (button) button.disabled = true;
      fetch(form.action, {
        method: "POST", body: new URLSearchParams(new FormData(form)),
        credentials: "same-origin", redirect: "manual",
      }).then((r) => {
        if (r.type !== "opaqueredirect" && !r.ok) {
          form.submit();
          return;
        }
        const note = document.createElement("p");
        note.className = "notice";
        note.setAttribute("role", "status");
        note.textContent = "Started: the timeline below follows it.";
        form.replaceWith(note);
      }).catch(() => form.submit());
    });
  });
}

document.addEventListener("DOMContentLoaded", () => {
  showLocalTimes();
  formHelpers();
  follow();
  inlineForms();
});
