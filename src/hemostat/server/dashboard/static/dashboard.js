/* hemostat dashboard: charts, live fragments, table filters. No inline script (the pages'
 * Content-Security-Policy forbids it): pages declare what they want with data- attributes
 * and embed their data as <script type="application/json" id="...">.
 *
 *   <canvas data-chart="ID">            chart from the JSON element ID (spec below)
 *   <div data-refresh="/fragments/x" data-every="10">   replaced by the fragment every 10 s
 *                                       (the charts drawn in the old content are destroyed)
 *   <div data-live="/fragments/x" data-every="5">  the same, but not replaced while a text
 *                                       field inside has the focus or holds text
 *   <input data-filter="TABLE_ID">      hides the rows of TABLE_ID that do not contain the text
 *   <form data-confirm="question">      asks before submitting
 *
 * Chart spec: {"kind": "line"|"bar", "stacked": bool, "unit": "bytes"|"count",
 *   "x": [epoch ms...], "series": [{"name": str, "values": [...], "color": str?,
 *   "dashed": bool?, "fill": bool?}], "markers": [{"at": epoch ms, "label": str, "color": str?}]}
 */
(function () {
  "use strict";
  var body = document.body;
  var lang = body.dataset.lang || "en";
  var zone = body.dataset.zone || "UTC";
  var locale = lang === "fr" ? "fr-FR" : "en-GB";
  var UNITS = lang === "fr" ? ["o", "ko", "Mo", "Go", "To"] : ["B", "kB", "MB", "GB", "TB"];
  var PALETTE = ["#24507a", "#d0491b", "#2d7a3a", "#8a4fa3", "#b88a00", "#1f8a99",
    "#a4001d", "#6b7c93", "#c26b9b", "#4a4a4a"];

  function size(n) {
    var step = 0;
    n = Number(n) || 0;
    while (Math.abs(n) >= 1000 && step < UNITS.length - 1) { n /= 1000; step += 1; }
    var text = step === 0 || Math.abs(n) >= 10 ? n.toFixed(0) : n.toFixed(1);
    return text.replace(".", lang === "fr" ? "," : ".") + "\u00a0" + UNITS[step];
  }
  function count(n) { return new Intl.NumberFormat(locale).format(n); }
  var clockFormat = new Intl.DateTimeFormat(locale, {timeZone: zone, hour: "2-digit", minute: "2-digit"});
  var dayFormat = new Intl.DateTimeFormat(locale, {timeZone: zone, day: "2-digit", month: "2-digit",
    hour: "2-digit", minute: "2-digit"});
  function when(ms, span) { return (span > 36 * 3600e3 ? dayFormat : clockFormat).format(new Date(ms)); }

  var markerPlugin = {
    id: "hemostatMarkers",
    afterDatasetsDraw: function (chart) {
      var markers = (chart.options.plugins.hemostatMarkers || {}).markers || [];
      var ctx = chart.ctx, area = chart.chartArea, x = chart.scales.x;
      markers.forEach(function (m) {
        var px = x.getPixelForValue(m.at);
        if (px < area.left || px > area.right) { return; }
        ctx.save();
        ctx.strokeStyle = m.color || "#a4001d";
        ctx.lineWidth = 2;
        ctx.setLineDash([5, 3]);
        ctx.beginPath(); ctx.moveTo(px, area.top); ctx.lineTo(px, area.bottom); ctx.stroke();
        ctx.setLineDash([]);
        ctx.fillStyle = m.color || "#a4001d";
        ctx.font = "12px system-ui, sans-serif";
        ctx.fillText(m.label, Math.min(px + 4, area.right - ctx.measureText(m.label).width), area.top + 12);
        ctx.restore();
      });
    }
  };

  function chart(canvas) {
    var source = document.getElementById(canvas.dataset.chart);
    if (!source || typeof Chart === "undefined") { return; }
    var spec = JSON.parse(source.textContent);
    var xs = spec.x || [];
    var span = xs.length ? xs[xs.length - 1] - xs[0] : 0;
    var fmt = spec.unit === "bytes" ? size : count;
    var datasets = (spec.series || []).map(function (s, i) {
      var color = s.color || PALETTE[i % PALETTE.length];
      return {
        label: s.name, data: s.values.map(function (v, j) { return {x: xs[j], y: v}; }),
        borderColor: color, backgroundColor: spec.kind === "bar" || spec.stacked ? color + "cc" : color,
        borderWidth: spec.kind === "bar" ? 0 : 1.5, pointRadius: 0, fill: s.fill === undefined ? !!spec.stacked : s.fill,
        borderDash: s.dashed ? [6, 4] : [], stepped: false, tension: 0, type: s.kind || undefined
      };
    });
    canvas.chart = new Chart(canvas, {
      type: spec.kind || "line",
      data: {datasets: datasets},
      plugins: [markerPlugin],
      options: {
        animation: false, maintainAspectRatio: false, parsing: false, normalized: true,
        interaction: {mode: "nearest", axis: "x", intersect: false},
        scales: {
          x: {type: "linear", stacked: !!spec.stacked, min: xs[0], max: xs[xs.length - 1],
            ticks: {maxTicksLimit: 10, callback: function (v) { return when(v, span); }}},
          y: {stacked: !!spec.stacked, beginAtZero: true, ticks: {callback: fmt}}
        },
        plugins: {
          legend: {display: datasets.length > 1, position: "bottom", labels: {boxWidth: 12}},
          decimation: {enabled: true, algorithm: "min-max"},
          tooltip: {callbacks: {
            title: function (items) { return items.length ? when(items[0].parsed.x, 0) : ""; },
            label: function (item) { return item.dataset.label + ": " + fmt(item.parsed.y); }
          }},
          hemostatMarkers: {markers: spec.markers || []}
        }
      }
    });
  }

  /* Destroy the Chart.js instances drawn in el's canvases, before el's content is replaced:
   * Chart.js keeps every chart (and its resize listener) until destroyed. */
  function forget(el) {
    if (typeof Chart === "undefined") { return; }
    el.querySelectorAll("canvas").forEach(function (canvas) {
      var drawn = Chart.getChart(canvas);
      if (drawn) { drawn.destroy(); }
    });
  }

  /* A text field inside el has the focus or holds text (a release reason being typed). */
  function busy(el) {
    var fields = el.querySelectorAll("input[type=text], input[type=search], textarea");
    return Array.prototype.some.call(fields, function (f) {
      return f === document.activeElement || f.value.trim() !== "";
    });
  }

  /* data-refresh and data-live: el's content fetched again every data-every seconds; a
   * data-live element (every 10 s by default) is left alone while busy(el). data-loaded
   * counts the loads. */
  function refresh(el) {
    var url = el.dataset.refresh || el.dataset.live;
    var held = el.dataset.live ? busy : function () { return false; };
    var every = el.dataset.live ? Math.max(Number(el.dataset.every || 10), 1) * 1000
                                : Number(el.dataset.every || 0) * 1000;
    var stamp = document.getElementById("refreshed");
    function load() {
      if (held(el)) { setTimeout(load, every); return; }
      fetch(url, {credentials: "same-origin", headers: {"Accept": "text/html"}})
        .then(function (r) {
          if (r.status === 401) { window.location.reload(); throw new Error("session"); }
          if (!r.ok) { throw new Error("HTTP " + r.status); }
          return r.text();
        })
        .then(function (html) {
          if (held(el)) { return; }
          forget(el);
          el.innerHTML = html;
          el.querySelectorAll("canvas[data-chart]").forEach(chart);
          el.dataset.loaded = String(Number(el.dataset.loaded || 0) + 1);
          if (stamp) { stamp.textContent = clockFormat.format(new Date()); }
        })
        .catch(function (err) {
          if (stamp && err.message !== "session") { stamp.textContent = "\u26a0 " + err.message; }
        })
        .finally(function () { if (every) { setTimeout(load, every); } });
    }
    if (el.dataset.lazy === "1") { load(); } else if (every) { setTimeout(load, every); }
  }

  function filter(input) {
    var table = document.getElementById(input.dataset.filter);
    if (!table) { return; }
    input.addEventListener("input", function () {
      var needle = input.value.trim().toLowerCase();
      var shown = 0;
      table.querySelectorAll("tbody tr").forEach(function (row) {
        var hit = !needle || row.textContent.toLowerCase().indexOf(needle) >= 0;
        row.hidden = !hit;
        if (hit) { shown += 1; }
      });
      var counter = document.querySelector("[data-count-for='" + table.id + "']");
      if (counter) { counter.textContent = count(shown); }
    });
  }

  document.querySelectorAll("canvas[data-chart]").forEach(chart);
  document.querySelectorAll("[data-refresh], [data-live]").forEach(refresh);
  document.querySelectorAll("input[data-filter]").forEach(filter);
  document.querySelectorAll("form[data-confirm]").forEach(function (form) {
    form.addEventListener("submit", function (event) {
      if (!window.confirm(form.dataset.confirm)) { event.preventDefault(); }
    });
  });
  window.hemostat = {size: size, count: count, when: when, chart: chart, forget: forget};
})();
