// The problem browser of report_{model}.html (study/report/html_page.py inlines this file).
// Reads the JSON in #study-data; draws one page of rows at a time and a problem's rollout only
// when it is opened, so a 1,319-problem study opens in a moment. Every string from the data
// goes into the page through textContent (el() below): model output is never parsed as HTML.
(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("study-data").textContent);
  var PAGE = 100;
  var state = {filter: "all", type: "", sort: "emergence", query: "", page: 0, open: null};
  var root = document.getElementById("browser");
  var byId = {};
  data.problems.forEach(function (p, i) { p.order = i; byId[p.id] = p; });

  // el("td", {class: "x"}, "text", child): an element; strings become text nodes.
  function el(tag, attrs) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) {
      if (k === "text") { node.textContent = attrs[k]; } else { node.setAttribute(k, attrs[k]); }
    });
    for (var i = 2; i < arguments.length; i++) {
      var child = arguments[i];
      if (child === null || child === undefined) { continue; }
      node.appendChild(typeof child === "object" ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  function show(value) { return value === null || value === undefined || value === "" ? "—" : String(value); }

  function inFilter(p, key) {
    return key === "all" || p.flags.indexOf(key) >= 0;
  }

  function hasType(p, type) {
    return !type || (p.ann || []).some(function (a) { return a.type === type; });
  }

  function matches(p) {
    if (!inFilter(p, state.filter) || !hasType(p, state.type)) { return false; }
    if (!state.query) { return true; }
    var q = state.query.toLowerCase();
    return p.id.toLowerCase().indexOf(q) >= 0 || p.q.toLowerCase().indexOf(q) >= 0;
  }

  function selected() {
    var rows = data.problems.filter(matches);
    if (state.sort === "emergence") {
      rows.sort(function (a, b) { return b.b - a.b || a.order - b.order; });
    }
    return rows;
  }

  // ---------------------------------------------------------------- controls

  function count(key) {
    return data.problems.filter(function (p) { return inFilter(p, key); }).length;
  }

  function controls() {
    var bar = el("div", {class: "controls"});
    var filters = el("div", {class: "filters", role: "group", "aria-label": "filter"});
    var keys = ["all"].concat(Object.keys(data.filters));
    keys.forEach(function (key) {
      var label = key === "all" ? "all" : data.filters[key];
      var button = el("button", {type: "button", "data-filter": key,
                                 class: key === state.filter ? "on" : ""},
                      label + " ", el("span", {class: "n", text: String(count(key))}));
      button.addEventListener("click", function () { state.filter = key; state.page = 0; draw(); });
      filters.appendChild(button);
    });
    bar.appendChild(filters);
    var type = el("select", {id: "error-type", "aria-label": "annotated error type"},
                  el("option", {value: "", text: "any error type (annotations)"}));
    data.error_types.forEach(function (t) {
      var n = data.problems.filter(function (p) { return hasType(p, t); }).length;
      type.appendChild(el("option", {value: t, text: t + " (" + n + ")"}));
    });
    type.value = state.type;
    type.addEventListener("change", function () { state.type = type.value; state.page = 0; draw(); });
    var sort = el("select", {id: "sort", "aria-label": "sort"},
                  el("option", {value: "emergence", text: "sort: emergence score, high first"}),
                  el("option", {value: "order", text: "sort: dataset order"}));
    sort.value = state.sort;
    sort.addEventListener("change", function () { state.sort = sort.value; state.page = 0; draw(); });
    var search = el("input", {id: "search", type: "search", placeholder: "id or question text",
                              "aria-label": "search"});
    search.value = state.query;
    search.addEventListener("input", function () { state.query = search.value; state.page = 0; drawList(); });
    bar.appendChild(el("div", {class: "pickers"}, type, sort, search));
    return bar;
  }

  // ---------------------------------------------------------------- the list (one page)

  function strip(values, budgets, preds) {
    var cells = el("span", {class: "strip"});
    values.forEach(function (ok, k) {
      cells.appendChild(el("span", {class: "cell " + (ok ? "ok" : "bad"),
                                    title: budgets[k] + " tokens: " + show(preds[k]) + (ok ? " (right)" : " (wrong)")}));
    });
    return cells;
  }

  function row(p) {
    var tags = el("td", {class: "tags"});
    p.flags.forEach(function (f) { tags.appendChild(el("span", {class: "tag " + f, text: f})); });
    (p.ann || []).forEach(function (a) {
      if (a.type) { tags.appendChild(el("span", {class: "tag ann", text: a.type + "@" + a.budget})); }
    });
    var tr = el("tr", {class: "problem" + (p.id === state.open ? " open" : ""), "data-id": p.id, tabindex: "0"},
                el("td", {class: "id", text: p.id}), el("td", {class: "gold", text: p.gold}),
                el("td", {}, strip(p.c, data.budgets, p.pred)),
                el("td", {class: "num", text: p.b.toFixed(2)}), tags);
    tr.addEventListener("click", function () { openProblem(p.id); });
    tr.addEventListener("keydown", function (e) { if (e.key === "Enter") { openProblem(p.id); } });
    return tr;
  }

  function drawList() {
    var rows = selected();
    var pages = Math.max(1, Math.ceil(rows.length / PAGE));
    state.page = Math.min(state.page, pages - 1);
    var start = state.page * PAGE, shown = rows.slice(start, start + PAGE);
    var list = document.getElementById("list");
    list.textContent = "";
    var head = el("tr", {}, el("th", {text: "problem"}), el("th", {text: "gold"}),
                  el("th", {title: "one cell per budget (" + data.budgets.join(", ") + " tokens): green right, red wrong",
                            text: "verdict " + data.budgets[0] + "→" + data.budgets[data.budgets.length - 1]}),
                  el("th", {title: "breakthroughness (study.analysis.emergence)", text: "emergence"}),
                  el("th", {text: "tags"}));
    var body = el("tbody");
    shown.forEach(function (p) { body.appendChild(row(p)); });
    list.appendChild(el("table", {class: "problems"}, el("thead", {}, head), body));
    var pager = document.getElementById("pager");
    pager.textContent = "";
    var prev = el("button", {type: "button", text: "◀ previous"});
    var next = el("button", {type: "button", text: "next ▶"});
    prev.disabled = state.page === 0;
    next.disabled = state.page >= pages - 1;
    prev.addEventListener("click", function () { state.page -= 1; drawList(); });
    next.addEventListener("click", function () { state.page += 1; drawList(); });
    var range = rows.length ? (start + 1) + "–" + (start + shown.length) : "0";
    pager.appendChild(el("span", {id: "count", "data-n": String(rows.length),
                                  text: rows.length + " problems (showing " + range + ", page " + (state.page + 1) + " of " + pages + ")"}));
    pager.appendChild(prev);
    pager.appendChild(next);
  }

  // ---------------------------------------------------------------- one problem

  // The rollout with a mark after each budget's last token; consecutive marks at one offset
  // (the model had stopped) share a chip. Segments are [text, band, answer?].
  function rolloutNode(r, budgets) {
    var box = el("div", {class: "rollout"});
    var next = 0;
    function marks(upTo) {
      if (next >= upTo) { return; }
      var chip = el("span", {class: "chip"});
      for (; next < upTo; next++) {
        var ended = !r.cut[next] && r.tok[next] < budgets[next];
        chip.appendChild(el("span", {class: "mark", "data-budget": String(budgets[next]),
                                     title: "end of the first " + budgets[next] + " tokens" + (ended ? " (the model had stopped: EOS at " + r.tok[next] + " tokens)" : ""),
                                     text: String(budgets[next]) + (r.c[next] ? " ✓" : " ✗")}));
      }
      if (!r.cut[upTo - 1]) { chip.appendChild(el("span", {class: "eos", text: "EOS at " + r.tok[upTo - 1]})); }
      box.appendChild(chip);
    }
    r.roll.forEach(function (seg) {
      marks(seg[1]);
      var cls = "band b" + (seg[1] % 2) + (seg[2] ? " answer" : "");
      box.appendChild(el("span", {class: cls, "data-band": String(seg[1]),
                                  title: "tokens " + (seg[1] ? budgets[seg[1] - 1] + 1 : 1) + "–" + budgets[seg[1]],
                                  text: seg[0]}));
    });
    marks(budgets.length);
    return box;
  }

  function answerLine(r, budgets) {
    var last = budgets.length - 1;
    if (r.pred[last] === null) { return "No answer extracted at " + budgets[last] + " tokens."; }
    if (r.ans === null) { return "The graded answer (" + r.pred[last] + ") does not appear verbatim in the text."; }
    var from = r.ans ? budgets[r.ans - 1] + 1 : 1;
    return "The graded answer at " + budgets[last] + " tokens (" + r.pred[last] + ") first appears within tokens " + from + "–" + budgets[r.ans] + " (highlighted).";
  }

  function budgetTable(p) {
    var forced = !!p.forced;
    var head = ["budget", "tokens used", "cut", "extracted answer", "verdict"];
    if (forced) { head = head.concat(["forced answer", "p_gold"]); }
    head.push("annotation");
    var thead = el("tr");
    head.forEach(function (h) { thead.appendChild(el("th", {text: h})); });
    var body = el("tbody");
    data.budgets.forEach(function (b, k) {
      var notes = (p.ann || []).filter(function (a) { return a.budget === b; });
      var tr = el("tr", {"data-budget": String(b)},
                  el("td", {class: "num", text: String(b)}), el("td", {class: "num", text: String(p.tok[k])}),
                  el("td", {text: p.cut[k] ? "cut" : "ended"}), el("td", {class: "pred", text: show(p.pred[k])}),
                  el("td", {class: "verdict " + (p.c[k] ? "ok" : "bad"), text: p.c[k] ? "right" : "wrong"}));
      if (forced) {
        tr.appendChild(el("td", {class: "forced", text: show(p.forced[k])}));
        tr.appendChild(el("td", {class: "num", text: p.pgold[k] === null ? "—" : p.pgold[k].toFixed(3)}));
      }
      tr.appendChild(el("td", {text: notes.map(function (a) { return a.type || "unlabelled"; }).join(", ") || "—"}));
      body.appendChild(tr);
    });
    return el("table", {class: "budgets"}, el("thead", {}, thead), body);
  }

  function annotations(p) {
    var box = el("div", {class: "annotations"});
    (p.ann || []).forEach(function (a) {
      var label = a.type ? a.type : "unlabelled" + (a.suggested ? " (suggested: " + a.suggested + ")" : "");
      box.appendChild(el("div", {class: "annotation"},
                         el("strong", {text: a.budget + " tokens: " + label}),
                         " — by " + show(a.who) + ", recoverable " + show(a.rec),
                         a.where ? el("div", {text: "where: " + a.where}) : null,
                         el("div", {class: "note", text: "note: " + show(a.note)})));
    });
    return box;
  }

  function samples(p) {
    var grid = el("div", {class: "samples"});
    p.s1b.forEach(function (s, j) {
      var verdicts = el("div", {class: "sample-head"}, el("strong", {text: "sample " + j + " "}),
                        strip(s.c, data.p1b_budgets, s.pred),
                        " " + data.p1b_budgets.map(function (b, k) { return b + ": " + show(s.pred[k]); }).join(" · "));
      grid.appendChild(el("div", {class: "sample", "data-sample": String(j)}, verdicts,
                          rolloutNode(s, data.p1b_budgets)));
    });
    return grid;
  }

  function openProblem(id) {
    var p = byId[id];
    state.open = id;
    Array.prototype.forEach.call(document.querySelectorAll("tr.problem"), function (tr) {
      tr.classList.toggle("open", tr.getAttribute("data-id") === id);
    });
    var pane = document.getElementById("detail");
    pane.textContent = "";
    pane.appendChild(el("h3", {}, el("span", {class: "pid", text: p.id}), "  gold ", el("span", {class: "gold", text: p.gold}),
                        "  ", strip(p.c, data.budgets, p.pred)));
    pane.appendChild(el("p", {class: "note", text: "emergence score " + p.b.toFixed(2) + (p.flags.length ? " · " + p.flags.join(", ") : "")}));
    pane.appendChild(el("h4", {text: "Prompt"}));
    pane.appendChild(el("pre", {class: "prompt", text: p.q}));
    pane.appendChild(el("h4", {text: "At each budget"}));
    pane.appendChild(el("div", {class: "scroll"}, budgetTable(p)));
    pane.appendChild(el("h4", {text: "Rollout"}));
    pane.appendChild(el("p", {class: "note", text: "One rollout serves every budget: shaded bands are the tokens between consecutive budgets; a chip marks the end of each budget's tokens (✓/✗: the verdict there). " + answerLine(p, data.budgets)}));
    pane.appendChild(rolloutNode(p, data.budgets));
    if (p.ann) { pane.appendChild(el("h4", {text: "Annotations"})); pane.appendChild(annotations(p)); }
    if (p.s1b) {
      pane.appendChild(el("h4", {text: "Phase 1b: " + p.s1b.length + " samples at " + data.p1b_budgets.join(", ") + " tokens"}));
      pane.appendChild(samples(p));
    }
    pane.scrollTop = 0;
  }

  function draw() {
    root.textContent = "";
    root.appendChild(controls());
    root.appendChild(el("p", {class: "note", text: "Jumps: the emergence rule of study/analysis/emergence.py (" + data.jump_rule + "). Regressions: right at a budget, wrong at a larger one. Click a problem to see its rollout."}));
    data.notes.forEach(function (line) { root.appendChild(el("p", {class: "note warn", text: line})); });
    var panes = el("div", {class: "panes"},
                   el("div", {class: "left"}, el("div", {id: "pager", class: "pager"}), el("div", {id: "list"})),
                   el("div", {id: "detail", class: "detail"}, el("p", {class: "note", text: "Click a problem to see its prompt, its rollout with the budget marks, and its verdicts."})));
    root.appendChild(panes);
    drawList();
    if (state.open) { openProblem(state.open); }
  }

  draw();
  document.documentElement.setAttribute("data-ready", String(Math.round(performance.now())));
})();
