// radn report: the pairs table (sort, filter, pages), the per-reference ranking, the detail view
// and the sortable method table, from the rows embedded in the page as JSON.
// Text from the CSV is only ever set with textContent; pictures are named by keys (hashes).
(function () {
  "use strict";

  var data = JSON.parse(document.getElementById("radn-data").textContent);
  var rows = data.rows;
  var files = data.files;
  var better = data.higherIsBetter ? 1 : -1;
  var collator = new Intl.Collator(undefined, { numeric: true, sensitivity: "base" });
  var byRef = new Map();

  rows.forEach(function (row, index) {
    row.i = index + 1;
    row.q = (row.dist + "\n" + row.ref).toLowerCase();
    row.failed = row.s === null || row.e !== "";
    // ranked among its reference's versions of its weights and precision (row.g names them when the
    // CSV holds several)
    var group = row.g === undefined ? row.ref : row.g;
    if (!byRef.has(group)) byRef.set(group, []);
    byRef.get(group).push(row);
  });
  byRef.forEach(function (group) {
    var scored = group.filter(function (row) { return !row.failed; }).length;
    group.forEach(function (row) { row.n = scored; });
  });

  function $(id) { return document.getElementById(id); }

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  function score(value) { return value === null || value === undefined ? "" : value.toFixed(4); }

  function picture(key, suffix) { return files + "img/" + key + suffix + ".jpg"; }

  function thumb(key, alt) {
    if (!key) return el("span", "nothumb", "no image");
    var img = el("img", "thumb");
    img.loading = "lazy";
    img.decoding = "async";
    img.width = 64;
    img.height = 48;
    img.alt = alt;
    img.src = picture(key, "_t");
    return img;
  }

  function rankText(row) { return row.r === null ? "" : row.r + " of " + row.n; }

  function sizeOf(row) { return row.w && row.h ? row.w * row.h : null; }

  // ---- the pairs table --------------------------------------------------------------------------
  var state = { key: "s", dir: better, text: "", method: "", status: "", page: 0, size: 100 };
  var view = [];

  function value(row, key) {
    if (key === "size") return sizeOf(row);
    if (key === "e") return row.e || null;
    return row[key] === undefined ? null : row[key];
  }

  function compare(a, b) {
    var va = value(a, state.key), vb = value(b, state.key);
    var aMissing = va === null || va === "", bMissing = vb === null || vb === "";
    if (aMissing || bMissing) return aMissing === bMissing ? a.i - b.i : aMissing ? 1 : -1;
    var d = typeof va === "number" ? va - vb : collator.compare(String(va), String(vb));
    return d * state.dir || a.i - b.i;
  }

  function update() {
    var text = state.text.toLowerCase();
    view = rows.filter(function (row) {
      if (text && row.q.indexOf(text) < 0) return false;
      if (state.method && row.m !== state.method) return false;
      if (state.status === "failed" && !row.failed) return false;
      if (state.status === "ok" && row.failed) return false;
      return true;
    });
    view.sort(compare);
    var pages = Math.max(1, Math.ceil(view.length / state.size));
    state.page = Math.min(state.page, pages - 1);
    draw(pages);
  }

  function cell(tr, text, className) { tr.appendChild(el("td", className, text)); }

  function draw(pages) {
    var body = document.querySelector("#pairs-table tbody");
    var start = state.page * state.size;
    var fragment = document.createDocumentFragment();
    view.slice(start, start + state.size).forEach(function (row) {
      var tr = el("tr", row.failed ? "failed" : "");
      tr.tabIndex = 0;
      cell(tr, row.i, "num");
      tr.appendChild(el("td")).appendChild(thumb(row.ri, "reference"));
      tr.appendChild(el("td")).appendChild(thumb(row.di, "distorted"));
      cell(tr, row.failed ? "failed" : score(row.s), "num score");
      cell(tr, rankText(row), "num");
      if (data.methods.length > 1) cell(tr, row.m || "", "");
      cell(tr, row.dist, "path");
      cell(tr, row.ref, "path");
      cell(tr, row.w && row.h ? row.w + "\u00d7" + row.h : "", "num");
      cell(tr, row.e, "error");
      tr.addEventListener("click", function () { openDetail(row); });
      tr.addEventListener("keydown", function (event) { if (event.key === "Enter") openDetail(row); });
      fragment.appendChild(tr);
    });
    body.replaceChildren(fragment);
    $("count").textContent = view.length + " of " + rows.length + " pairs";
    $("page").textContent = "page " + (state.page + 1) + " of " + pages;
    $("prev").disabled = state.page === 0;
    $("next").disabled = state.page >= pages - 1;
    document.querySelectorAll("#pairs-table th button").forEach(function (button) {
      var th = button.parentNode;
      if (button.dataset.key === state.key) th.setAttribute("aria-sort", state.dir > 0 ? "ascending" : "descending");
      else th.removeAttribute("aria-sort");
    });
  }

  document.querySelectorAll("#pairs-table th button").forEach(function (button) {
    button.addEventListener("click", function () {
      var key = button.dataset.key;
      state.dir = state.key === key ? -state.dir : key === "s" ? better : 1;
      state.key = key;
      state.page = 0;
      update();
    });
  });
  $("filter").addEventListener("input", function (event) { state.text = event.target.value; state.page = 0; update(); });
  $("method-filter").addEventListener("change", function (event) { state.method = event.target.value; state.page = 0; update(); });
  $("status-filter").addEventListener("change", function (event) { state.status = event.target.value; state.page = 0; update(); });
  $("page-size").addEventListener("change", function (event) { state.size = Number(event.target.value); state.page = 0; update(); });
  $("prev").addEventListener("click", function () { state.page -= 1; update(); });
  $("next").addEventListener("click", function () { state.page += 1; update(); });
  data.methods.forEach(function (method) { $("method-filter").appendChild(el("option", "", method)).value = method; });
  document.querySelectorAll(".method-link").forEach(function (button) {
    button.addEventListener("click", function () {
      state.method = $("method-filter").value = button.dataset.method;
      state.page = 0;
      update();
      $("pairs").scrollIntoView();
    });
  });

  // ---- the detail view --------------------------------------------------------------------------
  // The three pictures share one scale (the heatmap is the distorted view with a legend below, and
  // at least 320 px wide): each figure grows in proportion to its picture's width.
  function show(img, src, caption, captionText) {
    $(caption).textContent = captionText;
    img.parentNode.style.flexGrow = "1";
    if (src) { img.src = src; img.hidden = false; } else { img.removeAttribute("src"); img.hidden = true; }
  }

  ["detail-ref", "detail-dist", "detail-heat"].forEach(function (id) {
    $(id).addEventListener("load", function (event) {
      event.target.parentNode.style.flexGrow = String(event.target.naturalWidth);
    });
  });

  // The legend of a heatmap, as text under it (readable at any size): the map, its colour bar, the
  // numbers at its ends and middle, what low and high mean, and whether the range is fixed.
  function showLegend(row) {
    var legend = row.hk ? row.hl : null;
    $("detail-legend").hidden = !legend;
    if (!legend) return;
    var label = data.map + (legend.f ? " (fixed range" : " (range of this map");
    if (legend.f && legend.b) label += "; " + legend.b + (legend.b === 1 ? " patch" : " patches") + " beyond it";
    if (legend.s !== null) label += "; sum = image score = " + legend.s;
    $("legend-label").textContent = label + ")";
    var ticks = legend.t.length === 3 ? legend.t : ["", legend.t[0] || "no finite values", ""];
    $("legend-low").textContent = ticks[0];
    $("legend-mid").textContent = ticks[1];
    $("legend-high").textContent = ticks[2];
    $("legend-low-words").textContent = data.mapWords[0];
    $("legend-high-words").textContent = data.mapWords[1];
    $("legend-unscored").hidden = !legend.u;
  }

  function named(row) {
    var name = row.dist.split(/[\\/]/).pop();
    return row.m ? row.m + " / " + name : name;
  }

  function openDetail(row) {
    $("detail-title").textContent = row.dist;
    var facts = [row.failed ? "failed" : "score " + score(row.s)];
    if (row.r !== null) facts.push("rank " + rankText(row) + " for its reference");
    if (row.m) facts.push("method " + row.m);
    var scored = row.sc && row.sc !== "native" ? "scored at " : "";
    if (row.w && row.h) facts.push(scored + row.w + "\u00d7" + row.h + " px, " + row.p + " patches");
    if (row.sc) facts.push("--scale " + row.sc);
    $("detail-facts").textContent = facts.join(" \u00b7 ");
    $("detail-error").textContent = row.e;
    $("detail-error").hidden = !row.e;
    var method = row.m ? " (method " + row.m + ")" : "";
    show($("detail-ref"), row.ri && picture(row.ri, "_v"), "detail-ref-caption", "reference: " + row.ref);
    show($("detail-dist"), row.di && picture(row.di, "_v"), "detail-dist-caption", "distorted" + method + ": " + row.dist);
    show($("detail-heat"), row.hk && files + "heat/" + row.hk + ".jpg", "detail-heat-caption",
      row.hk ? data.map + " heatmap of " + named(row) : row.hn);
    showLegend(row);
    var dialog = $("detail");
    if (!dialog.open) dialog.showModal();
  }

  $("detail-close").addEventListener("click", function () { $("detail").close(); });
  $("detail").addEventListener("click", function (event) { if (event.target === event.currentTarget) event.currentTarget.close(); });

  // ---- per reference ----------------------------------------------------------------------------
  var refs = Array.from(byRef.keys()).sort(collator.compare);

  function drawReference(ref) {
    var group = byRef.get(ref).slice().sort(function (a, b) {
      if (a.failed !== b.failed) return a.failed ? 1 : -1;
      return (a.r || 0) - (b.r || 0) || a.i - b.i;
    });
    var fragment = document.createDocumentFragment();
    group.forEach(function (row) {
      var tr = el("tr", row.failed ? "failed" : "");
      tr.tabIndex = 0;
      cell(tr, row.r === null ? "\u2013" : row.r, "num");
      tr.appendChild(el("td")).appendChild(thumb(row.di, "distorted"));
      cell(tr, row.failed ? "failed" : score(row.s), "num score");
      if (data.methods.length > 1) cell(tr, row.m || "", "");
      cell(tr, row.dist, "path");
      tr.addEventListener("click", function () { openDetail(row); });
      tr.addEventListener("keydown", function (event) { if (event.key === "Enter") openDetail(row); });
      fragment.appendChild(tr);
    });
    document.querySelector("#ref-table tbody").replaceChildren(fragment);
  }

  refs.forEach(function (ref, index) {
    var option = el("option", "", ref + " (" + byRef.get(ref).length + ")");
    option.value = String(index);
    $("ref-select").appendChild(option);
  });
  $("ref-select").addEventListener("change", function (event) { drawReference(refs[Number(event.target.value)]); });

  // ---- sortable server-made tables (methods) ----------------------------------------------------
  document.querySelectorAll("table.sortable").forEach(function (table) {
    table.querySelectorAll("th button").forEach(function (button, column) {
      var dir = 1;
      button.addEventListener("click", function () {
        var body = table.tBodies[0];
        var trs = Array.from(body.rows);
        trs.sort(function (a, b) {
          var va = a.cells[column].dataset.v, vb = b.cells[column].dataset.v;
          if (va === "" || vb === "") return va === vb ? 0 : va === "" ? 1 : -1;
          var na = Number(va), nb = Number(vb);
          return (isNaN(na) || isNaN(nb) ? collator.compare(va, vb) : na - nb) * dir;
        });
        trs.forEach(function (tr) { body.appendChild(tr); });
        table.querySelectorAll("th").forEach(function (th) { th.removeAttribute("aria-sort"); });
        button.parentNode.setAttribute("aria-sort", dir > 0 ? "ascending" : "descending");
        dir = -dir;
      });
    });
  });

  update();
  performance.mark("radn-table");
  if (refs.length) drawReference(refs[0]);
  document.body.dataset.ready = "true";
})();
